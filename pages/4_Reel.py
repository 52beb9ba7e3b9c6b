"""Reel: pick finished takes, order them, play them back to back, continue one from its last frame, and export
them as one MP4 with a chapter list."""

from __future__ import annotations

import streamlit as st

from lib.history.row import HistoryRow, visible_to
from lib.history.view import prompt_text, run_label
from lib.reel.chain import continue_fork
from lib.reel.clips import Clip, ReelError, chapters_csv, duration_s, export_reel
from lib.trust.text import md, md_line
from lib.ui.context import AppContext, get_uploader
from lib.ui.page import setup_page

S = st.session_state
PICK_LIMIT = 200


def _takes(ctx: AppContext) -> dict[str, HistoryRow]:
    """Finished takes with a saved video, newest first (the reel joins only the app's own files)."""
    rows = [r for r in ctx.storage.ledger.rows() if r.state == "succeeded" and visible_to(r, ctx.account)]
    rows.sort(key=lambda r: r.created_at, reverse=True)
    return {r.task_id: r for r in rows[:PICK_LIMIT] if ctx.storage.media.video(r.task_id) is not None}


def _label(takes: dict[str, HistoryRow], task_id: str) -> str:
    row = takes[task_id]
    return f"{run_label(row)} · {prompt_text(row)[:50]}"


def _order(chain: list[str]) -> None:
    """Move takes up and down: the reel plays them in this order."""
    for i, task_id in enumerate(chain):
        c_name, c_up, c_down = st.columns([6, 1, 1])
        c_name.caption(f"{i + 1}. {md_line(task_id)}")
        if c_up.button("↑", key=f"reel_up_{task_id}", disabled=i == 0):
            chain[i - 1], chain[i] = chain[i], chain[i - 1]
            st.rerun()
        if c_down.button("↓", key=f"reel_down_{task_id}", disabled=i == len(chain) - 1):
            chain[i + 1], chain[i] = chain[i], chain[i + 1]
            st.rerun()


def _play(ctx: AppContext, chain: list[str]) -> None:
    total = 0.0
    for task_id in chain:
        path = ctx.storage.media.video(task_id)
        if path is not None:
            total += duration_s(path)
            st.video(str(path))
    st.caption(f"{len(chain)} take(s), {total:.1f} s in all.")


def _continue(ctx: AppContext, takes: dict[str, HistoryRow], chain: list[str]) -> None:
    if S.get("reel_continue_pick") not in chain:  # default to the chain's last take, also when it grows
        S["reel_continue_pick"] = chain[-1] if chain else None
    last = st.selectbox("Continue from this take", chain, format_func=lambda t: _label(takes, t),
                        key="reel_continue_pick")
    if st.button("▶️ Continue in Compose (its last frame becomes the first frame)", key="reel_continue",
                 disabled=not last):
        try:
            S["compose_fork"] = continue_fork(takes[last], ctx.storage.media, get_uploader(ctx))
        except ReelError as exc:
            st.error(md(exc))
            return
        st.switch_page("pages/2_Compose.py")


def _export(ctx: AppContext, chain: list[str]) -> None:
    if not st.button("🎞️ Build the reel (one MP4)", key="reel_build", disabled=not chain):
        return
    clips = [Clip(t, p) for t in chain if (p := ctx.storage.media.video(t)) is not None]
    try:
        with st.spinner(f"Joining {len(clips)} take(s)…"):
            video, chapters = export_reel(clips)
    except ReelError as exc:
        st.error(md(exc))
        return
    S["reel_built"] = (video, chapters_csv(chapters))
    st.toast(f"Reel ready: {len(clips)} take(s).", icon="🎞️")


def main() -> None:
    ctx = setup_page("Reel", "🎞️")
    st.title("🎞️ Reel")
    st.caption("Pick finished takes, put them in order, play them back to back, continue the story from a take's "
               "last frame, and export one MP4 with a chapter list.")
    takes = _takes(ctx)
    if not takes:
        st.info("No finished takes with a saved video yet. Submit a job on the Compose page.")
        return
    picked = st.multiselect("Takes in the reel", list(takes), key="reel_pick",
                            format_func=lambda t: _label(takes, t))
    chain = S.setdefault("reel_chain", [])
    chain[:] = [t for t in chain if t in picked] + [t for t in picked if t not in chain]
    _order(chain)
    _play(ctx, chain)
    _continue(ctx, takes, chain)
    _export(ctx, chain)
    if built := S.get("reel_built"):
        st.download_button("⬇️ Reel (MP4)", built[0], file_name="kling-reel.mp4", mime="video/mp4", key="reel_dl")
        st.download_button("⬇️ Chapters (CSV)", built[1], file_name="kling-reel-chapters.csv", mime="text/csv",
                           key="reel_chapters")


main()
