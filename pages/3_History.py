"""History: every run in the ledger — filter, inspect, rate, compare, fork, export and import."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
import streamlit as st

from lib.history import view as hv
from lib.history.diff import diff_frame, payload_diff
from lib.history.errors import HistoryFileError
from lib.history.query import PAGE_SIZE, HistoryOverview, HistoryPage, history_overview, query_page
from lib.history.row import ORIGINS, STATES, HistoryRow, visible_to
from lib.history.thumbs import thumbnail_column
from lib.history.transfer import export_csv, import_csv, recipe_json
from lib.history.winner import pick_winner, promotions
from lib.kie.errors import advice_for_failure
from lib.kling.pricing import format_cost
from lib.storage.base import LedgerStore
from lib.tasks.follow import refresh_task, save_locally
from lib.trust.text import md, md_line
from lib.trust.urls import link_target, playable_url
from lib.ui.context import AppContext, allow_private_results, get_ledger, get_library
from lib.ui.page import in_browser, redraw_only, setup_page
from lib.ui.synced import CONTAINER_KEY, synced_controls

# Pixel widths that fit the main column at 1400 px (about 940 px beside the sidebar) with nothing clipped; the task
# id, estimate, elements and origin stay in the data (and the detail panel) but are not drawn as columns.
COLUMN_CONFIG: dict[str, Any] = {
    "Thumbnail": st.column_config.ImageColumn("", width=48, help="The first frame of the archived video"),
    "task_id": st.column_config.TextColumn("Task id"),
    "State": st.column_config.TextColumn("State", width=100, help="⌛ stale = past the deadline, still being checked"),
    "Created": st.column_config.DatetimeColumn("Created", format="MM-DD HH:mm", width=88, help="UTC"),
    "Sound": st.column_config.CheckboxColumn("Sound", width=52),
    "Seconds": st.column_config.NumberColumn("Secs", format="%d s", width=44, help="Duration"),
    "Prompt": st.column_config.TextColumn("Prompt", width=166),
    "Mode": st.column_config.TextColumn("Mode", width=46),
    "Ratio": st.column_config.TextColumn("Ratio", width=46),
    "Shots": st.column_config.NumberColumn("Shots", format="%d", width=46),
    "Rating": st.column_config.TextColumn("Rating", width=72),
    "Est. credits": st.column_config.NumberColumn("Est. credits", format="%d"),
    "Credits used": st.column_config.NumberColumn("Credits", format="%.1f", width=56,
                                                  help="Credits KIE reported for the run"),
    "Took (s)": st.column_config.NumberColumn("Took", format="%.0f s", width=54, help="Submit to finish"),
    "Result": st.column_config.LinkColumn("Result", display_text="video ↗", width=66,
                                          help="KIE's result link (expires); opens KIE's host in a new tab"),
}
TABLE_ORDER = ("Thumbnail", "State", "Created", "Prompt", "Mode", "Ratio", "Shots", "Sound", "Seconds", "Rating",
               "Credits used", "Took (s)", "Result")
HIGHLIGHT = "background-color: rgba(255, 196, 0, 0.28)"


def _broken_ledger(exc: HistoryFileError) -> None:
    st.title("🗂️ History")
    st.error(f"**The history file cannot be used.** {md(exc)}", icon="🧯")
    st.caption("Nothing was changed. Other pages keep working; fix the file, then reload this page.")
    st.stop()


# Filters, sort and compare picks come back after a visit to another page (Fork, Compose and back).
KEEP = "session"
DETAIL_PART = "history_detail"  # the picker and the picked run, redrawn alone when a table row is picked
FILTERS_PART = "history_filters"  # the filter and sort widgets
RESULTS_PART = "history_results"  # the table, detail, compare and export/import, redrawn alone when a filter changes
PICK_LIMIT = 100  # the picker and compare list offer the first rows of the current view, not 10,000 options


@st.cache_resource(max_entries=8, show_spinner=False)
def _overview(key: str, version: tuple[int, ...], account: str, _ledger: LedgerStore) -> HistoryOverview:
    """Visible runs, hidden live runs and filter choices of one ledger version (shared; reruns reuse it)."""
    return history_overview(_ledger, account)


@st.cache_resource(max_entries=32, show_spinner=False)
def _page(key: str, version: tuple[int, ...], account: str, flt_key: str, sort_by: str, descending: bool,
          offset: int, _flt: hv.HistoryFilter, _ledger: LedgerStore) -> HistoryPage:
    """One page of the filtered, sorted runs: a click that changes neither the view nor the ledger does no work.
    cache_resource (not cache_data): no copy per rerun; rows are frozen."""
    return query_page(_ledger, _flt, sort_by, descending, offset, PAGE_SIZE, account=account)


@st.cache_resource(max_entries=32, show_spinner=False)
def _page_frame(key: str, version: tuple[int, ...], task_ids: tuple[str, ...], _rows: list[HistoryRow],
                _media: Any) -> pd.DataFrame:
    """The table of one page (its rows only), with each run's thumbnail as an inline data: URI."""
    frame = hv.table_frame(_rows)
    frame.insert(0, "Thumbnail", pd.Series(thumbnail_column(_media, list(task_ids)), index=frame.index,
                                           dtype="string"))  # a missing picture is an empty cell, not "None"
    return frame


@st.cache_data(max_entries=4, show_spinner=False)
def _unreadable_lines(path: str, signature: tuple[int, ...], _ledger: LedgerStore) -> list[tuple[int, str]]:
    return _ledger.unreadable()


def _unreadable_rows(key: str, ledger: LedgerStore, signature: tuple[int, ...]) -> None:
    """One bad line never breaks the page: say which lines were skipped (they stay in the file as they are)."""
    bad = _unreadable_lines(key, signature, ledger)
    if bad:
        shown = "; ".join(f"line {line}: {why}" for line, why in bad[:5])
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        st.warning(f"{len(bad)} unreadable row(s) in the history file were skipped — {md(shown)}{more}. "
                   "They are left in the file untouched; repair them in a text editor if they matter.", icon="🧩")


def _flash(kind: str, message: str) -> None:
    st.session_state["history_flash"] = (kind, message)


def _show_flash() -> None:
    kind, message = st.session_state.pop("history_flash", None) or ("", "")
    if kind:
        getattr(st, kind)(message)
        if kind == "success":
            st.toast(message, icon="✅")


def _select(task_id: str | None) -> None:
    st.session_state["history_selected"] = task_id
    st.session_state["history_link_seen"] = task_id
    if task_id:
        st.query_params["task"] = task_id
    else:
        st.query_params.pop("task", None)


def _follow_deep_link() -> None:
    """`?task=<id>` selects that run once (the selection can then change it)."""
    wanted = st.query_params.get("task")
    if wanted and wanted != st.session_state.get("history_link_seen"):
        st.session_state["history_selected"] = wanted
    st.session_state["history_link_seen"] = wanted


def _filter_changed() -> None:
    redraw_only(RESULTS_PART)  # the filters already show the change: the table, detail and compare follow it


def _multiselect(col: Any, label: str, options: tuple[str, ...], key: str, **kw: Any) -> None:
    # a chosen value stays among the choices even when no run has it any more
    options = tuple(dict.fromkeys([*options, *st.session_state.get(key, [])]))
    col.multiselect(label, options, key=key, persist_state=KEEP, on_change=_filter_changed, **kw)


def _filters(facets: hv.Facets) -> None:
    """The filter and sort widgets: a fragment of their own, so a change redraws the results, not these."""
    keep = {"persist_state": KEEP, "on_change": _filter_changed}
    with st.expander("Filters and sorting", expanded=True):
        c = st.columns(4)
        _multiselect(c[0], "State", STATES, "history_f_states", format_func=hv.STATE_BADGES.get)
        _multiselect(c[1], "Live / sandbox", ORIGINS, "history_f_origins")
        _multiselect(c[2], "Mode", facets.modes, "history_f_modes")
        c[3].selectbox("Sound", hv.SOUND_CHOICES, key="history_f_sound", **keep)
        c = st.columns(4)
        _multiselect(c[0], "Element", facets.elements, "history_f_elements")
        c[1].date_input("Date range (UTC)", value=(), key="history_f_dates", **keep)
        c[2].text_input("Search", key="history_f_text", placeholder="prompt, notes, task id, element…", **keep)
        c[3].select_slider("Rating at least", options=list(range(6)), key="history_f_rating",
                           format_func=lambda n: "any" if n == 0 else "★" * n, **keep)
        c = st.columns(4)
        c[0].selectbox("Sort by", list(hv.SORT_KEYS), key="history_sort", **keep)
        c[1].toggle("Descending", value=True, key="history_sort_desc", **keep)


def _chosen_view() -> tuple[hv.HistoryFilter, str, bool]:
    """(filter, sort key, descending) from what the filter widgets hold (their defaults before they are drawn)."""
    ss = st.session_state
    days = ss.get("history_f_dates", ())
    days = tuple(days) if isinstance(days, tuple | list) else (days,)
    date_from: date | None = days[0] if days else None
    date_to: date | None = days[1] if len(days) > 1 else date_from
    flt = hv.HistoryFilter(states=tuple(ss.get("history_f_states", ())), origins=tuple(ss.get("history_f_origins", ())),
                           modes=tuple(ss.get("history_f_modes", ())),
                           sound=ss.get("history_f_sound", hv.SOUND_CHOICES[0]),
                           elements=tuple(ss.get("history_f_elements", ())), date_from=date_from, date_to=date_to,
                           text=ss.get("history_f_text", ""), min_rating=ss.get("history_f_rating", 0))
    return flt, ss.get("history_sort", next(iter(hv.SORT_KEYS))), bool(ss.get("history_sort_desc", True))


def _on_table_select() -> None:
    ids = st.session_state.get("history_table_ids", [])
    picked = st.session_state["history_table"]["selection"]["rows"]
    if picked and picked[0] < len(ids):
        _select(ids[picked[0]])
        redraw_only(DETAIL_PART)  # the table already shows the pick: only the picker and the detail change


def _page_number(total: int, view: tuple[Any, ...]) -> tuple[int, str]:
    """(the page being shown, the pager's key); a new filter or sort starts again at page 1 under a new key, so the
    pager is never given its value through session state."""
    pages = max(1, math.ceil(total / PAGE_SIZE))
    if st.session_state.get("history_page_of") != view:
        st.session_state["history_page_of"] = view
        st.session_state["history_pager"] = st.session_state.get("history_pager", 0) + 1
    key = st.session_state["history_page_key"] = f"history_page_{st.session_state.get('history_pager', 0)}"
    number = st.session_state.get(key) or 1
    if number > pages:  # the runs shrank under this page (a delete elsewhere): a fresh pager on the last page
        st.session_state["history_pager"] += 1
        st.session_state["history_page_of"] = view
        key = st.session_state["history_page_key"] = f"history_page_{st.session_state['history_pager']}"
        number = pages
    return number, key


def _pager(total: int, number: int, key: str) -> None:
    pages = max(1, math.ceil(total / PAGE_SIZE))
    if pages > 1:  # the widget's value is read at the top of the next run (_page_number)
        st.pagination(pages, default=number, key=key, max_visible_pages=9)


def _table(ctx: AppContext, page: HistoryPage, pager: tuple[int, str], every: int, key: str,
           version: tuple[int, ...]) -> None:
    number = pager[0]
    ids = [r.task_id for r in page.rows]
    st.session_state["history_table_ids"] = ids
    first = (number - 1) * PAGE_SIZE
    span = f" (rows {first + 1:,}–{first + len(ids):,} on this page)" if page.total > len(ids) else ""
    st.caption(f"{page.total:,} of {every:,} run(s) shown{span}. Click a row (or use the picker) to see its details.")
    frame = _page_frame(key, version, tuple(ids), page.rows, ctx.storage.media)
    st.dataframe(frame, hide_index=True, column_config=COLUMN_CONFIG, column_order=TABLE_ORDER, key="history_table",
                 on_select=_on_table_select, selection_mode="single-row")
    _pager(page.total, *pager)


def _selected_row(ledger: LedgerStore, account: str, on_page: dict[str, HistoryRow]) -> HistoryRow | None:
    """The selected run, from this page or (a deep link, another page) from the ledger, if this session may see it."""
    selected = st.session_state.get("history_selected")
    if not selected:
        return None
    row = on_page.get(selected) or ledger.get(selected)
    return row if row is not None and visible_to(row, account) else None


def _picker(shown: list[HistoryRow], selected_row: HistoryRow | None) -> None:
    selected = st.session_state.get("history_selected")
    by_id = {r.task_id: r for r in shown} | ({selected_row.task_id: selected_row} if selected_row else {})
    options = [None, *[r.task_id for r in shown[:PICK_LIMIT]]]
    if selected and selected not in options:
        options.append(selected)
    st.session_state["history_pick"] = selected

    def label(task_id: str | None) -> str:
        row = by_id.get(task_id or "")
        if row is None:
            return "— choose a run —" if task_id is None else f"{task_id} (not in this history)"
        return f"{hv.state_badge(row)} · {hv.run_label(row, prompt_chars=60)}"

    st.selectbox("Show details of", options, format_func=label, key="history_pick",
                 on_change=lambda: _select(st.session_state["history_pick"]))
    if selected and selected_row is None:
        st.warning(f"Task {md_line(selected, 120)} is not in this history (deleted, or recorded on another data "
                   "folder).")


def _status(ctx: AppContext, ledger: LedgerStore, row: HistoryRow) -> None:
    if row.state == "unknown":
        st.warning(hv.UNKNOWN_HELP, icon="❓")
    if row.state == "failed":
        st.error(f"**Failed** ({md(row.fail_code or 'no code')}): {md(row.fail_msg or 'no reason given')}\n\n"
                 f"**Fix:** {md(advice_for_failure(row.fail_code, row.fail_msg))}", icon="❌")
    if not hv.is_checkable(row):
        return
    if row.imported_at is not None:
        st.info("**Imported run, not followed.** It came in through Import, so the app does not query it by itself. "
                "If it is yours, check it once with Check now (in the mode it was made in).", icon="📥")
    if row.stale:
        st.warning("**Stale, still checking.** This task is past the polling deadline. It is not abandoned: "
                   "the app keeps checking it, and KIE may still deliver it.", icon="⌛")
    other_mode = row.origin != ctx.origin
    if st.button("Check now", key="history_check_now", disabled=other_mode,
                 help=f"Switch to {row.origin} mode to query this task." if other_mode else "Ask KIE once."):
        new, err = refresh_task(ctx.client, ledger, ctx.storage.media, row,
                                allow_private=allow_private_results(ctx))
        _flash("warning" if err else "success", md(err.user_message()) if err else f"Checked: {hv.state_badge(new)}.")
        st.rerun()


def _save_locally(ctx: AppContext, ledger: LedgerStore, row: HistoryRow) -> None:
    _, err = save_locally(ctx.client, ledger, ctx.storage.media, row, ask_kie=row.origin == ctx.origin,
                          allow_private=allow_private_results(ctx))
    _flash("error" if err else "success", md(err.user_message()) if err else "Video saved in the data folder.")


def _player(ctx: AppContext, ledger: LedgerStore, row: HistoryRow, key: str = "detail") -> None:
    path = ctx.storage.media.video(row.task_id)
    if path is not None:
        st.video(str(path))
        if key == "detail":
            st.download_button("⬇️ Download video", lambda: path.read_bytes(), file_name=f"{row.task_id}.mp4",
                               mime="video/mp4", key="history_download_video")
        return
    playable, link = playable_url(row.result_url), link_target(row.result_url)
    if playable:
        st.video(playable)
        st.caption("Playing from KIE's link, which expires: save it locally to keep it.")
    elif link:
        st.caption(f"The result is on {md(link[1])}, which is not one of KIE's media hosts, so it is not played "
                   "in the page. Save it locally (if its address passes the fetch rule) or open the link yourself.")
    elif not row.finished:
        st.info("The video appears here when the task finishes.", icon="⏳")
    else:
        st.caption("No video for this run.")
    if key == "detail" and row.state == "succeeded":
        if st.button("💾 Save video locally", key="history_archive",
                     help="Download the result into the data folder (the earlier download did not succeed)."):
            _save_locally(ctx, ledger, row)
            st.rerun()
        if link:
            st.link_button(f"⬇️ Open the result on {link[1]}", link[0])


def _saved(message: str) -> None:
    st.session_state["history_saved"] = message  # shown by the rating and notes box itself (a fragment)


def _save_rating(ledger: LedgerStore, task_id: str) -> None:
    stars = st.session_state.get(f"history_rating_{task_id}")
    row = ledger.get(task_id)  # keep updated_at: it marks when the task itself last changed (its finish time)
    if row is None:
        return
    ledger.update(task_id, rating=0 if stars is None else int(stars) + 1, updated_at=row.updated_at)
    _saved("Rating saved.")


@st.fragment
def _rating_and_notes(ledger: LedgerStore, row: HistoryRow) -> None:
    """Rating and notes redraw only this box when they change (the table shows them after the next full run)."""
    st.markdown("**Your rating**")
    st.feedback("stars", key=f"history_rating_{row.task_id}", default=row.rating - 1 if row.rating else None,
                on_change=_save_rating, args=(ledger, row.task_id))
    st.text_area("Notes", value=row.notes, key=f"history_notes_{row.task_id}", height=90,
                 on_change=_save_notes, args=(ledger, row.task_id),
                 help="Saved when you leave the box (picking another run saves them first).")
    # never disabled: typed text commits on blur, so a button enabled only after the blur swallows the first click
    st.button("Save notes", key="history_save_notes", on_click=_save_notes, args=(ledger, row.task_id))
    if message := st.session_state.pop("history_saved", None):
        st.success(message)
        st.toast(message, icon="✅")


def _save_notes(ledger: LedgerStore, task_id: str) -> None:
    """Notes save on change: typing, then picking another run, never loses them."""
    notes = st.session_state.get(f"history_notes_{task_id}")
    row = ledger.get(task_id)
    if row is None or notes is None:
        return
    if notes != row.notes:
        ledger.update(task_id, notes=notes, updated_at=row.updated_at)
    _saved("Notes saved.")


def _fork(row: HistoryRow) -> None:
    st.session_state["compose_fork"] = {"payload": row.payload, "task_id": row.task_id}
    st.switch_page("pages/2_Compose.py")


def _delete(ctx: AppContext, ledger: LedgerStore, row: HistoryRow) -> None:
    if st.session_state.get("history_confirm_delete") != row.task_id:
        if st.button("🗑️ Delete…", key="history_delete"):
            st.session_state["history_confirm_delete"] = row.task_id
            st.rerun()
        return
    st.warning(f"Delete run {md_line(row.task_id)} from the history? This cannot be undone.", icon="🗑️")
    video = ctx.storage.media.video(row.task_id)
    drop_video = video is not None and st.checkbox("Also delete the saved video file", key="history_delete_video")
    yes, no = st.columns(2)
    if yes.button(":red[Yes, delete]", icon="🗑️", key="history_delete_yes"):
        ledger.delete([row.task_id])
        if drop_video:
            ctx.storage.media.delete_video(row.task_id)
        st.session_state["history_confirm_delete"] = None
        _select(None)
        _flash("success", f"Deleted run {md_line(row.task_id)}.")
        st.rerun()
    if no.button("Cancel", key="history_delete_no"):
        st.session_state["history_confirm_delete"] = None
        st.rerun()


def _actions(ctx: AppContext, ledger: LedgerStore, row: HistoryRow, missing: list[str]) -> None:
    if missing:
        st.warning(f"Element(s) no longer in the library: {md_line(', '.join('@' + m for m in missing))}. "
                   "A fork keeps them in the prompt; add them again on the Elements page.", icon="🧩")
    if st.button("🍴 Fork in Compose", key="history_fork", disabled=not row.payload, type="primary"):
        _fork(row)
    st.download_button("📄 Recipe (JSON)", recipe_json(row), file_name=f"recipe-{row.task_id}.json",
                       mime="application/json", key="history_recipe")
    _delete(ctx, ledger, row)


def _detail(ctx: AppContext, ledger: LedgerStore, row: HistoryRow) -> None:
    st.subheader(f"{hv.state_badge(row)} · {md_line(row.task_id)}")
    st.caption(f"{md(hv.timing_text(row, datetime.now(UTC)))}  \n{md(hv.credits_text(row))} · {row.origin} · "
               f"batch {md_line(row.batch_id or '—')}")
    _status(ctx, ledger, row)
    missing = hv.missing_elements(row, [e.name for e in get_library(ctx).list()])
    left, right = st.columns([3, 2])
    with left:
        _player(ctx, ledger, row)
    with right:
        _rating_and_notes(ledger, row)
        _actions(ctx, ledger, row, missing)
    # drawn only while open (picking a run then draws no JSON tree); opening it redraws the detail once
    payload = st.expander("Payload sent to KIE", expanded=False, key="history_payload_box", on_change="rerun")
    if payload.open or not in_browser():
        payload.json(row.payload or {"note": "no payload recorded"})


def _picked(ctx: AppContext, ledger: LedgerStore, shown: list[HistoryRow]) -> None:
    """The picker and the picked run's detail: a fragment of its own, so picking a run redraws this, not the
    table, filters and compare section around it."""
    row = _selected_row(ledger, ctx.account, {r.task_id: r for r in shown})
    _picker(shown, row)
    if row is not None:
        _detail(ctx, ledger, row)


def _compare_rows(ledger: LedgerStore, account: str, shown: list[HistoryRow]) -> dict[str, HistoryRow]:
    """This page's runs plus the runs already picked (which may be on another page)."""
    by_id = {r.task_id: r for r in shown}
    for task_id in st.session_state.get("history_compare", []):
        if task_id not in by_id and (row := ledger.get(task_id)) is not None and visible_to(row, account):
            by_id[task_id] = row
    return by_id


@st.fragment
def _compare(ctx: AppContext, ledger: LedgerStore, shown: list[HistoryRow]) -> None:
    """Picking runs to compare redraws only this section."""
    by_id = _compare_rows(ledger, ctx.account, shown)
    chosen = [t for t in st.session_state.get("history_compare", []) if t in by_id and by_id[t].finished]
    options = [r.task_id for r in shown if r.finished][:PICK_LIMIT]
    options += [t for t in chosen if t not in options]
    st.session_state["history_compare"] = chosen
    picked = st.multiselect("Runs to compare (2–4 finished runs)", options, key="history_compare",
                            format_func=lambda t: hv.run_label(by_id[t]), max_selections=4, persist_state=KEEP)
    if len(picked) < 2:
        st.caption("Pick two to four finished runs to see them side by side with a field-by-field diff.")
        return
    runs = [by_id[t] for t in picked]
    labels = [f"#{i + 1} {r.task_id[-8:]}" for i, r in enumerate(runs)]
    with st.container(key=CONTAINER_KEY):  # the synced control below drives every player in here
        for col, run, label in zip(st.columns(len(runs)), runs, labels, strict=True):
            with col:
                st.markdown(f"**{md(label)}** · {md_line(hv.prompt_text(run), 80)}")  # fits 4 columns at 1400 px
                _player(ctx, ledger, run, key="compare")
                st.markdown("  \n".join(f"{k}: **{md_line(v)}**" for k, v in hv.settings_summary(run).items()))
    synced_controls()
    _winner(ledger, runs, labels)
    _diff(runs, labels)


def _diff(runs: list[HistoryRow], labels: list[str]) -> None:
    only = st.toggle("Only fields that differ", key="history_compare_only", persist_state=KEEP)
    frame = diff_frame(payload_diff([r.payload for r in runs]), labels, only_differences=only)
    st.caption(f"{int(frame['differs'].sum())} differing field(s) highlighted.")
    styled = frame.style.apply(lambda r: [HIGHLIGHT if r["differs"] else ""] * len(r), axis=1)
    # every compared run visible at 1400 px: run columns share the width instead of scrolling sideways
    widths = {lab: st.column_config.TextColumn(lab, width="small") for lab in labels} if len(labels) > 2 else {}
    st.dataframe(styled, hide_index=True, key="history_diff",
                 column_config={"Field": st.column_config.TextColumn("Field", width="medium"), **widths,
                                "differs": st.column_config.CheckboxColumn("Differs", width="small")})


def _winner(ledger: LedgerStore, runs: list[HistoryRow], labels: list[str]) -> None:
    """Pick the winner: five stars and a 'winner of' note; then fork it or promote it to a higher mode."""
    c_pick, c_go = st.columns([3, 2])
    winner = c_pick.selectbox("Pick the winner", list(range(len(runs))), index=None, key="history_winner_pick",
                              format_func=lambda i: f"{labels[i]} · {hv.run_label(runs[i])}",
                              placeholder="choose the best take")
    if winner is None:
        return
    best = runs[winner]
    if c_go.button("🏆 Record the winner", key="history_winner_save"):
        pick_winner(ledger, best.task_id, [r.task_id for r in runs])
        st.toast(f"Winner recorded: {md_line(best.task_id)}", icon="🏆")
        st.rerun()
    actions = st.columns(1 + len(promotions(best)))
    if actions[0].button("🍴 Fork the winner", key="history_winner_fork", disabled=not best.payload):
        _fork(best)
    for col, (mode, body, credits) in zip(actions[1:], promotions(best), strict=True):
        if col.button(f"⬆️ Same recipe, {mode} · {format_cost(credits)}", key=f"history_promote_{mode}"):
            st.session_state["compose_fork"] = {"payload": body, "task_id": best.task_id}
            st.switch_page("pages/2_Compose.py")


def _import(ledger: LedgerStore) -> None:
    nonce = st.session_state.setdefault("history_import_nonce", 0)
    upload = st.file_uploader("Import a history CSV", type=["csv"], key=f"history_import_{nonce}")
    if upload is None:
        return
    report = import_csv(upload.getvalue())
    if not report.ok:
        st.error(md(report.summary()), icon="🚫")
        return
    new = [r for r in report.rows_ok if ledger.get(r.task_id) is None]  # by id: never every row of the ledger
    (st.warning if report.bad_rows or report.duplicates else st.info)(md(report.summary()))
    st.caption("Imported runs are a record, not work: unfinished ones are not followed, file locations are "
               "dropped, and a video is saved locally only when you ask (through the app's safe fetch).")
    st.caption(f"{len(new)} new run(s); {len(report.rows_ok) - len(new)} already in the history (kept as is).")
    if report.bad_rows:
        st.dataframe(pd.DataFrame(report.bad_rows, columns=["Line", "Problem"]), hide_index=True)
    st.dataframe(hv.table_frame(report.rows_ok), hide_index=True, column_config=COLUMN_CONFIG,
                 key="history_import_preview")
    if st.button(f"Merge {len(new)} new run(s)", key="history_merge", type="primary", disabled=not new):
        result = ledger.merge(report)
        st.session_state["history_import_nonce"] = nonce + 1  # the success flash also shows as a toast
        _flash("success", f"Merged {len(result.added)} run(s); skipped {len(result.skipped)} already present.")
        st.rerun()


def _export_import(ledger: LedgerStore, account: str, view: tuple[hv.HistoryFilter, str, bool] | None,
                   total: int, shown: int) -> None:
    """Exports are made only when clicked (download_button runs the callable then), never on a rerun."""
    def every() -> bytes:
        return export_csv([r for r in ledger.rows() if visible_to(r, account)])

    def filtered() -> bytes:
        flt, sort_by, descending = view or (hv.HistoryFilter(), "Created", True)
        return export_csv(query_page(ledger, flt, sort_by, descending, 0, max(shown, 1), account=account).rows)

    # drawn only while open: a filter change or the first paint sends no uploader or buttons for a closed box
    box = st.expander("Export and import", expanded=False, key="history_export_box", on_change="rerun")
    if not box.open and in_browser():
        return
    with box:
        c = st.columns(2)
        c[0].download_button("⬇️ Export all (CSV)", every, key="history_export_all",
                             file_name="kling-history.csv", mime="text/csv", disabled=not total)
        c[1].download_button("⬇️ Export the filtered view (CSV)", filtered, mime="text/csv",
                             file_name="kling-history-filtered.csv", key="history_export_view", disabled=not shown)
        st.caption("Spreadsheet-safe (formula-like cells are neutralised). Import merges by task id: existing "
                   "runs are never changed and a broken file never touches your history.")
        _import(ledger)


def _runs(ctx: AppContext, ledger: LedgerStore) -> None:
    """The table's page, the picked run's detail, the compare section and export/import: a fragment of its own,
    redrawn alone when a filter or the sort changes (the filter widgets already show the change)."""
    try:
        version, key = ledger.version(), str(ctx.settings.data_dir)
        view = _overview(key, version, ctx.account, ledger)
        flt, sort_by, descending = _chosen_view()
        pager = _page_number(view.total, (flt, sort_by, descending))
        args = (key, version, ctx.account, repr(flt), sort_by, descending)
        page = _page(*args, (pager[0] - 1) * PAGE_SIZE, flt, ledger)
        _table(ctx, page, pager, view.total, key, version)
        st.fragment(_picked, key=DETAIL_PART)(ctx, ledger, page.rows)
        st.header("Compare runs")
        _compare(ctx, ledger, page.rows)
        _export_import(ledger, ctx.account, (flt, sort_by, descending), view.total, page.total)
    except HistoryFileError as exc:
        _broken_ledger(exc)


@st.fragment
def _body(ctx: AppContext, ledger: LedgerStore) -> None:
    """Everything below the title: its filters and its results are fragments of their own inside it."""
    try:
        version, key = ledger.version(), str(ctx.settings.data_dir)
        view = _overview(key, version, ctx.account, ledger)
        _unreadable_rows(key, ledger, version)
        if note := hv.hidden_runs_note(view.hidden, ctx.settings.sandbox):
            st.warning(md(note), icon="🔑")
        if not view.total:
            st.info("No runs yet. Submit a job on the Compose page, or import a history CSV below.")
            _export_import(ledger, ctx.account, None, 0, 0)
            return
        st.fragment(_filters, key=FILTERS_PART)(view.facets)
        st.fragment(_runs, key=RESULTS_PART)(ctx, ledger)
    except HistoryFileError as exc:
        _broken_ledger(exc)


def main() -> None:
    ctx = setup_page("History", "🗂️")  # a broken ledger is reported by setup_page's follower, not raised
    st.title("🗂️ History")
    st.session_state.setdefault("history_selected", None)
    _follow_deep_link()
    _show_flash()
    _body(ctx, get_ledger(ctx))

main()
