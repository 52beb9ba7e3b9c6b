"""Batch: a Compose template with {{variables}} and {a|b} choices × rows (typed or from a CSV), every row rendered,
checked and priced before anything is sent, then one resumable, paced batch with a downloadable manifest.

The page draws; lib.batch decides (template, rows, plan, runner, manifest).
"""

from __future__ import annotations

import hashlib
import secrets
from decimal import Decimal
from typing import Any

import pandas as pd
import streamlit as st

from lib.batch.background import is_running, pause_batch, start_batch
from lib.batch.manifest import manifest_csv
from lib.batch.plan import Plan, plan_batch
from lib.batch.rows import OPTION_COLUMNS, RowSet, RowsRefused, rows_from_csv, rows_from_records, sample_csv
from lib.batch.runner import Batch, Sender, batch_pace, create_batch, list_batches, load_batch
from lib.batch.template import Template, make_template
from lib.compose.form import FORM_DEFAULTS, form_of, new_shot
from lib.history.view import state_icon
from lib.kling import rules
from lib.kling.pricing import format_cost
from lib.tasks.service import callback_base
from lib.trust.text import md, md_line
from lib.ui.context import AppContext, current_balance, get_rate_limiter, refresh_balance
from lib.ui.page import setup_page

S = st.session_state
SHOWN_PROBLEMS = 40
PAGE_DEFAULTS: dict[str, Any] = {
    "batch_multi": False, "batch_prompt": "", "batch_mode": "std", "batch_sound": False, "batch_aspect": "16:9",
    "batch_duration": rules.DEFAULT_DURATION, "batch_shot_count": 2, "batch_base": None,
    "batch_table": [], "batch_table_v": 0, "batch_csv_seen": "", "batch_csv_errors": [], "batch_csv_notes": [],
    "batch_skip_errors": True, "batch_confirm_token": "", "batch_current": None,
}
BATCH_STATE_ICONS = {"planned": "⏳", "unknown": "❓", "sent": "📤", "failed": "⛔", "skipped": "⏭️"}


# ---------------------------------------------------------------- template

def _from_compose() -> None:
    """Copy the current Compose form into the template fields (frames, elements and cfg come along)."""
    form = form_of(S)
    S["batch_base"] = form
    S.update({"batch_multi": form["compose_multi"], "batch_prompt": form["compose_prompt"],
              "batch_mode": form["compose_mode"], "batch_sound": form["compose_sound"],
              "batch_aspect": form["compose_aspect"], "batch_duration": form["compose_duration"]})
    shots = form["compose_shots"] or []
    S["batch_shot_count"] = max(1, min(rules.SHOTS_MAX, len(shots) or 2))
    for i, shot in enumerate(shots[: rules.SHOTS_MAX]):
        S[f"batch_shot_prompt_{i}"], S[f"batch_shot_dur_{i}"] = shot["prompt"], int(shot["duration"])


def _shots_editor() -> list[dict[str, Any]]:
    count = st.number_input("Shots", rules.SHOTS_MIN, rules.SHOTS_MAX, key="batch_shot_count")
    shots = []
    for i in range(int(count)):
        c_text, c_dur = st.columns([5, 1])
        text = c_text.text_area(f"Shot {i + 1} prompt", key=f"batch_shot_prompt_{i}", height=68)
        S.setdefault(f"batch_shot_dur_{i}", 3)
        seconds = c_dur.number_input("Seconds", rules.SHOT_DURATION_MIN, rules.SHOT_DURATION_MAX,
                                     key=f"batch_shot_dur_{i}")
        shots.append({**new_shot(text, int(seconds)), "id": f"s{i}"})
    return shots


def _template_editor() -> Template:
    st.subheader("1 · Template")
    st.caption("Write `{{variable}}` where each row's value goes and `{a|b|c}` for choices. Choices cycle by row "
               "number like an odometer (row 1 takes the first option, row 2 the second, …; a second choice moves "
               "when the first wraps), so every row is exactly one task.")
    st.button("Start from the current Compose form", key="batch_from_compose", on_click=_from_compose,
              help="Takes the prompt or shots, mode, sound, ratio, frames and elements from the Compose page.")
    multi = st.toggle("Multi-shot", key="batch_multi")
    form: dict[str, Any] = dict(S["batch_base"] or FORM_DEFAULTS)
    if multi:
        form["compose_shots"] = _shots_editor()
    else:
        form["compose_prompt"] = st.text_area("Prompt template", key="batch_prompt", height=90,
                                              placeholder="A {{animal}} walks through {{place}}, {sunny|rainy} day")
    c_mode, c_sound, c_ratio, c_dur = st.columns(4)
    form["compose_mode"] = c_mode.selectbox("Mode", rules.MODES, key="batch_mode")
    form["compose_sound"] = True if multi else c_sound.toggle("Sound", key="batch_sound")
    form["compose_aspect"] = c_ratio.selectbox("Aspect ratio", rules.ASPECT_RATIOS, key="batch_aspect")
    if not multi:
        form["compose_duration"] = c_dur.number_input("Duration (s)", rules.DURATION_MIN, rules.DURATION_MAX,
                                                      key="batch_duration")
    form["compose_multi"] = multi
    template = make_template(form)
    names = ", ".join(f"{{{{{v}}}}}" for v in template.variables) or "none yet"
    st.caption(f"Variables: {md_line(names)} · choice groups: {len(template.choice_sizes)}")
    return template


# ---------------------------------------------------------------- rows

def _load_csv(ctx: AppContext, template: Template) -> None:
    upload = st.file_uploader("Upload rows (CSV: a header row, a column per variable; optional columns "
                              + ", ".join(OPTION_COLUMNS) + ")", type=["csv"], key=f"batch_csv_{S['batch_table_v']}")
    st.download_button("⬇️ Empty CSV for this template", sample_csv(template.variables),
                       file_name="kling-batch-rows.csv", mime="text/csv", key="batch_sample")
    if upload is None:
        return
    data = upload.getvalue()
    seen = hashlib.sha256(data).hexdigest()[:16] + "|" + "|".join(template.variables)
    if seen == S["batch_csv_seen"]:
        return
    S["batch_csv_seen"] = seen
    names = [e.name for e in ctx.storage.library.list()]
    try:
        found = rows_from_csv(data, template.variables, names, multi=template.multi)
    except RowsRefused as exc:
        S["batch_csv_errors"], S["batch_csv_notes"] = exc.messages, []
        return
    S["batch_csv_errors"], S["batch_csv_notes"] = [], list(found.notes)
    S["batch_table"] = [dict(r.cells) for r in found.rows]
    S["batch_table_v"] += 1
    st.rerun()


def _rows_table(ctx: AppContext, template: Template) -> RowSet:
    st.subheader("2 · Rows")
    _load_csv(ctx, template)
    if S["batch_csv_errors"]:
        st.error("The CSV was not loaded (the rows below are unchanged):  \n"
                 + "  \n".join(f"• {md_line(m)}" for m in S["batch_csv_errors"]))
    for note in S["batch_csv_notes"]:
        st.caption(md_line(note))
    columns = list(dict.fromkeys([*template.variables, *OPTION_COLUMNS]))
    frame = pd.DataFrame(S["batch_table"], columns=columns, dtype="string").fillna("")
    edited = st.data_editor(frame, num_rows="dynamic", key=f"batch_editor_{S['batch_table_v']}",
                            width="stretch", hide_index=False,
                            column_config={c: st.column_config.TextColumn(c) for c in columns})
    records = edited.astype(object).where(edited.notna(), "").to_dict("records")
    names = [e.name for e in ctx.storage.library.list()]
    try:
        return rows_from_records(records, template.variables, names, multi=template.multi)
    except RowsRefused as exc:
        st.error(md(" ".join(exc.messages)))
        return RowSet(())


# ---------------------------------------------------------------- plan

def _plan_view(plan: Plan) -> None:
    st.subheader("3 · Rendered, checked and priced")
    table = [{"row": j.row, "take": j.take, "send": "✅" if j.ok else "⏭️ skipped", "prompt": j.prompt,
              "credits": j.credits if j.ok else None, "problems": " · ".join(p.text() for p in j.problems)}
             for j in plan.jobs]
    st.dataframe(table, hide_index=True, width="stretch", key="batch_plan_table")
    problems = [(j.row, p) for j in plan.jobs if j.take == 1 for p in j.problems]
    for row, problem in problems[:SHOWN_PROBLEMS]:
        (st.error if problem.level == rules.ERROR else st.warning)(md_line(problem.at_row(row)), icon="⚠️")
    if len(problems) > SHOWN_PROBLEMS:
        st.caption(f"… and {len(problems) - SHOWN_PROBLEMS} more (see the problems column).")


def _totals(ctx: AppContext, plan: Plan) -> bool:
    """Total against the balance; True when the batch may be sent."""
    balance: Decimal | None = current_balance(ctx)
    c_tasks, c_cost, c_balance = st.columns(3)
    c_tasks.metric("Tasks to send", f"{len(plan.sendable):,} of {len(plan.jobs):,}")
    c_cost.metric("Total", format_cost(plan.credits))
    c_balance.metric("Balance", f"{balance:,.2f} credits" if balance is not None else "unknown")
    errors = plan.rows_with_errors
    skip = st.checkbox(f"Skip the {len(errors)} row(s) with errors", key="batch_skip_errors",
                       disabled=not errors, help="Or fix them in place in the table above.")
    if errors and not skip:
        st.info("Fix the rows with errors in the table above, or skip them.")
        return False
    if balance is not None and plan.credits > balance:
        st.error(f"The batch costs {plan.credits:,} credits but the balance is {balance:,.2f}: remove rows or top up.")
        return False
    return bool(plan.sendable)


def _confirm(ctx: AppContext, plan: Plan) -> None:
    st.subheader("4 · Confirm and send")
    if not S["batch_confirm_token"]:
        if st.button(f"Review: send {len(plan.sendable)} task(s)…", key="batch_review", type="primary"):
            S["batch_confirm_token"] = secrets.token_hex(8)
            st.rerun()
        return
    st.warning(f"Send {md_line(plan.summary())} Nothing has been sent yet.", icon="🧮")
    c_yes, c_no = st.columns(2)
    if c_no.button("Cancel", key="batch_cancel"):
        S["batch_confirm_token"] = ""
        st.rerun()
    if c_yes.button(f"Confirm: send {len(plan.sendable)} for {format_cost(plan.credits)}", key="batch_confirm",
                    type="primary") and S.pop("batch_confirm_token", ""):
        batch = create_batch(ctx.settings.data_dir, plan, origin=ctx.origin, account=ctx.client.account)
        start_batch(ctx.settings.data_dir, batch.batch_id, _sender(ctx))
        S["batch_current"], S["batch_confirm_token"] = batch.batch_id, ""
        st.toast(f"Batch {batch.batch_id} started: {batch.count('planned')} task(s).", icon="🧮")
        st.rerun()


def _sender(ctx: AppContext) -> Sender:
    return Sender(ctx.client, ctx.storage.ledger, ctx.storage.library, get_rate_limiter(ctx), batch_pace(),
                  callback_base(ctx.settings.key_source))


# ---------------------------------------------------------------- progress

def _progress(ctx: AppContext, batch_id: str) -> None:
    try:
        batch = load_batch(ctx.settings.data_dir, batch_id)
    except (OSError, ValueError) as exc:
        st.warning(f"Batch {md_line(batch_id)} could not be read: {md_line(exc)}")
        return
    todo = len(batch.jobs) - batch.count("skipped")
    done = todo - batch.count("planned")
    running = is_running(batch_id)
    st.progress(done / todo if todo else 1.0, text=f"{done} of {todo} sent · " + " · ".join(
        f"{BATCH_STATE_ICONS[s]} {s} {batch.count(s)}" for s in BATCH_STATE_ICONS if batch.count(s)))
    status = "sending" if running else batch.status
    st.caption(f"Batch `{md_line(batch_id)}` · {md_line(status)}" + (f" · {md_line(batch.note)}" if batch.note else ""))
    _batch_actions(ctx, batch, running)
    rows = [{"row": j.row, "take": j.take, "state": f"{BATCH_STATE_ICONS[j.state]} {j.state}",
             "task": f"{state_icon(r.state)} {r.state}" if (r := ctx.storage.ledger.get(j.task_id)) else "",
             "task id": j.task_id, "credits": j.credits, "prompt": j.prompt, "message": j.message} for j in batch.jobs]
    st.dataframe(rows, hide_index=True, width="stretch", key=f"batch_progress_{batch_id}")
    st.download_button("⬇️ Manifest (CSV)", manifest_csv(batch, ctx.storage.ledger),
                       file_name=f"kling-batch-{batch_id}.csv", mime="text/csv", key=f"batch_manifest_{batch_id}")


def _batch_actions(ctx: AppContext, batch: Batch, running: bool) -> None:
    if running and st.button("⏸️ Pause after the row in flight", key=f"batch_pause_{batch.batch_id}"):
        pause_batch(batch.batch_id)
    elif not running and not batch.finished and st.button(
            f"▶️ Resume: send the {batch.count('planned')} row(s) not yet sent", key=f"batch_resume_{batch.batch_id}"):
        start_batch(ctx.settings.data_dir, batch.batch_id, _sender(ctx))
        st.rerun()
    if batch.status == "done" and S.get("batch_balance_after") != batch.batch_id:
        S["batch_balance_after"] = batch.batch_id  # once per finished batch, not on every rerun
        refresh_balance(ctx)


def _batches(ctx: AppContext) -> None:
    st.subheader("5 · Batches")
    batches = [b for b in list_batches(ctx.settings.data_dir) if b.origin == ctx.origin and
               (b.origin == "sandbox" or b.account == ctx.client.account)]
    if not batches:
        st.caption("No batches yet.")
        return
    ids = [b.batch_id for b in batches]
    if S["batch_current"] not in ids:
        S["batch_current"] = ids[0]
    label = {b.batch_id: f"{b.batch_id} · {b.created_at[:16]} · {len(b.jobs)} task(s) · {b.status}" for b in batches}
    batch_id = st.selectbox("Batch", ids, key="batch_current", format_func=label.get)
    active = is_running(batch_id)
    st.fragment(_progress, run_every=1.0 if active else None)(ctx, batch_id)


def _plan(ctx: AppContext, template: Template, rows: RowSet) -> Plan | None:
    if not rows.rows:
        return None
    try:
        return plan_batch(template, rows, ctx.storage.library.list())
    except RowsRefused as exc:
        st.error(md(" ".join(exc.messages)))
        return None


def main() -> None:
    ctx = setup_page("Batch", "🧮")
    for key, value in PAGE_DEFAULTS.items():
        S.setdefault(key, value)
    st.title("🧮 Batch")
    st.caption("One template × many rows. Every row is rendered, checked and priced before anything is sent; the "
               "batch is paced to KIE's limits, survives restarts and closed tabs, and never sends a row twice.")
    template = _template_editor()
    rows = _rows_table(ctx, template)
    plan = _plan(ctx, template, rows)
    if plan is not None and plan.jobs:
        _plan_view(plan)
        if _totals(ctx, plan):
            _confirm(ctx, plan)
    else:
        st.info("Add rows in the table or upload a CSV to see each row rendered, checked and priced.")
    _batches(ctx)


main()
