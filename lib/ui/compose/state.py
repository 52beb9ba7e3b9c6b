"""The Compose page's session state, widget binding and parts: one evaluated view per state, an edit's
callback redraws only the parts it changed (lib.compose.sections decides which)."""

from __future__ import annotations

import copy
import secrets
from collections.abc import Callable
from typing import Any

import streamlit as st

from lib.compose import form as cp
from lib.compose.evaluate import ComposeView, evaluate
from lib.compose.sections import TYPED_IN, parts_to_redraw, signatures
from lib.kling import rules
from lib.tasks.submit import SubmitGuard
from lib.trust.text import md
from lib.ui.context import AppContext, get_uploader
from lib.ui.page import redraw_only

S = st.session_state
PAGE_DEFAULTS: dict[str, Any] = {
    "compose_followed": [], "compose_fork": None, "compose_pending_insert": [], "compose_fork_missing": [],
    "compose_fork_from": None, "compose_last_result": None, "compose_dry_run": None,
    "compose_preview_pick": None, "compose_form_id": None, "compose_form_saved": None, "compose_form_own": [],
    "compose_result_form": None, "compose_fork_label": "Forked from task", "compose_recipe_nonce": 0,
    "compose_toast": None,
}
FORM_PARAM = "form"  # ?form=<id>: the saved form behind this address (never a key: forms hold none)


# ---------------------------------------------------------------- session state and widget binding

def init_state() -> None:
    """Every key the page keeps, set once per session (the form's defaults and the page's own)."""
    for key, value in {**cp.FORM_DEFAULTS, **PAGE_DEFAULTS}.items():
        S.setdefault(key, copy.deepcopy(value))
    S.setdefault("compose_guard", SubmitGuard())
    S.setdefault("compose_click_token", secrets.token_hex(8))


def edit(action: Callable[..., Any], *args: Any) -> None:
    """Apply a lib.compose.form form edit to the plain session-state keys."""
    form = cp.form_of(S)
    action(form, *args)
    S.update(form)


def _sync(widget_key: str, key: str) -> None:
    S[key] = S[widget_key]
    if key == "compose_multi":
        edit(cp.set_multi, S[key])


def bound(widget: Callable[..., Any], label: str, key: str, **kwargs: Any) -> Any:
    """A widget whose value lives in the plain key `key` (widget keys are dropped when the page is left)."""
    widget_key = "compose_w_" + key.removeprefix("compose_")
    S[widget_key] = S[key]
    return widget(label, key=widget_key, on_change=changed, args=(_sync, widget_key, key),
                  kwargs={"shown": TYPED_IN.get(key)}, **kwargs)


def shot_widget(i: int, field: str) -> str:
    """The widget key of slot i's prompt or seconds: keyed by the slot, not the shot, so a moved shot updates
    the widgets the browser already drew instead of building new ones."""
    return f"compose_w_slot_{i}_{field}"


def sync_shot(shot_id: str, field: str, widget_key: str) -> None:
    for shot in S["compose_shots"]:
        if shot["id"] == shot_id:
            shot[field] = S[widget_key]


def take_frame(ctx: AppContext, which: str) -> None:
    """Check and upload a chosen frame file once (same content is not uploaded again)."""
    file = S.get(f"compose_w_{which}_file")
    if file is None:
        S[f"compose_{which}_upload"] = None
        return
    data = file.getvalue()
    current = S.get(f"compose_{which}_upload") or {}
    if current.get("sha") != cp.content_sha(data):
        S[f"compose_{which}_upload"] = cp.upload_frame(get_uploader(ctx), file.name, data).to_state()


def current_view() -> ComposeView:
    """The form as it stands, evaluated once per state: every part of the page reads this one view."""
    form, library = cp.form_of(S), S["compose_library"]
    cached = S.get("compose_view")
    if cached is not None and cached.form == form and cached.elements == tuple(library):
        return cached
    S["compose_view"] = evaluate(form, library)
    return S["compose_view"]


def _settle() -> ComposeView:
    """Bring the derived keys up to date with the form and evaluate it."""
    form = cp.form_of(S)
    # once something was typed, clearing it again shows what is missing
    S["compose_touched"] = S.get("compose_touched", False) or not cp.is_untouched(form)
    S["compose_elements"] = list(form["compose_elements"])
    return current_view()


def _around() -> dict[str, Any]:
    """The page state the summary's parts show besides the form (lib.compose.sections.AROUND)."""
    last, report = S["compose_last_result"], S["compose_dry_run"]
    return {"balance": S.get("settings_balance"), "token": S["compose_click_token"],
            "dry_run": report.summary() if report is not None else None,
            "last_result": (last["batch"], tuple(last["ids"]), tuple(last["messages"])) if last else None,
            "result_form": S["compose_result_form"], "pick": S["compose_preview_pick"]}


def signatures_now() -> dict[str, Any]:
    """Every part's signature for the form as it stands (lib.compose.sections.signatures)."""
    return signatures(_settle(), S["compose_touched"], _around())


def changed(change: Callable[..., Any], *args: Any, shown: str | None = None) -> None:
    """Every edit's callback: apply it, then redraw only the parts it changed (lib.compose.sections decides), not
    the whole form. `shown`: the part whose widget made the edit and already shows it."""
    change(*args)
    before = S.get("compose_signatures") or {}
    S["compose_signatures"] = signatures_now()
    redraw_only(parts_to_redraw(before, S["compose_signatures"], shown))


def show(view: ComposeView, where: str) -> None:
    """The live problems of one field, right under it (none on a form nobody has touched yet)."""
    if not S.get("compose_touched"):
        return
    for problem in view.problems_of(where):
        error = problem.level == rules.ERROR
        (st.error if error else st.warning)(md(problem.message), icon="⛔" if error else "⚠️")



def part(key: str, draw: Callable[[], None]) -> None:
    """Draw one part of the page as a fragment named `key` (an edit's callback reruns it by name)."""
    st.fragment(draw, key=key)()


