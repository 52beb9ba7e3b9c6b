"""The one Streamlit helper module: page setup, the shared sidebar, session defaults and guarded settings."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import streamlit as st

from lib.client import KieClient
from lib.errors import KieError
from lib.history_view import details_link
from lib.settings import Settings, load_settings
from lib.trust.text import md, md_line

log = logging.getLogger(__name__)

SESSION_DEFAULTS: dict[str, Any] = {
    "settings_api_key": "",      # a key typed in this browser session only
    "settings_balance": None,    # last balance read (Decimal) or None
    "settings_balance_error": "",
}


@dataclass(frozen=True)
class AppContext:
    """What every page needs: settings, this session's client, and the sandbox when in sandbox mode."""

    settings: Settings
    client: KieClient
    sandbox: Any | None

    @property
    def origin(self) -> str:
        """'sandbox' or 'live', as stored in history."""
        return "sandbox" if self.settings.sandbox else "live"

    @property
    def account(self) -> str:
        """Whose live rows this session may see: a fingerprint of its key ('' in sandbox mode)."""
        return "" if self.settings.sandbox else self.client.account


def read_secrets() -> dict[str, Any]:
    """st.secrets as a dict; empty when no secrets.toml exists (st.secrets raises then)."""
    try:
        return {k: st.secrets[k] for k in st.secrets}
    except Exception:  # StreamlitSecretNotFoundError and parse errors alike
        return {}


@st.cache_resource(show_spinner="Starting the offline sandbox…")
def _sandbox_for(data_dir: str) -> Any:
    """One sandbox server per app process and data folder. It holds no key, so sharing it is safe."""
    import os
    from pathlib import Path

    from lib.sandbox.server import start_sandbox

    port = int(os.environ.get("KLING_SANDBOX_PORT") or 0)
    seconds = float(os.environ.get("KLING_SANDBOX_SECONDS") or 8.0)
    return start_sandbox(port=port, data_dir=Path(data_dir) / "sandbox", progress="wall", seconds=seconds)


def get_sandbox(settings: Settings) -> Any:
    """The running sandbox for this data folder (started on first use)."""
    return _sandbox_for(str(settings.data_dir.resolve()))


def _client_for(settings: Settings, sandbox: Any | None) -> KieClient:
    """This session's client, rebuilt only when the key or the base URLs change. Lives in session state."""
    if sandbox is not None:
        key, api_base, upload_base = "sandbox-demo", sandbox.base_url, sandbox.base_url
    else:
        key, api_base, upload_base = settings.api_key or "", settings.api_base, settings.upload_base
    fingerprint = hashlib.sha256(f"{key}|{api_base}|{upload_base}".encode()).hexdigest()
    cached = st.session_state.get("_settings_client")
    if cached and cached[0] == fingerprint:
        return cached[1]
    client = KieClient(key, api_base, upload_base)
    st.session_state["_settings_client"] = (fingerprint, client)
    st.session_state["settings_balance"] = None
    return client


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


def refresh_balance(ctx: AppContext) -> None:
    """Read the balance again (after a submit); errors are kept to show, never raised."""
    try:
        # short timeouts: a dead network must not hold every page's sidebar for long
        st.session_state["settings_balance"] = ctx.client.get_credits(timeout=(2, 5))
        st.session_state["settings_balance_error"] = ""
    except KieError as exc:
        st.session_state["settings_balance_error"] = exc.user_message()


def current_balance(ctx: AppContext) -> Decimal | None:
    """The last known balance, read once per session when missing."""
    if st.session_state.get("settings_balance") is None and not st.session_state.get("settings_balance_error"):
        refresh_balance(ctx)
    return st.session_state.get("settings_balance")


NAV = (("streamlit_app.py", "Home", "🏠"), ("pages/1_Elements.py", "Elements", "🧩"),
       ("pages/2_Compose.py", "Compose", "✍️"), ("pages/3_History.py", "History", "🗂️"))


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
        _key_controls(ctx)


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


def setup_page(title: str, icon: str = "🎬") -> AppContext:
    """Page config, session defaults, settings, client and sidebar: every page calls this first."""
    st.set_page_config(page_title=f"{title} · Kling Studio", page_icon=icon, layout="wide")
    for key, value in SESSION_DEFAULTS.items():
        st.session_state.setdefault(key, value)
    settings = load_settings(read_secrets(), st.session_state.get("settings_api_key"))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    sandbox = get_sandbox(settings) if settings.sandbox else None
    ctx = AppContext(settings, _client_for(settings, sandbox), sandbox)
    _sidebar(ctx)
    follow_unfinished(ctx)
    return ctx


def recent_activity(ctx: AppContext, limit: int = 5) -> None:
    """The last few jobs from the history ledger, or a hint when there are none."""
    try:
        rows = _ledger_view(str(ctx.settings.data_dir.resolve()), tuple(get_ledger(ctx).mtime_signature()),
                            ctx.account)[1]
    except Exception as exc:  # a broken ledger must not break the home page
        st.warning(f"History could not be read: {md(exc)}")
        return
    if not rows:
        st.caption("No jobs yet. Start on the Compose page.")
        return
    for row in rows[:limit]:
        text = row.prompt or " | ".join(str(s.get("prompt", "")) for s in row.shots if isinstance(s, dict))
        st.markdown(f"`{row.state}` · {row.created_at:%Y-%m-%d %H:%M} UTC · {md_line(row.mode)} · "
                    f"{'multi-shot · ' if row.multi_shots else ''}{md_line(text, 90) or '(no prompt)'} · "
                    f"[open](/{details_link(row.task_id)})")


@st.cache_resource(show_spinner=False)
def _ledger_for(data_dir: str) -> Any:
    from lib.history import Ledger

    return Ledger.in_dir(data_dir)


def get_ledger(ctx: AppContext) -> Any:
    """The history ledger of this data folder (shared: it holds no key and locks its file)."""
    return _ledger_for(str(ctx.settings.data_dir.resolve()))


@st.cache_resource(show_spinner=False, max_entries=8)
def _ledger_view(data_dir: str, signature: tuple, account: str) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """(unfinished rows, 20 newest rows) one account may see, for one version of the ledger file: reruns on an
    unchanged file neither walk nor sort 10,000 rows. Rows are frozen, so sharing them is safe."""
    from lib.history import UNFINISHED_STATES, visible_to

    rows = [r for r in _ledger_for(data_dir).rows() if visible_to(r, account)]
    unfinished = tuple(r for r in rows if r.state in UNFINISHED_STATES)
    return unfinished, tuple(sorted(rows, key=lambda r: r.created_at, reverse=True)[:20])


def unfinished_rows(ctx: AppContext) -> tuple[Any, ...]:
    """Unfinished rows (queued, running, unknown) of every origin, memoised on the ledger file's signature."""
    return _ledger_view(str(ctx.settings.data_dir.resolve()), tuple(get_ledger(ctx).mtime_signature()),
                        ctx.account)[0]


def service_now(ctx: AppContext) -> Any:
    """'Now' as the file host sees it: the sandbox's own clock (which tests and demos can advance) or real UTC."""
    from datetime import UTC, datetime

    if ctx.sandbox is not None:
        return datetime.fromtimestamp(ctx.sandbox.backend.now(), UTC)
    return datetime.now(UTC)


@st.cache_resource(show_spinner=False)
def _library_for(data_dir: str) -> Any:
    from lib.elements import ElementLibrary

    return ElementLibrary(data_dir)


def get_library(ctx: AppContext) -> Any:
    """The element library of this data folder (shared: no key in it; it re-reads its file only on change)."""
    return _library_for(str(ctx.settings.data_dir.resolve()))


def get_uploader(ctx: AppContext) -> Any:
    """upload_file bound to this session's client: uploader(source, file_name, upload_path, method)."""
    from lib.uploads import upload_file

    def uploader(source: Any, file_name: str, upload_path: str, method: str = "auto") -> Any:
        return upload_file(ctx.client, source, file_name=file_name, upload_path=upload_path, method=method)

    return uploader


def allow_private_results(ctx: AppContext) -> tuple[str, ...]:
    """The origins a server-side fetch may reach although they are private: the sandbox's own address in
    sandbox mode, or the KIE_API_BASE / KIE_UPLOAD_BASE the operator pointed at a local gateway. Nothing else."""
    if ctx.sandbox is not None:
        return (ctx.sandbox.base_url,)
    return tuple(base for base in (ctx.settings.api_base, ctx.settings.upload_base) if _is_private_base(base))


def _is_private_base(base: str) -> bool:
    import ipaddress
    from urllib.parse import urlparse

    from lib.trust.fetch import is_public_ip

    host = urlparse(base).hostname or ""
    if host == "localhost":
        return True
    try:
        return not is_public_ip(ipaddress.ip_address(host))
    except ValueError:  # a host name: judged per download by the fetch rule
        return False


@st.cache_resource(show_spinner=False)
def _rate_limiter_for(account: str) -> Any:
    from lib.tasks import RateLimiter

    return RateLimiter()


def get_rate_limiter(ctx: AppContext) -> Any:
    """KIE's 20-creates-per-10-s limit is per account, so every session with the same key shares one limiter.
    Keyed by the key's one-way fingerprint: the key itself is never cached."""
    return _rate_limiter_for(f"{ctx.client.account}|{ctx.client.api_base}")


FOLLOW_TICK_S = 2.0
FOLLOW_MAX_PER_TICK = 20


def _due_rows(ctx: AppContext) -> list[Any]:
    import time

    from lib.polling import is_due

    now = time.time()
    due = []
    for row in unfinished_rows(ctx):
        if row.origin != ctx.origin or str(row.task_id).startswith("unknown-") or row.imported_at is not None:
            continue  # imported runs are history, never work: only an explicit Check now queries them
        last = row.last_checked_at.timestamp() if row.last_checked_at else None
        if is_due(row.created_at.timestamp(), last, now):
            due.append(row)
    return due[:FOLLOW_MAX_PER_TICK]


def follow_tick(ctx: AppContext) -> tuple[int, list[str]]:
    """Query every due unfinished task once; returns (tasks that finished, error messages)."""
    from lib.tasks import refresh_task

    finished, errors = 0, []
    for row in _due_rows(ctx):
        new, err = refresh_task(ctx.client, get_ledger(ctx), row, data_dir=ctx.settings.data_dir,
                                allow_private=allow_private_results(ctx))
        if err:
            errors.append(f"{md_line(row.task_id)}: {md(err.user_message())}")
        if new.finished:
            finished += 1
    return finished, errors


@st.fragment(run_every=FOLLOW_TICK_S)
def _follower(ctx: AppContext) -> None:
    from lib.history import HistoryError

    try:
        unfinished = [r for r in unfinished_rows(ctx) if r.origin == ctx.origin and r.imported_at is None]
    except HistoryError:
        return
    if not unfinished:
        return
    finished, errors = follow_tick(ctx)
    st.caption(f"⏳ Following {len(unfinished)} unfinished task(s)…")
    for message in errors[:3]:
        st.warning(message)
    if finished:
        st.rerun(scope="app")


def follow_unfinished(ctx: AppContext) -> None:
    """Resume and follow every unfinished task of this mode (runs on every page, every session).

    The ticking fragment exists only while something is unfinished, so an idle app uses no CPU."""
    from lib.history import HistoryError

    try:
        pending = any(r.origin == ctx.origin and r.imported_at is None for r in unfinished_rows(ctx))
    except HistoryError as exc:  # a broken ledger must not break every page; History explains the fix
        st.sidebar.warning(f"Tasks are not being followed: {md(exc)}")
        return
    if pending:
        with st.sidebar:
            _follower(ctx)
