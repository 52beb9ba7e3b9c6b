"""An edit redraws only the parts of Compose it can change (lib.compose.sections)."""

from __future__ import annotations

from lib.compose import form as cp
from lib.compose.evaluate import evaluate
from lib.compose.sections import SIGNATURES, SUMMARY, parts_to_redraw, signatures
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


def test_a_variant_or_limit_edit_redraws_only_the_summary() -> None:
    base = form(compose_prompt="a fox")
    assert redrawn(base, form(compose_prompt="a fox", compose_grid_modes=["pro"])) == [SUMMARY]
    assert redrawn(base, form(compose_prompt="a fox", compose_limit=100)) == [SUMMARY]


def test_referencing_an_element_redraws_the_elements_part_too() -> None:
    fox = _element("fox")
    parts = redrawn(form(compose_prompt="a fox"), form(compose_prompt="a @fox"), [fox])
    assert {"compose_prompt", "compose_elements"} <= set(parts) and parts[-1] == SUMMARY
    assert "compose_frames" in parts  # elements without a first frame: the warning under the frames appears


def test_multi_shot_redraws_settings_and_frames() -> None:
    single = form(compose_prompt="a fox")
    multi = form(compose_prompt="a fox", compose_multi=True, compose_shots=[cp.new_shot("a fox", 5)])
    assert {"compose_prompt", "compose_settings", "compose_frames"} <= set(redrawn(single, multi))


def test_the_first_touch_redraws_every_part_that_shows_problems() -> None:
    view = evaluate(form(), [])
    before, after = signatures(view, False), signatures(view, True)
    assert parts_to_redraw(before, after) == [*SIGNATURES, SUMMARY]


def test_nothing_changed_still_redraws_the_summary() -> None:
    same = signatures(evaluate(form(compose_prompt="x"), []), True)
    assert parts_to_redraw(same, same) == [SUMMARY]
