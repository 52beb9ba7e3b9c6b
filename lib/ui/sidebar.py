"""The shared sidebar: mode, balance and the session-only API key field."""

from __future__ import annotations

import logging

import streamlit as st

from lib.sandbox.demo import load_demo_project
from lib.trust.text import md
from lib.ui.context import (
    AppContext,
    allow_private_results,
    current_balance,
    get_uploader,
    refresh_balance,
)

log = logging.getLogger(__name__)


def _take_typed_key() -> None:
    """Move the typed key out of the widget so it is never echoed back into the page."""
    typed = (st.session_state.get("settings_key_field") or "").strip()
    if typed:
        st.session_state["settings_api_key"] = typed
        st.session_state["settings_balance"] = None
    st.session_state["settings_key_field"] = ""


def _forget_key() -> None:
    st.session_state["settings_api_key"] = ""
    st.session_state["settings_balance"] = None


NAV = (("home.py", "Home", "🏠"), ("pages/1_Elements.py", "Elements", "🧩"),
       ("pages/2_Compose.py", "Compose", "✍️"), ("pages/3_History.py", "History", "🗂️"),
       ("pages/4_Reel.py", "Reel", "🎞️"), ("pages/5_Batch.py", "Batch", "🧮"))


def _sidebar(ctx: AppContext) -> None:
    with st.sidebar:
        st.markdown("### 🎬 Kling Studio")
        for path, label, icon in NAV:
            st.page_link(path, label=label, icon=icon)
        st.divider()
        if ctx.settings.sandbox:
            st.success("**Sandbox mode** — an offline KIE on this machine. Nothing is spent; no API key needed.",
                       icon="🧪")
        else:
            st.info(f"**Live mode** — talking to {md(ctx.settings.api_base)}. Jobs spend real KIE credits.", icon="⚡")
        balance = current_balance(ctx)
        label = "Sandbox credits (play money)" if ctx.settings.sandbox else "KIE balance"
        if balance is not None:
            st.metric(label, f"{balance:,.2f} credits", help="From GET /api/v1/chat/credit, refreshed after each submit.")
        elif st.session_state.get("settings_balance_error"):
            st.warning(f"Balance unavailable: {md(st.session_state['settings_balance_error'])}")
        if st.button("Refresh balance", key="settings_refresh_balance"):
            refresh_balance(ctx)
            st.rerun()
        if ctx.settings.sandbox and ctx.sandbox is not None:
            _sandbox_controls(ctx)
        _key_controls(ctx)


def _sandbox_controls(ctx: AppContext) -> None:
    """Play-money refill and the demo project: sandbox mode only, never shown in live mode."""
    st.caption("Sandbox tools")
    backend = ctx.sandbox.backend
    if st.button("Reset sandbox credits", key="settings_reset_credits",
                 help=f"Refill the play money to {backend.initial_credits:,.0f} credits. Tasks and files stay."):
        backend.reset_credits()
        st.session_state["settings_balance"] = None
        st.rerun()
    if st.button("Load demo project", key="settings_load_demo",
                 help="Two sample elements, a multi-shot draft and a finished std/pro × sound grid in History. "
                      "Loading it again adds nothing twice."):
        with st.spinner("Loading the demo project…"):
            report = load_demo_project(ctx.storage, ctx.client, get_uploader(ctx), backend,
                                       allow_private=allow_private_results(ctx))
        st.session_state["settings_demo_report"] = report.summary()
        st.session_state["settings_balance"] = None
        for message in report.messages:
            st.warning(md(message))
    if st.session_state.get("settings_demo_report"):
        st.caption(md(st.session_state["settings_demo_report"]))


def _key_controls(ctx: AppContext) -> None:
    with st.expander("API key", expanded=False):
        if st.session_state.get("settings_api_key"):
            st.caption("A key is set for this browser session only. It is never saved to disk.")
            st.button("Forget key", key="settings_forget_key", on_click=_forget_key)
        elif ctx.settings.key_source in ("environment", "secrets"):
            st.caption(f"Using the key from {ctx.settings.key_source}.")
        st.text_input("KIE API key (this session only)", type="password", key="settings_key_field",
                      on_change=_take_typed_key, placeholder="paste a key and press Enter",
                      help="Kept only in this browser session's memory: never written to disk, logs or history.")
