"""Which parts of the Compose page an edit can change: one signature per part, computed from the evaluated form.

The page draws each part in its own keyed fragment. After an edit, only the parts whose signature changed (and the
summary, which shows the request, cost and Submit) are drawn again; the others keep what the browser already shows.
Pure Python, so the rule "an unchanged input cannot change this part" is tested without Streamlit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from lib.compose.batches import batch_cost
from lib.compose.evaluate import ComposeView
from lib.compose.form import frame_url

SUMMARY = "compose_summary"  # the request preview, cost and Submit: redrawn after every edit
SHOTS_SHOWN = 5  # rules.SHOTS_MAX: one slot part per possible shot


def slot_key(i: int) -> str:
    """The part that draws shot i (empty while there are fewer shots)."""
    return f"compose_shot_slot_{i}"


def _problems(view: ComposeView, *fields: str) -> tuple:
    return tuple((f, tuple((p.message, p.level) for p in view.problems_of(f))) for f in fields)


def _top(view: ComposeView) -> tuple:
    return _problems(view, "general")


def _prompt(view: ComposeView) -> tuple:
    """The Multi-shot switch, the element chips and the single prompt (the shots are parts of their own)."""
    form = view.form
    single = "" if form["compose_multi"] else form["compose_prompt"]
    return form["compose_multi"], single, tuple(view.element_names), _problems(view, "prompt")


def _shots_of(view: ComposeView) -> list:
    return view.form["compose_shots"] if view.form["compose_multi"] else []


def _chip_target(view: ComposeView) -> tuple:
    """"Element chips insert into": shown in multi-shot with elements, one option per shot."""
    return bool(view.element_names), len(_shots_of(view)), view.form["compose_active_shot"]


def _slot(i: int) -> Callable[[ComposeView], tuple]:
    """Shot slot i: its shot (or nothing), whether it is first or last (the Up/Down buttons) and its problems."""
    def sign(view: ComposeView) -> tuple:
        shots = _shots_of(view)
        if i >= len(shots):
            return ()
        return json.dumps(shots[i]), i == len(shots) - 1, _problems(view, f"shot{i}")
    return sign


def _shots_tail(view: ComposeView) -> tuple:
    """Add shot (disabled at five), the timeline of lengths and the shots' own problems."""
    return json.dumps([s.get("duration") for s in _shots_of(view)]), _problems(view, "shots")


def _mention(view: ComposeView) -> tuple:
    """The @ autocomplete: which text areas it attaches to and the names it offers."""
    return tuple(s["id"] for s in _shots_of(view)), tuple(view.element_names)


def _settings(view: ComposeView) -> tuple:
    """Mode, sound and aspect ratio (the duration inside it is a part of its own)."""
    form = view.form
    return (form["compose_multi"], form["compose_mode"], form["compose_sound"], form["compose_aspect"],
            view.job.aspect_ratio, frame_url(form, "first") is None, _problems(view, "mode", "sound", "aspect"))


def _duration(view: ComposeView) -> tuple:
    """The slider in single-shot; in multi-shot the sum of the shots, which every shot's seconds change."""
    form = view.form
    return form["compose_multi"], form["compose_duration"], view.job.total_duration, _problems(view, "duration")


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


def _variants(view: ComposeView) -> tuple:
    """The Variants box: its own fields, how many tasks a submit makes and (when several) their table."""
    form = view.form
    table = tuple((v.label, batch_cost([p])) for v, p in zip(view.variants, view.payloads, strict=True)) \
        if len(view.variants) > 1 else ()  # what its table shows: each variant's label and cost
    return (form["compose_multi"], form["compose_takes"], tuple(form["compose_grid_modes"]),
            tuple(form["compose_grid_sounds"]), form["compose_prompt_variants"], len(view.variants), table,
            view.variant_error, _problems(view, "variants"))


SIGNATURES: Mapping[str, Callable[[ComposeView], tuple]] = {
    "compose_top": _top, "compose_prompt": _prompt, "compose_chip_target": _chip_target,
    **{slot_key(i): _slot(i) for i in range(SHOTS_SHOWN)}, "compose_shots_tail": _shots_tail,
    "compose_mention": _mention, "compose_settings": _settings, "compose_duration": _duration,
    "compose_frames": _frames,
    "compose_elements": _elements, "compose_advanced": _advanced, "compose_variants": _variants,
}
# parts drawn inside another part: redrawing the outer one redraws them, so they are not named again
INSIDE: Mapping[str, str] = {**{name: "compose_prompt" for name in
                                ("compose_chip_target", *map(slot_key, range(SHOTS_SHOWN)), "compose_shots_tail",
                                 "compose_mention")},
                             "compose_duration": "compose_settings"}


def signatures(view: ComposeView, touched: bool) -> dict[str, Any]:
    """Every part's signature for this state of the form (`touched` decides whether problems are shown at all)."""
    return {name: (touched, sign(view)) for name, sign in SIGNATURES.items()}


def parts_to_redraw(before: Mapping[str, Any], after: Mapping[str, Any], own: str | None = None) -> list[str]:
    """The parts an edit changed (in page order), always with the summary and the part the edit came from; a part
    inside a redrawn part is not named again (the outer part draws it)."""
    changed = [name for name in SIGNATURES if name == own or before.get(name) != after.get(name)]
    return [*(name for name in changed if INSIDE.get(name) not in changed), SUMMARY]
