"""An edit redraws only the parts of Compose it can change (lib.compose.sections)."""

from __future__ import annotations

from lib.compose import form as cp
from lib.compose.evaluate import evaluate
from lib.compose.sections import INSIDE, SIGNATURES, SUMMARY, parts_to_redraw, signatures, slot_key
from lib.elements.model import Element, ElementMedia


def _element(name: str) -> Element:
    media = tuple(ElementMedia(file_name=f"{i}.png", local_path=None, source_url=None, kind="image") for i in range(2))
    return Element(id=f"id-{name}", name=name, description="a fox", kind="images", media=media,
                   created_at="2026-12-01T00:00:00+00:00", updated_at="2026-12-01T00:00:00+00:00")


def redrawn(before: dict, after: dict, elements=(), touched: bool = True) -> list[str]:
    return parts_to_redraw(signatures(evaluate(before, list(elements)), touched),
                           signatures(evaluate(after, list(elements)), touched))


def form(**fields) -> dict:
    out = cp.default_form()
    out.update(fields)
    return out


def test_picking_a_mode_redraws_settings_and_the_summary_only() -> None:
    assert redrawn(form(compose_prompt="a fox"), form(compose_prompt="a fox", compose_mode="pro")) == \
        ["compose_settings", SUMMARY]


def test_a_variant_edit_redraws_the_variants_box_and_a_limit_edit_only_the_summary() -> None:
    base = form(compose_prompt="a fox")
    assert redrawn(base, form(compose_prompt="a fox", compose_grid_modes=["pro"])) == ["compose_variants", SUMMARY]
    assert redrawn(base, form(compose_prompt="a fox", compose_limit=100)) == [SUMMARY]


def _shots(*seconds: int) -> list[dict]:
    return [{"id": f"s{i}", "prompt": f"shot {i}", "duration": d} for i, d in enumerate(seconds)]


def multi(*seconds: int, shots: list[dict] | None = None) -> dict:
    return form(compose_multi=True, compose_shots=shots if shots is not None else _shots(*seconds))


def test_adding_a_shot_redraws_its_slot_the_one_before_and_the_tail_not_the_other_shots() -> None:
    parts = redrawn(multi(3, 3, 3), multi(3, 3, 3, 3))
    assert slot_key(3) in parts and slot_key(2) in parts  # the old last shot's Down button comes alive
    assert slot_key(0) not in parts and slot_key(1) not in parts and "compose_prompt" not in parts
    assert {"compose_shots_tail", "compose_mention", "compose_duration"} <= set(parts) and parts[-1] == SUMMARY
    assert "compose_settings" not in parts  # only the duration inside it (the sum of the shots) changed


def test_editing_a_shot_redraws_that_slot_only_of_the_shots() -> None:
    before, after = multi(3, 3, 3), multi(3, 3, 3)
    after["compose_shots"][1]["duration"] = 4
    parts = redrawn(before, after)
    assert [p for p in parts if p.startswith("compose_shot_slot_")] == [slot_key(1)]
    assert "compose_mention" not in parts and "compose_chip_target" not in parts
    assert "compose_duration" in parts and "compose_settings" not in parts


def test_moving_a_shot_redraws_the_two_slots_it_swapped() -> None:
    shots = _shots(3, 4, 5)
    moved = [shots[0], shots[2], shots[1]]
    parts = redrawn(multi(shots=shots), multi(shots=[dict(s) for s in moved]))
    assert [p for p in parts if p.startswith("compose_shot_slot_")] == [slot_key(1), slot_key(2)]


def test_a_redrawn_prompt_part_draws_its_shot_slots_so_they_are_not_named_again() -> None:
    parts = redrawn(form(compose_prompt="a fox"), multi(3, 3))
    assert "compose_prompt" in parts
    assert not [p for p in parts if p in INSIDE]


def test_referencing_an_element_redraws_the_elements_part_too() -> None:
    fox = _element("fox")
    parts = redrawn(form(compose_prompt="a fox"), form(compose_prompt="a @fox"), [fox])
    assert {"compose_prompt", "compose_elements"} <= set(parts) and parts[-1] == SUMMARY
    assert "compose_frames" in parts  # elements without a first frame: the warning under the frames appears


def test_multi_shot_redraws_settings_and_frames() -> None:
    single = form(compose_prompt="a fox")
    multi = form(compose_prompt="a fox", compose_multi=True, compose_shots=[cp.new_shot("a fox", 5)])
    parts = redrawn(single, multi)
    assert {"compose_prompt", "compose_settings", "compose_frames"} <= set(parts)
    assert "compose_duration" not in parts  # drawn by the settings around it


def test_the_first_touch_redraws_every_part_that_shows_problems() -> None:
    view = evaluate(form(), [])
    before, after = signatures(view, False), signatures(view, True)
    assert parts_to_redraw(before, after) == [*(name for name in SIGNATURES if name not in INSIDE), SUMMARY]


def test_nothing_changed_still_redraws_the_summary() -> None:
    same = signatures(evaluate(form(compose_prompt="x"), []), True)
    assert parts_to_redraw(same, same) == [SUMMARY]
