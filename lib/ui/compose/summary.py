"""The Compose page's right column: variants, cost, balance, Submit, dry run and the request preview."""

from __future__ import annotations

import secrets
from typing import Any

import streamlit as st

from lib.compose.batches import MAX_BATCH, batch_cost, dry_run, needs_confirmation, submit_label, submit_variants
from lib.compose.evaluate import ComposeView
from lib.compose.sections import ADDRESS, shown_variant
from lib.compose.snippets import curl_command, python_snippet
from lib.kie.uploads import liveness_checker
from lib.kling import rules
from lib.kling.pricing import format_cost
from lib.tasks.service import callback_base
from lib.trust.text import md
from lib.ui.compose.intake import keep_address
from lib.ui.compose.state import S, bound, current_view, part, show
from lib.ui.context import (
    AppContext,
    allow_private_results,
    current_balance,
    get_rate_limiter,
    get_uploader,
    refresh_balance,
    service_now,
)

PREVIEW_PX = 420


def variants(view: ComposeView) -> None:
    """The Variants box: takes, modes, sounds and prompt variants, and what each variant costs."""
    with st.expander(f"Variants — {len(view.variants)} task(s) per submit", expanded=len(view.variants) > 1):
        part("compose_variant_axes", _variant_axes)
        part("compose_variant_single", _variant_single)
        st.caption(f"mode × sound × prompt × takes, at most {MAX_BATCH} tasks; each is its own task, "
                   "grouped by a batch id.")
        part("compose_variant_table", lambda: _variant_table(current_view()))


def _variant_axes() -> None:
    bound(st.number_input, "Takes of each combination", "compose_takes", min_value=1, max_value=MAX_BATCH)
    bound(st.multiselect, "Modes", "compose_grid_modes", options=list(rules.MODES),
          placeholder="just the mode set above")


def _variant_single() -> None:
    """The axes a multi-shot job does not have."""
    if not current_view().form["compose_multi"]:
        bound(st.multiselect, "Sound", "compose_grid_sounds", options=[False, True],
              format_func=lambda s: "sound on" if s else "sound off", placeholder="as set")
        bound(st.text_area, "Prompt variants (one per line)", "compose_prompt_variants", height=80,
              help="Each line is another prompt tried beside the main one.")


def _variant_table(view: ComposeView) -> None:
    if view.variant_error:
        st.error(md(view.variant_error))
    show(view, "variants")
    if len(view.variants) > 1:
            st.dataframe([{"variant": v.label, "cost": format_cost(batch_cost([b]) or 0)}
                          for v, b in zip(view.variants, view.payloads, strict=True)], hide_index=True, height=150)


def _submit(ctx: AppContext, view: ComposeView) -> None:
    """Create every variant once: a double click never creates two tasks; a 429 shows its wait."""
    waiting = st.empty()
    with st.spinner("Uploading elements if needed and creating the task(s)…"):
        result = submit_variants(ctx.client, ctx.storage.ledger, ctx.storage.library, get_uploader(ctx),
                                 list(view.variants), origin=ctx.origin, limiter=get_rate_limiter(ctx),
                                 now=service_now(ctx), callbacks_to=callback_base(ctx.settings.key_source),
                                 is_alive=liveness_checker(allow_private_results(ctx)),
                                 on_wait=lambda s: waiting.info(f"Rate limited by KIE, retrying in {s:.0f} s…",
                                                                icon="⏳"))
    waiting.empty()
    S["compose_followed"] = S["compose_followed"] + result.task_ids
    S["compose_last_result"] = {"batch": result.batch_id, "ids": result.task_ids, "messages": result.messages}
    S["compose_result_form"] = dict(view.form)  # the "Submitted" banner belongs to this form, not to later edits
    if result.task_ids:
        S["compose_toast"] = (f"Submitted {len(result.task_ids)} task(s)", "🚀")
    S["compose_dry_run"] = None
    refresh_balance(ctx)
    S["compose_click_token"] = secrets.token_hex(8)


def _cost(view: ComposeView) -> None:
    # stacked, not side by side (they were cut at 1024–1280 px)
    st.metric("This submit", f"{view.credits:,} credits" if view.credits is not None else "—",
              help="Credits × US$0.005, from lib/kling/pricing for exactly these settings.")


def _budget(ctx: AppContext) -> None:
    balance = current_balance(ctx)
    st.metric("Balance", f"{balance:,.2f}" if balance is not None else "—")
    bound(st.number_input, "Per-submit limit (credits, 0 = none)", "compose_limit", min_value=0, step=50)


def _gate(ctx: AppContext, view: ComposeView) -> None:
    """Submit, and what it waits for: a confirmation when the budget asks for one, the errors fixed."""
    balance = current_balance(ctx)
    token = S["compose_click_token"]
    reasons = needs_confirmation(view.credits, balance, int(view.form["compose_limit"]))
    confirmed = True
    if reasons:
        st.warning(md(" ".join(reasons)), icon="💸")
        confirmed = st.checkbox("Submit anyway", key=f"compose_confirm_{token}")
    if not S.get("compose_touched"):
        st.caption("✍️ Write a prompt (or switch on Multi-shot) to begin: every rule is checked as you type.")
    elif view.errors:
        st.caption(f"⛔ {len(view.errors)} error(s) to fix before submitting (shown next to their fields).")
    clicked = st.button(submit_label(len(view.variants), view.credits), key=f"compose_submit_{token}",
                        type="primary", disabled=bool(view.errors) or not view.variants or not confirmed,
                        use_container_width=True)
    if clicked:
        if S["compose_guard"].claim(token):
            _submit(ctx, view)
            st.rerun()
        st.info("That click was already submitted: nothing new was created.")


def _dry_run(view: ComposeView, balance: Any) -> None:
    if st.button("Dry run (validate only, spends nothing)", key="compose_dry_run_btn", use_container_width=True):
        S["compose_dry_run"] = dry_run(list(view.payloads) or [view.payload], balance=balance,
                                       limit=int(view.form["compose_limit"]), extra=list(view.extra_problems),
                                       pending_uploads=list(view.pending_uploads))
    report = S["compose_dry_run"]
    if report is not None:
        (st.error if report.errors else st.success)(md(report.summary()))
        for problem in report.errors + report.warnings:
            st.caption(f"{'⛔' if problem.level == rules.ERROR else '⚠️'} {md(problem.path or 'request')}: "
                       f"{md(problem.message)}")


def _last_result(view: ComposeView) -> None:
    last = S["compose_last_result"]
    if not last or S["compose_result_form"] != dict(view.form):
        return  # the form changed since that submit: its banner no longer describes what is on screen
    if last["ids"]:
        st.success(f"Submitted {len(last['ids'])} task(s) in batch `{last['batch']}`. Progress is below.")
    for message in last["messages"]:
        st.error(md(message))


def _preview(ctx: AppContext, view: ComposeView) -> None:
    shown = view.payloads[_preview_pick(view)] if len(view.variants) > 1 else view.payload
    # only the open tab is drawn (issue 17): every edit changes the request, and the hidden snippets' highlighting
    # cost the browser as much as the one shown; picking a tab reruns this part alone (its widget sits in it)
    tab_json, tab_curl, tab_py = st.tabs(["JSON", "cURL", "Python"], key="compose_preview_tab", on_change="rerun")
    # a fixed height scrolls a long prompt inside the preview, so Submit's progress below stays in reach
    if tab_json.open:
        tab_json.container(height=PREVIEW_PX, border=False).json(shown)
    readiness = view.snippet(shown)
    for tab, make, language in ((tab_curl, curl_command, "bash"), (tab_py, python_snippet, "python")):
        if not tab.open:
            continue
        box = tab.container(height=PREVIEW_PX, border=False)
        if readiness.ready:
            box.code(make(shown, ctx.settings.api_base), language=language)
        else:  # a placeholder URL would create (and bill) a task that cannot work
            box.warning(md(readiness.message()), icon="⏫")


def _preview_pick(view: ComposeView) -> int:
    """The previewed variant, kept by its label: when the grid changes, a label that no longer exists falls back to
    the first variant, so the picker and the JSON below it always name the same variant."""
    labels = [v.label for v in view.variants]
    S["compose_preview_pick"] = labels[shown_variant(view, S["compose_preview_pick"])]
    bound(st.selectbox, "Variant", "compose_preview_pick", options=labels)
    return labels.index(S["compose_preview_pick"])


def summary(ctx: AppContext) -> None:
    """Cost, balance, Submit, dry run and the request preview: each a part of its own, so an edit redraws the ones
    it changed (a prompt edit leaves the cost and Submit alone; every edit changes the preview's request)."""
    part("compose_cost", lambda: _cost(current_view()))
    part("compose_budget", lambda: _budget(ctx))
    part("compose_gate", lambda: _gate(ctx, current_view()))
    part("compose_dry_run", lambda: _dry_run(current_view(), current_balance(ctx)))
    part("compose_last_result", lambda: _last_result(current_view()))
    st.subheader("Request preview")
    part("compose_preview", lambda: _preview(ctx, current_view()))
    st.caption("The key is never shown: the snippets read it from KIE_API_KEY.")
    part(ADDRESS, lambda: keep_address(ctx, dict(current_view().form)))


