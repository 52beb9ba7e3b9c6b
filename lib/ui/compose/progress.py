"""The Compose page's progress cards for the tasks this session submitted (redrawn every 2 s while one runs)."""

from __future__ import annotations

import streamlit as st

from lib.compose.batches import elapsed_s, followed_rows, progress_fraction, usual_seconds, video_source
from lib.history.row import HistoryRow
from lib.history.view import state_icon
from lib.kie.errors import advice_for_failure
from lib.trust.paths import safe_id
from lib.trust.text import md, md_line
from lib.trust.urls import link_target
from lib.ui.compose.state import S
from lib.ui.context import AppContext


def _progress_card(ctx: AppContext, row: HistoryRow) -> None:
    with st.container(border=True):
        elapsed = elapsed_s(row)
        st.markdown(f"{state_icon(row.state)} **{row.state}** · {md_line(row.task_id)}  \n"
                    f"{md_line(row.mode)}{' · sound' if row.sound else ''} · {row.duration or '?'} s · "
                    f"{elapsed} s elapsed · batch {md_line(row.batch_id)}")
        if not row.finished:
            usual = S.get("compose_usual", {}).get((row.mode, row.duration)) or usual_seconds((), row.mode, row.duration)
            st.progress(progress_fraction(elapsed, usual), text=f"{elapsed} s of about {usual} s usually")
        # same tab: a new tab would start an empty session
        st.page_link("pages/3_History.py", label="Open in History", icon="🗂️", query_params={"task": row.task_id})
        if row.state == "succeeded" and (source := video_source(row, ctx.storage.media)):
            st.video(source)
            if (video := ctx.storage.media.video(row.task_id)) is not None:
                # read only when clicked: this card redraws every 2 s while other tasks run
                st.download_button("Download MP4", lambda: video.read_bytes(), file_name=f"{safe_id(row.task_id)}.mp4",
                                   mime="video/mp4", key=f"compose_dl_{row.task_id}")
            elif link := link_target(row.result_url):
                st.link_button(f"Download MP4 from {link[1]}", link[0])
        elif row.state == "failed":
            st.error(f"KIE's reason ({md(row.fail_code or 'no code')}): {md(row.fail_msg or 'none given')}")
            st.caption(f"Fix: {md(advice_for_failure(row.fail_code, row.fail_msg))}")
        elif row.state == "unknown":
            st.warning(md(row.fail_msg))


def _progress(ctx: AppContext) -> None:
    rows = followed_rows(ctx.storage.ledger, S["compose_followed"])
    cols = st.columns(2)
    for i, row in enumerate(rows):
        with cols[i % 2]:
            _progress_card(ctx, row)
    if S.get("compose_progress_ticking") and not any(not r.finished for r in rows):
        S["compose_progress_ticking"] = False
        st.rerun(scope="app")


def progress_section(ctx: AppContext) -> None:
    """This session's submitted tasks, their cards redrawn every 2 s while one of them runs."""
    if not S["compose_followed"]:
        return
    st.subheader("Progress of this session's tasks")
    followed = followed_rows(ctx.storage.ledger, S["compose_followed"])
    ticking = any(not r.finished for r in followed)
    S["compose_progress_ticking"] = ticking
    if ticking:  # once per full run, not per 2 s tick: the usual time of each kind being generated
        kinds = {(r.mode, r.duration) for r in followed if not r.finished}
        done = [r for r in ctx.storage.ledger.rows() if r.state == "succeeded"]
        S["compose_usual"] = {k: usual_seconds(done, *k) for k in kinds}
    st.fragment(_progress, run_every=2.0 if ticking else None)(ctx)


