"""The sidebar fragment that keeps following this session's unfinished tasks on every page."""

from __future__ import annotations

import logging

import streamlit as st

from lib.history.errors import HistoryError
from lib.tasks.follow import follow_tick, is_followable
from lib.tasks.service import current
from lib.trust.text import md, md_line
from lib.ui.context import AppContext, allow_private_results, unfinished_rows

log = logging.getLogger(__name__)

FOLLOW_TICK_S = 2.0


def session_follows(ctx: AppContext) -> bool:
    """Whether this browser session queries KIE itself: only for tasks made with a key typed in this session
    (the server never stores such a key), or when no server-side follower runs in this process (AppTest)."""
    return current() is None or ctx.settings.key_source == "session"


@st.fragment(run_every=FOLLOW_TICK_S)
def _follower(ctx: AppContext) -> None:
    try:
        unfinished = [r for r in unfinished_rows(ctx) if is_followable(r, ctx.origin)]
    except HistoryError:
        return
    seen = set(st.session_state.get("settings_followed_ids") or ())
    st.session_state["settings_followed_ids"] = {r.task_id for r in unfinished}
    if not unfinished:
        if seen and not session_follows(ctx):
            st.rerun(scope="app")  # the last one finished on the server: redraw the page
        return
    if session_follows(ctx):
        result = follow_tick(ctx.client, ctx.storage.ledger, ctx.storage.media, unfinished, origin=ctx.origin,
                             allow_private=allow_private_results(ctx))
        for task_id, err in result.errors[:3]:
            st.warning(f"{md_line(task_id)}: {md(err.user_message())}")
        st.caption(f"⏳ Following {len(unfinished)} unfinished task(s)…")
        if result.finished:
            st.rerun(scope="app")
        return
    st.caption(f"⏳ {len(unfinished)} unfinished task(s), followed by the server (closing this tab is fine).")
    if seen - {r.task_id for r in unfinished}:  # one finished since the last tick: redraw the page
        st.rerun(scope="app")


def follow_unfinished(ctx: AppContext) -> None:
    """Resume and follow every unfinished task of this mode (runs on every page, every session).

    The ticking fragment exists only while something is unfinished, so an idle app uses no CPU."""
    try:
        pending = any(is_followable(r, ctx.origin) for r in unfinished_rows(ctx))
    except HistoryError as exc:  # a broken ledger must not break every page; History explains the fix
        st.sidebar.warning(f"Tasks are not being followed: {md(exc)}")
        return
    if pending:
        with st.sidebar:
            _follower(ctx)
