"""Page setup: every page calls setup_page first (config, session defaults, settings, client, sidebar, follower)."""

from __future__ import annotations

import logging
from typing import Any

import streamlit as st
from streamlit.errors import StreamlitAPIException

from lib.common.settings import load_settings
from lib.history.view import state_icon
from lib.trust.text import md, md_line
from lib.ui.context import (
    AppContext,
    _client_for,
    get_sandbox,
    ledger_view,
    read_secrets,
    storage_for,
)
from lib.ui.follower import follow_unfinished
from lib.ui.sidebar import _sidebar

log = logging.getLogger(__name__)


# Players never grow past the viewport (a 9:16 video at full column width is ~1000 px tall). A constant, never data.
PLAYER_MAX_VH = 70
PAGE_CSS = (f'<style>[data-testid="stVideo"] {{max-height: {PLAYER_MAX_VH}vh; width: 100%; object-fit: contain;}}'
            # a narrow column wraps a cost or balance instead of cutting it to "70 cre…"
            '[data-testid="stMetricValue"] div, [data-testid="stMetricValue"] p '
            '{white-space: normal; overflow: visible; text-overflow: clip; overflow-wrap: anywhere;}'
            # an empty fragment (Compose keeps one for each of the five possible shots) takes no room, not a gap
            '[data-testid="stLayoutWrapper"]:has(> [data-testid="stVerticalBlock"]:empty) {display: none;}'
            "</style>")

SESSION_DEFAULTS: dict[str, Any] = {
    "settings_api_key": "",      # a key typed in this browser session only
    "settings_balance": None,    # last balance read (Decimal) or None
    "settings_balance_error": "",
}


def setup_page(title: str, icon: str = "🎬") -> AppContext:
    """Page config, session defaults, settings, client and sidebar: every page calls this first."""
    st.set_page_config(page_title=f"{title} · Kling Studio", page_icon=icon, layout="wide")
    st.html(PAGE_CSS)  # only the constants above: no data ever reaches this HTML
    for key, value in SESSION_DEFAULTS.items():
        st.session_state.setdefault(key, value)
    settings = load_settings(read_secrets(), st.session_state.get("settings_api_key"))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    sandbox = get_sandbox(settings) if settings.sandbox else None
    storage = storage_for(settings)
    ctx = AppContext(settings, _client_for(settings, sandbox), sandbox, storage)
    _sidebar(ctx)
    follow_unfinished(ctx)
    return ctx


def in_browser() -> bool:
    """A real browser session (AppTest has no Host header: it reads whole runs, so it is given all of a page)."""
    return bool(st.context.headers.get("Host"))


def redraw_only(parts: str | list[str]) -> None:
    """From a widget callback: redraw only these keyed fragments, not the one the widget sits in. A browser keeps
    what the other parts already show; AppTest gets the whole page."""
    if not in_browser():
        return
    try:
        st.rerun(parts)
    except StreamlitAPIException:  # a part this session has not drawn (yet): draw the whole page instead
        log.warning("redraw of parts %s fell back to the whole page", parts)
        st.rerun()


def recent_activity(ctx: AppContext, limit: int = 5) -> None:
    """The last few jobs from the history ledger, or a hint when there are none."""
    try:
        rows = ledger_view(ctx)[1]
    except Exception as exc:  # a broken ledger must not break the home page
        st.warning(f"History could not be read: {md(exc)}")
        return
    if not rows:
        st.caption("No jobs yet. Start on the Compose page.")
        return
    for row in rows[:limit]:
        text = row.prompt or " | ".join(str(s.get("prompt", "")) for s in row.shots if isinstance(s, dict))
        info, link = st.columns([5, 1], vertical_alignment="center")
        info.markdown(f"{state_icon(row.state)} `{row.state}` · {row.created_at:%Y-%m-%d %H:%M} UTC · "
                      f"{md_line(row.mode)} · {'multi-shot · ' if row.multi_shots else ''}"
                      f"{md_line(text, 90) or '(no prompt)'}")
        # same tab (a markdown link opens a new tab, i.e. an empty session); the id travels as a query value
        link.page_link("pages/3_History.py", label="open", icon="🗂️", query_params={"task": row.task_id})
