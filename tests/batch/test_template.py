"""Templates: {{variables}}, {a|b|c} choices on the odometer rule, values kept literal."""

from __future__ import annotations

import pytest

from lib.batch.template import choice_digits, compile_text, make_template, template_from_compose


def test_variables_and_choices_are_found_in_order() -> None:
    compiled = compile_text("A {{ animal }} in {{place}}, {sunny|rainy} {a|b|c} {{animal}} {not a choice}")
    assert compiled.variables == ["animal", "place"]
    assert compiled.choice_sizes == [2, 3]


@pytest.mark.parametrize(("row", "digits"), [(0, [0, 0]), (1, [1, 0]), (2, [0, 1]), (3, [1, 1]), (5, [1, 2]),
                                             (6, [0, 0])])
def test_choices_cycle_by_row_like_an_odometer(row: int, digits: list[int]) -> None:
    assert choice_digits(row, [2, 3]) == digits


def test_each_row_renders_one_prompt() -> None:
    template = make_template({"compose_prompt": "A {{animal}}, {sunny|rainy} day"})
    texts = [template.render_texts({"animal": "cat"}, i)[0] for i in range(3)]
    assert texts == ["A cat, sunny day", "A cat, rainy day", "A cat, sunny day"]


def test_values_are_data_never_template_syntax() -> None:
    template = make_template({"compose_prompt": "{{x}} and {a|b}"})
    assert template.render_texts({"x": "{{y}} {p|q}"}, 1) == ["{{y}} {p|q} and b"]


def test_multi_shot_templates_render_every_shot_and_share_one_odometer() -> None:
    shots = [{"id": "a", "prompt": "{{hero}} {runs|walks}", "duration": 3},
             {"id": "b", "prompt": "{{hero}} at {dawn|dusk}", "duration": 4}]
    template = make_template({"compose_multi": True, "compose_shots": shots})
    assert template.multi and template.variables == ["hero"]
    form = template.render_form({"hero": "@fox"}, 3)
    assert [s["prompt"] for s in form["compose_shots"]] == ["@fox walks", "@fox at dusk"]
    assert [s["duration"] for s in form["compose_shots"]] == [3, 4]


def test_starting_from_compose_takes_its_fields_and_turns_the_variant_grid_off() -> None:
    state = {"compose_prompt": "a {{thing}}", "compose_mode": "pro", "compose_takes": 3,
             "compose_grid_modes": ["std", "pro"], "unrelated": 1}
    template = template_from_compose(state)
    assert template.form["compose_mode"] == "pro" and template.variables == ["thing"]
    assert template.form["compose_takes"] == 1 and template.form["compose_grid_modes"] == []
