"""The sidebar fragment that keeps following this session's unfinished tasks on every page."""

from __future__ import annotations

import logging
from typing import Any

import streamlit as st

from lib.trust.text import md, md_line
from lib.ui.context import (
    AppContext,
    allow_private_results,
    get_ledger,
    unfinished_rows,
)

log = logging.getLogger(__name__)


FOLLOW_TICK_S = 2.0


FOLLOW_MAX_PER_TICK = 20


def _due_rows(ctx: AppContext) -> list[Any]:
    import time

    from lib.kie.schedule import is_due

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
    from lib.tasks.follow import refresh_task

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
    from lib.history.ledger import HistoryError

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
    from lib.history.ledger import HistoryError

    try:
        pending = any(r.origin == ctx.origin and r.imported_at is None for r in unfinished_rows(ctx))
    except HistoryError as exc:  # a broken ledger must not break every page; History explains the fix
        st.sidebar.warning(f"Tasks are not being followed: {md(exc)}")
        return
    if pending:
        with st.sidebar:
            _follower(ctx)
