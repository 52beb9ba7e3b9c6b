"""Which parts of the Compose page an edit can change: one signature per part, computed from the evaluated form.

The page draws each part in its own keyed fragment. After an edit, only the parts whose signature changed (and the
summary, which shows the request, cost and Submit) are drawn again; the others keep what the browser already shows.
Pure Python, so the rule "an unchanged input cannot change this part" is tested without Streamlit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from lib.compose.evaluate import ComposeView
from lib.compose.form import frame_url

SUMMARY = "compose_summary"  # the request preview, cost, variants and Submit: redrawn after every edit
SHOTS_SHOWN = 5


def _problems(view: ComposeView, *fields: str) -> tuple:
    return tuple((f, tuple((p.message, p.level) for p in view.problems_of(f))) for f in fields)


def _top(view: ComposeView) -> tuple:
    return _problems(view, "general")


def _prompt(view: ComposeView) -> tuple:
    form = view.form
    return (form["compose_multi"], form["compose_prompt"], json.dumps(form["compose_shots"]),
            form["compose_active_shot"], tuple(view.element_names),
            _problems(view, "prompt", "shots", *(f"shot{i}" for i in range(SHOTS_SHOWN))))


def _settings(view: ComposeView) -> tuple:
    form = view.form
    return (form["compose_multi"], form["compose_duration"], view.job.total_duration, form["compose_mode"],
            form["compose_sound"], form["compose_aspect"], view.job.aspect_ratio, frame_url(form, "first") is None,
            _problems(view, "duration", "mode", "sound", "aspect"))


def _frames(view: ComposeView) -> tuple:
    form = view.form
    keys = ("source", "url", "upload")
    return (form["compose_multi"], json.dumps([form[f"compose_{w}_{k}"] for w in ("first", "last") for k in keys]),
            _problems(view, "first_frame", "last_frame", "frames"))


def _elements(view: ComposeView) -> tuple:
    return (tuple(view.element_names), tuple(view.form["compose_elements"]), tuple(view.missing_selected),
            tuple(view.unreferenced), view.pending_uploads, _problems(view, "elements"))


def _advanced(view: ComposeView) -> tuple:
    form = view.form
    return (form["compose_cfg_on"], form["compose_cfg_scale"], form["compose_callback"],
            _problems(view, "cfg", "callback"))


SIGNATURES: Mapping[str, Callable[[ComposeView], tuple]] = {
    "compose_top": _top, "compose_prompt": _prompt, "compose_settings": _settings, "compose_frames": _frames,
    "compose_elements": _elements, "compose_advanced": _advanced,
}


def signatures(view: ComposeView, touched: bool) -> dict[str, Any]:
    """Every part's signature for this state of the form (`touched` decides whether problems are shown at all)."""
    return {name: (touched, sign(view)) for name, sign in SIGNATURES.items()}


def parts_to_redraw(before: Mapping[str, Any], after: Mapping[str, Any], own: str | None = None) -> list[str]:
    """The parts an edit changed (in page order), always with the summary and the part the edit came from."""
    changed = [name for name in SIGNATURES if name == own or before.get(name) != after.get(name)]
    return [*changed, SUMMARY]
