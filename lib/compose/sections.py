"""Which parts of the Compose page an edit can change: one signature per part, computed from the evaluated form.

The page draws each part in its own keyed fragment. After an edit, only the parts whose signature changed are drawn
again; the others keep what the browser already shows. A widget the user just changed is not drawn again either when
it is all its part draws (TYPED_IN): the user's screen already shows the new value. Pure Python, so the rule "an
unchanged input cannot change this part" is tested without Streamlit.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from lib.compose.batches import batch_cost
from lib.compose.evaluate import ComposeView
from lib.compose.form import frame_url
from lib.kling.job import prompt_budget_length

ADDRESS = "compose_address"  # keeps the form's address (?form=<id>) and its saved copy: run after every edit
SHOTS_SHOWN = 5  # rules.SHOTS_MAX: one slot part per possible shot


def slot_key(i: int) -> str:
    """The part that draws shot i (empty while there are fewer shots)."""
    return f"compose_shot_slot_{i}"


def slot_notes_key(i: int) -> str:
    """The problems under shot i (a part inside its slot, so typing in the shot redraws only these)."""
    return f"compose_shot_notes_{i}"


def _problems(view: ComposeView, *fields: str) -> tuple:
    return tuple((f, tuple((p.message, p.level) for p in view.problems_of(f))) for f in fields)


def _top(view: ComposeView) -> tuple:
    return _problems(view, "general")


def _multi_switch(view: ComposeView) -> tuple:
    return (view.form["compose_multi"],)


def _chips_caption(view: ComposeView) -> tuple:
    """"Insert an element into the prompt / the shot chosen below" (or: no elements yet)."""
    return view.form["compose_multi"], bool(view.elements)


def _chips(view: ComposeView) -> tuple:
    """One button per element, its description as the tooltip."""
    return tuple((e.name, e.description) for e in view.elements)


def _prompt_body(view: ComposeView) -> tuple:
    """The single prompt or the shots (each a part of its own inside it)."""
    return (view.form["compose_multi"],)


def _single(view: ComposeView) -> tuple:
    """The single-shot prompt's text area, nothing else (typing in it redraws its notes, not the field)."""
    return ("" if view.form["compose_multi"] else view.form["compose_prompt"],)


def _single_notes(view: ComposeView) -> tuple:
    """Under the single prompt: its length against the limit and its problems."""
    if view.form["compose_multi"]:
        return ()
    return prompt_budget_length(view.form["compose_prompt"]), _problems(view, "prompt")


def _shots_of(view: ComposeView) -> list:
    return view.form["compose_shots"] if view.form["compose_multi"] else []


def _chip_target(view: ComposeView) -> tuple:
    """"Element chips insert into": shown in multi-shot with elements, one option per shot."""
    return bool(view.element_names), len(_shots_of(view)), view.form["compose_active_shot"]


def _slot(i: int) -> Callable[[ComposeView], tuple]:
    """Shot slot i: its shot (or nothing) and whether it is first or last (the Up/Down buttons)."""
    def sign(view: ComposeView) -> tuple:
        shots = _shots_of(view)
        if i >= len(shots):
            return ()
        return json.dumps(shots[i]), i == len(shots) - 1
    return sign


def _slot_notes(i: int) -> Callable[[ComposeView], tuple]:
    def sign(view: ComposeView) -> tuple:
        return _problems(view, f"shot{i}") if i < len(_shots_of(view)) else ()
    return sign


def _add_shot(view: ComposeView) -> tuple:
    """Add shot: disabled at five."""
    return (len(_shots_of(view)) >= SHOTS_SHOWN,)


def _timeline(view: ComposeView) -> tuple:
    """The timeline of lengths and the shots' own problems."""
    return json.dumps([s.get("duration") for s in _shots_of(view)]), _problems(view, "shots")


def _mention(view: ComposeView) -> tuple:
    """The @ autocomplete: the names it offers (it serves every prompt field there may be)."""
    return tuple(view.element_names)


def _duration(view: ComposeView) -> tuple:
    """The slider in single-shot; in multi-shot the sum of the shots, which every shot's seconds change."""
    form = view.form
    return form["compose_multi"], form["compose_duration"], view.job.total_duration, _problems(view, "duration")


def _mode(view: ComposeView) -> tuple:
    """The Mode radio (its options name the resolution of the aspect ratio in use)."""
    return view.form["compose_mode"], view.job.aspect_ratio or view.form["compose_aspect"]


def _sound(view: ComposeView) -> tuple:
    """Sound: a checkbox, or locked on in multi-shot."""
    return view.form["compose_multi"], view.form["compose_sound"]


def _aspect(view: ComposeView) -> tuple:
    """Aspect ratio: a selectbox, disabled when a first frame decides it."""
    return view.form["compose_aspect"], frame_url(view.form, "first") is None


def _notes(*fields: str) -> Callable[[ComposeView], tuple]:
    """The problems shown under a field whose widget is a part of its own."""
    return lambda view: _problems(view, *fields)


def _frame(which: str) -> Callable[[ComposeView], tuple]:
    """One frame's source, URL or upload (the last frame is a note in multi-shot)."""
    def sign(view: ComposeView) -> tuple:
        form = view.form
        return ((which == "last" and form["compose_multi"]),
                json.dumps([form[f"compose_{which}_{k}"] for k in ("source", "url", "upload")]),
                _problems(view, f"{which}_frame"))
    return sign


def _elements(view: ComposeView) -> tuple:
    return (tuple(view.element_names), tuple(view.form["compose_elements"]), tuple(view.missing_selected),
            tuple(view.unreferenced), view.pending_uploads, _problems(view, "elements"))


def _advanced(view: ComposeView) -> tuple:
    form = view.form
    return (form["compose_cfg_on"], form["compose_cfg_scale"], form["compose_callback"],
            _problems(view, "cfg", "callback"))


def _variants(view: ComposeView) -> tuple:
    """The Variants box: how many tasks a submit makes (its title) and whether it is open."""
    return (len(view.variants),)


def _variant_axes(view: ComposeView) -> tuple:
    form = view.form
    return form["compose_takes"], tuple(form["compose_grid_modes"])


def _variant_single(view: ComposeView) -> tuple:
    """The axes a multi-shot job does not have: sound and prompt variants."""
    form = view.form
    if form["compose_multi"]:
        return ()
    return tuple(form["compose_grid_sounds"]), form["compose_prompt_variants"]


def _variant_table(view: ComposeView) -> tuple:
    """What the box says about the variants: their error, problems and (when several) each one's label and cost."""
    table = tuple((v.label, batch_cost([p])) for v, p in zip(view.variants, view.payloads, strict=True)) \
        if len(view.variants) > 1 else ()
    return view.variant_error, _problems(view, "variants"), table


def _cost(view: ComposeView) -> tuple:
    return (view.credits,)


def _budget(view: ComposeView, around: Mapping[str, Any]) -> tuple:
    """The balance and the per-submit limit."""
    return around.get("balance"), view.form["compose_limit"]


def _gate(view: ComposeView, around: Mapping[str, Any]) -> tuple:
    """Whether Submit may be pressed, and what it says: the cost, the confirmation a budget asks for, the errors."""
    return (view.credits, len(view.variants), len(view.errors), around.get("balance"), view.form["compose_limit"],
            around.get("token"))


def _dry_run(view: ComposeView, around: Mapping[str, Any]) -> tuple:
    return (around.get("dry_run"),)


def _last_result(view: ComposeView, around: Mapping[str, Any]) -> tuple:
    """The "Submitted" banner, shown while the form is the one that was submitted."""
    return around.get("last_result"), around.get("result_form") == dict(view.form)


def shown_variant(view: ComposeView, pick: Any) -> int:
    """The variant the preview shows: the one picked by label, else the first."""
    labels = [v.label for v in view.variants]
    return labels.index(pick) if pick in labels else 0


def _preview(view: ComposeView, around: Mapping[str, Any]) -> tuple:
    """The request preview: the request shown (the picked variant's when there are several) and its snippets."""
    labels = tuple(v.label for v in view.variants)
    shown = view.payloads[shown_variant(view, around.get("pick"))] if len(labels) > 1 else view.payload
    return labels, json.dumps(shown, sort_keys=True, default=str), view.snippet(shown).ready


SIGNATURES: Mapping[str, Callable[[ComposeView], tuple]] = {
    "compose_top": _top, "compose_multi_switch": _multi_switch, "compose_chips_caption": _chips_caption,
    "compose_chips": _chips, "compose_prompt_body": _prompt_body, "compose_single": _single,
    "compose_single_notes": _single_notes,
    "compose_chip_target": _chip_target,
    **{key: sign for i in range(SHOTS_SHOWN) for key, sign in ((slot_key(i), _slot(i)),
                                                               (slot_notes_key(i), _slot_notes(i)))},
    "compose_add_shot": _add_shot, "compose_timeline": _timeline, "compose_mention": _mention,
    "compose_duration": _duration, "compose_mode": _mode, "compose_mode_notes": _notes("mode"),
    "compose_sound": _sound, "compose_sound_notes": _notes("sound"),
    "compose_aspect": _aspect, "compose_aspect_notes": _notes("aspect"),
    "compose_first_frame": _frame("first"), "compose_last_frame": _frame("last"),
    "compose_frames_notes": _notes("frames"),
    "compose_elements": _elements, "compose_advanced": _advanced,
    "compose_variants": _variants, "compose_variant_axes": _variant_axes, "compose_variant_single": _variant_single,
    "compose_variant_table": _variant_table, "compose_cost": _cost,
}
# the summary's parts also read the page's own state: the balance, Submit's click token, the dry run, the last result
AROUND: Mapping[str, Callable[[ComposeView, Mapping[str, Any]], tuple]] = {
    "compose_budget": _budget, "compose_gate": _gate, "compose_dry_run": _dry_run,
    "compose_last_result": _last_result, "compose_preview": _preview,
}
# parts drawn inside another part: redrawing the outer one redraws them, so they are not named again
INSIDE: Mapping[str, str] = {
    **{name: "compose_prompt_body" for name in ("compose_single", "compose_single_notes", "compose_chip_target",
                                                *map(slot_key, range(SHOTS_SHOWN)), "compose_add_shot",
                                                "compose_timeline")},
    **{slot_notes_key(i): slot_key(i) for i in range(SHOTS_SHOWN)},
    **{name: "compose_variants" for name in ("compose_variant_axes", "compose_variant_single",
                                             "compose_variant_table")},
}
# form keys whose widget is all its part draws (with nothing that changes with it): an edit made in that widget is
# already on the user's screen, so that part is not drawn again (its problems are a part of their own)
TYPED_IN: Mapping[str, str] = {
    "compose_multi": "compose_multi_switch", "compose_prompt": "compose_single",
    "compose_active_shot": "compose_chip_target", "compose_mode": "compose_mode",
    "compose_sound": "compose_sound", "compose_aspect": "compose_aspect", "compose_limit": "compose_budget",
}


def _outer(name: str) -> list[str]:
    out = []
    while name in INSIDE:
        name = INSIDE[name]
        out.append(name)
    return out


def signatures(view: ComposeView, touched: bool, around: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Every part's signature for this state of the form (`touched` decides whether problems are shown at all;
    `around` is the page state the summary shows: balance, token, dry_run, last_result, result_form, pick)."""
    around = around or {}
    return {**{name: (touched, sign(view)) for name, sign in SIGNATURES.items()},
            **{name: (touched, sign(view, around)) for name, sign in AROUND.items()}}


def parts_to_redraw(before: Mapping[str, Any], after: Mapping[str, Any], shown: str | None = None) -> list[str]:
    """The parts an edit changed (in page order), always with the address keeper. `shown` is the part whose own
    widget made the edit: the browser already shows it. A part inside a redrawn part is not named again (the outer
    part draws it)."""
    changed = {name for name in after if name != shown and before.get(name) != after.get(name)}
    return [*(name for name in after if name in changed and not set(_outer(name)) & changed), ADDRESS]
