"""An edit redraws only the parts of Compose it can change (lib.compose.sections)."""

from __future__ import annotations

from lib.compose import form as cp
from lib.compose.evaluate import evaluate
from lib.compose.sections import (
    ADDRESS,
    AROUND,
    INSIDE,
    SIGNATURES,
    TYPED_IN,
    parts_to_redraw,
    signatures,
    slot_key,
    slot_notes_key,
)
from lib.elements.model import Element, ElementMedia


def _element(name: str) -> Element:
    media = tuple(ElementMedia(file_name=f"{i}.png", local_path=None, source_url=None, kind="image") for i in range(2))
    return Element(id=f"id-{name}", name=name, description="a fox", kind="images", media=media,
                   created_at="2026-12-01T00:00:00+00:00", updated_at="2026-12-01T00:00:00+00:00")


def redrawn(before: dict, after: dict, elements=(), touched: bool = True, shown: str | None = None,
            around: dict | None = None) -> list[str]:
    return parts_to_redraw(signatures(evaluate(before, list(elements)), touched, around),
                           signatures(evaluate(after, list(elements)), touched, around), shown)


SUMMARY_EDITED = ["compose_cost", "compose_gate", "compose_preview", ADDRESS]  # what a change of price redraws


def form(**fields) -> dict:
    out = cp.default_form()
    out.update(fields)
    return out


def test_picking_a_mode_in_its_radio_redraws_the_price_and_the_preview_not_the_radio() -> None:
    before, after = form(compose_prompt="a fox"), form(compose_prompt="a fox", compose_mode="pro")
    assert redrawn(before, after) == ["compose_mode", *SUMMARY_EDITED]
    assert redrawn(before, after, shown=TYPED_IN["compose_mode"]) == SUMMARY_EDITED  # the radio shows it already


def test_typing_the_prompt_redraws_its_notes_and_the_preview_not_the_field_nor_the_price() -> None:
    before, after = form(compose_prompt="a fox"), form(compose_prompt="a fox runs")
    assert redrawn(before, after, shown=TYPED_IN["compose_prompt"]) == \
        ["compose_single_notes", "compose_preview", ADDRESS]
    assert "compose_single" in redrawn(before, after)  # written by something else (a chip): the field shows it


def test_a_variant_edit_redraws_the_variants_box_and_a_limit_edit_only_the_budget_and_submit() -> None:
    base = form(compose_prompt="a fox")
    assert redrawn(base, form(compose_prompt="a fox", compose_grid_modes=["std", "pro"])) == \
        ["compose_variants", "compose_cost", "compose_gate", "compose_preview", ADDRESS]
    assert redrawn(base, form(compose_prompt="a fox", compose_limit=100), shown=TYPED_IN["compose_limit"]) == \
        ["compose_gate", ADDRESS]


def test_the_balance_the_dry_run_and_the_last_submit_redraw_their_own_parts() -> None:
    base = form(compose_prompt="a fox")
    assert redrawn(base, base, around={"balance": 5}) == [ADDRESS]  # the same on both sides: nothing changed
    before = signatures(evaluate(base, []), True, {"balance": 5, "token": "a"})
    after = signatures(evaluate(base, []), True, {"balance": 7, "token": "a", "dry_run": "ok"})
    assert parts_to_redraw(before, after) == ["compose_budget", "compose_gate", "compose_dry_run", ADDRESS]
    shown = signatures(evaluate(base, []), True, {"last_result": ("b1", ("t1",), ()), "result_form": base})
    edited = signatures(evaluate(form(compose_prompt="a fox!"), []), True,
                        {"last_result": ("b1", ("t1",), ()), "result_form": base})
    assert "compose_last_result" in parts_to_redraw(shown, edited)  # the banner leaves once the form changes


def _shots(*seconds: int) -> list[dict]:
    return [{"id": f"s{i}", "prompt": f"shot {i}", "duration": d} for i, d in enumerate(seconds)]


def multi(*seconds: int, shots: list[dict] | None = None) -> dict:
    return form(compose_multi=True, compose_shots=shots if shots is not None else _shots(*seconds))


def test_adding_a_shot_redraws_its_slot_the_one_before_and_the_tail_not_the_other_shots() -> None:
    parts = redrawn(multi(3, 3, 3), multi(3, 3, 3, 3))
    assert slot_key(3) in parts and slot_key(2) in parts  # the old last shot's Down button comes alive
    assert slot_key(0) not in parts and slot_key(1) not in parts and "compose_prompt_body" not in parts
    assert {"compose_timeline", "compose_duration"} <= set(parts) and parts[-1] == ADDRESS
    assert "compose_mention" not in parts  # it serves every shot field there may be
    assert not {"compose_add_shot", "compose_mode", "compose_budget"} & set(parts)  # Add shot still enabled


def test_the_fifth_shot_disables_add_shot() -> None:
    assert "compose_add_shot" in redrawn(multi(3, 3, 3, 3), multi(3, 3, 3, 3, 3))


def test_typing_a_shots_seconds_redraws_the_sum_and_its_notes_not_the_shot() -> None:
    before, after = multi(3, 3, 3), multi(3, 3, 3)
    after["compose_shots"][1]["duration"] = 4
    parts = redrawn(before, after)
    assert [p for p in parts if p.startswith("compose_shot_slot_")] == [slot_key(1)]
    assert "compose_mention" not in parts and "compose_chip_target" not in parts
    typed = redrawn(before, after, shown=slot_key(1))
    assert not [p for p in typed if p.startswith("compose_shot_slot_")]
    assert {"compose_timeline", "compose_duration", "compose_cost", "compose_preview"} <= set(typed)
    after["compose_shots"][1]["duration"] = 40  # out of range: the problem under the shot appears
    assert slot_notes_key(1) in redrawn(before, after, shown=slot_key(1))


def test_moving_a_shot_redraws_the_two_slots_it_swapped() -> None:
    shots = _shots(3, 4, 5)
    moved = [shots[0], shots[2], shots[1]]
    parts = redrawn(multi(shots=shots), multi(shots=[dict(s) for s in moved]))
    assert [p for p in parts if p.startswith("compose_shot_slot_")] == [slot_key(1), slot_key(2)]


def test_a_part_inside_a_redrawn_part_is_not_named_again_at_any_depth() -> None:
    parts = redrawn(form(compose_prompt="a fox"), multi(3, 3))
    assert "compose_prompt_body" in parts and "compose_variant_single" in parts  # its box's title is unchanged
    assert not [p for p in parts if INSIDE.get(p) in parts or INSIDE.get(INSIDE.get(p, "")) in parts]
    shot_notes = redrawn(multi(3, 3), multi(3))  # shot 2 leaves: its slot and the notes inside it
    assert slot_key(1) in shot_notes and slot_notes_key(1) not in shot_notes


def test_referencing_an_element_redraws_the_elements_part_too() -> None:
    fox = _element("fox")
    parts = redrawn(form(compose_prompt="a fox"), form(compose_prompt="a @fox"), [fox])
    assert {"compose_single", "compose_elements"} <= set(parts) and parts[-1] == ADDRESS
    assert "compose_frames_notes" in parts  # elements without a first frame: the warning under the frames appears


def test_multi_shot_redraws_the_sound_and_the_last_frame_not_the_mode_ratio_or_first_frame() -> None:
    single = form(compose_prompt="a fox")
    multi = form(compose_prompt="a fox", compose_multi=True, compose_shots=[cp.new_shot("a fox", 5)])
    parts = redrawn(single, multi)
    assert {"compose_prompt_body", "compose_chips_caption", "compose_multi_switch", "compose_sound",
            "compose_last_frame", "compose_variant_single"} <= set(parts)
    assert not {"compose_mode", "compose_aspect", "compose_first_frame", "compose_variant_axes",
                "compose_budget", "compose_chips", "compose_mention"} & set(parts)
    typed = parts_to_redraw(signatures(evaluate(single, []), True), signatures(evaluate(multi, []), True),
                            TYPED_IN["compose_multi"])
    assert "compose_multi_switch" not in typed and "compose_prompt_body" in typed  # the switch shows it already


def test_the_first_touch_redraws_every_part_that_shows_problems() -> None:
    view = evaluate(form(), [])
    before, after = signatures(view, False), signatures(view, True)
    assert parts_to_redraw(before, after) == [*(name for name in [*SIGNATURES, *AROUND] if name not in INSIDE),
                                              ADDRESS]


def test_nothing_changed_still_keeps_the_address() -> None:
    same = signatures(evaluate(form(compose_prompt="x"), []), True)
    assert parts_to_redraw(same, same) == [ADDRESS]


def test_each_typed_part_is_the_part_of_its_own_key() -> None:
    """TYPED_IN names, for a form key, the part its widget sits in: an edit of that key changes that part."""
    base = form(compose_prompt="a fox", compose_multi=False)
    edits = {"compose_multi": True, "compose_prompt": "a fox runs", "compose_active_shot": 1, "compose_mode": "pro", "compose_sound": True,
             "compose_aspect": "9:16", "compose_limit": 50}
    assert set(edits) == set(TYPED_IN)
    for key, part in TYPED_IN.items():
        before = form(**{**base, "compose_multi": key == "compose_active_shot", "compose_shots": _shots(3, 3)})
        a = signatures(evaluate(before, [_element("fox")]), True)[part]
        b = signatures(evaluate({**before, key: edits[key]}, [_element("fox")]), True)[part]
        assert a != b, key
