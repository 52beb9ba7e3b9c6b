"""Every Kling 3.0 rule, both sides of each limit, KIE's doc examples, and malformed bodies."""

from __future__ import annotations

import copy
import re

import pytest

from lib.kling import rules
from lib.kling.problems import Problem, errors_only, url_problem
from lib.kling.validation import validate_payload

DELETE = object()
IMG = "https://tempfile.redpandaai.co/kieai/1/elements/{}.png"
VIDEO = "https://tempfile.redpandaai.co/kieai/1/elements/clip.mp4"



def problems_at(problems, prefix):
    """The problems at a field or inside it (`input.kling_elements[0]` covers its `.name`)."""
    return [p for p in problems if p.path == prefix or p.path.startswith((prefix + ".", prefix + "["))]

def single(**input_changes):
    body = {
        "model": "kling-3.0/video",
        "input": {
            "prompt": "A dog runs on the beach @dog",
            "image_urls": ["https://example.com/first.png"],
            "sound": False,
            "duration": "5",
            "aspect_ratio": "16:9",
            "mode": "std",
            "multi_shots": False,
            "kling_elements": [{"name": "dog", "description": "a brown terrier", "element_input_urls": [IMG.format(1), IMG.format(2)]}],
        },
    }
    body["input"].update(input_changes)
    return body


def multi(*durations, **input_changes):
    durations = durations or (2, 3)
    body = single(**input_changes)
    data = body["input"]
    del data["prompt"]
    data.update(multi_shots=True, sound=True, duration=str(sum(durations)))
    data["multi_prompt"] = [{"prompt": f"shot {i} @dog", "duration": d} for i, d in enumerate(durations)]
    data.update(input_changes)
    return body


def mutate(body, path, value):
    """Copy of body with the value at a dotted/indexed path replaced (or deleted)."""
    body = copy.deepcopy(body)
    keys = [int(k) if k.isdigit() else k for k in re.findall(r"[^.\[\]]+", path)]
    target = body
    for key in keys[:-1]:
        target = target[key]
    if value is DELETE:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value
    return body


def errors(body, **kw):
    return {(p.path, p.rule) for p in validate_payload(body, **kw) if p.level == "error"}


def warnings(body, **kw):
    return {(p.path, p.rule) for p in validate_payload(body, **kw) if p.level == "warning"}


def test_baselines_are_clean():
    assert validate_payload(single()) == []
    assert validate_payload(multi()) == []


# --- KIE's two doc examples (K2 page, "Usage Examples"), copied verbatim ----------------------------

KIE_SINGLE = {
    "model": "kling-3.0",
    "input": {
        "prompt": "In a bright rehearsal room, sunlight streams through the window@element_dog",
        "image_urls": ["https://static.aiquickdraw.com/tools/example/1764851002741_i0lEiI8I.png"],
        "sound": True, "duration": "5", "aspect_ratio": "16:9", "mode": "pro", "multi_shots": False,
        "kling_elements": [{
            "name": "element_dog", "description": "dog",
            "element_input_urls": [
                "https://tempfileb.aiquickdraw.com/kieai/market/1770361808044_4RfUUJrI.jpeg",
                "https://tempfileb.aiquickdraw.com/kieai/market/1770361848336_ABQqRHBi.png",
            ],
        }],
    },
}
_URLS = KIE_SINGLE["input"]["kling_elements"][0]["element_input_urls"]
KIE_MULTI = {
    "model": "kling-3.0",
    "input": {
        "multi_shots": True,
        "image_urls": ["https://static.aiquickdraw.com/tools/example/1764851002741_i0lEiI8I.png"],
        "duration": "5", "aspect_ratio": "16:9", "mode": "pro",
        "multi_prompt": [
            {"prompt": "a happy dog in running@element_cat", "duration": 3},
            {"prompt": "a happy dog play with a cat@element_dog", "duration": 3},
        ],
        "kling_elements": [
            {"name": "element_cat", "description": "cat", "element_input_urls": list(_URLS)},
            {"name": "element_dog", "description": "dog", "element_input_urls": list(_URLS)},
        ],
    },
}


def test_kie_single_shot_example_is_valid_once_model_follows_schema():
    # The doc example writes model "kling-3.0"; the schema's enum (and KIE) want "kling-3.0/video".
    assert {(p.path, p.rule) for p in validate_payload(KIE_SINGLE)} == {("model", "model")}
    assert validate_payload(mutate(KIE_SINGLE, "model", rules.MODEL)) == []


def test_kie_multi_shot_example_breaks_exactly_the_sum_and_sound_rules():
    problems = validate_payload(mutate(KIE_MULTI, "model", rules.MODEL))
    assert {(p.path, p.rule, p.level) for p in problems} == {
        ("input.duration", "shot_sum", "error"),  # 3 + 3 = 6, duration "5"
        ("input.sound", "sound", "error"),  # the example omits sound; live KIE: "sound cannot be empty"
    }
    shot_sum = next(p for p in problems if p.rule == "shot_sum")
    assert shot_sum.message == "Shots add up to 6 s but the duration is 5 s: set the duration to 6 s or shorten a shot."


# --- top level ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("model", "kling-3.0", {("model", "model")}),
        ("model", DELETE, {("model", "model")}),
        ("model", None, {("model", "model")}),
        ("callBackUrl", "https://example.com/hook", set()),
        ("callBackUrl", "http://example.com/hook?x=1", set()),
        ("callBackUrl", "ftp://example.com/hook", {("callBackUrl", "callback_url")}),
        ("callBackUrl", "/hook", {("callBackUrl", "callback_url")}),
        ("callBackUrl", "", {("callBackUrl", "callback_url")}),
        ("callBackUrl", None, {("callBackUrl", "callback_url")}),
        ("input", DELETE, {("input", "input")}),
        ("input", [], {("input", "input")}),
    ],
)
def test_top_level(path, value, expected):
    assert errors(mutate(single(), path, value)) == expected


# --- settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "ok"),
    [
        ("duration", "3", True), ("duration", "15", True), ("duration", "2", False), ("duration", "16", False),
        ("duration", 5, False), ("duration", "5.0", False), ("duration", " 5", False), ("duration", "５", False),
        ("duration", True, False), ("duration", None, False), ("duration", DELETE, False), ("duration", "-5", False),
        ("mode", "std", True), ("mode", "pro", True), ("mode", "4K", True), ("mode", "4k", False),
        ("mode", "hd", False), ("mode", DELETE, False), ("mode", 1, False),
        ("aspect_ratio", "16:9", True), ("aspect_ratio", "9:16", True), ("aspect_ratio", "1:1", True),
        ("aspect_ratio", DELETE, True), ("aspect_ratio", "4:3", False), ("aspect_ratio", None, False),
        ("sound", True, True), ("sound", False, True), ("sound", "true", False), ("sound", 1, False),
        ("sound", DELETE, False), ("sound", None, False),
        ("multi_shots", False, True), ("multi_shots", DELETE, False), ("multi_shots", 0, False),
        ("multi_shots", "false", False),
    ],
)
def test_settings(field, value, ok):
    found = errors(mutate(single(), f"input.{field}", value))
    assert found == (set() if ok else {(f"input.{field}", field)})


def test_mode_case_typo_suggests_the_right_spelling():
    [problem] = validate_payload(mutate(single(), "input.mode", "4k"))
    assert "did you mean '4K'?" in problem.message


def test_integer_duration_says_to_quote_it():
    [problem] = validate_payload(mutate(single(), "input.duration", 5))
    assert problem.message == 'The duration must be text like "5", not the number 5: put it in quotes.'


# --- single-shot prompt ------------------------------------------------------------------------

REF = " @dog"  # counts 37 toward the budget


@pytest.mark.parametrize(
    ("prompt", "ok"),
    [
        ("x" * 2500, True),
        ("x" * 2501, False),
        ("x" * (2500 - 37) + "@dog", True),  # the reference counts 37, not 4
        ("x" * (2500 - 36) + "@dog", False),
        ("", False),
        ("   ", False),
    ],
    ids=["2500", "2501", "2463+ref", "2464+ref", "empty", "blank"],
)
def test_single_prompt_length_and_presence(prompt, ok):
    assert errors(single(prompt=prompt)) == (set() if ok else {("input.prompt", "prompt_length" if prompt.strip() else "prompt")})


@pytest.mark.parametrize("value", [None, 5, ["a"], {"text": "a"}])
def test_single_prompt_wrong_type(value):
    assert ("input.prompt", "prompt") in errors(single(prompt=value))


def test_prompt_length_message_says_how_much_to_cut():
    [problem] = errors_only(validate_payload(single(prompt="x" * 2501 + REF)))
    assert "2,539 characters" in problem.message and "shorten it by 39 characters" in problem.message


def test_multi_prompt_on_single_shot_is_only_a_warning():
    body = single(multi_prompt=[{"prompt": "ignored", "duration": 99}])
    assert errors(body) == set()
    assert warnings(body) == {("input.multi_prompt", "ignored_field")}


# --- frames ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "is_multi", "ok"),
    [(0, False, True), (1, False, True), (2, False, True), (3, False, False), (1, True, True), (2, True, False)],
)
def test_frame_image_count(count, is_multi, ok):
    frames = [f"https://example.com/f{i}.png" for i in range(count)]
    body = (multi if is_multi else single)(image_urls=frames)
    assert (("input.image_urls", "frames") not in errors(body)) is ok


# --- multi-shot --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("durations", "expected"),
    [
        ((3,), set()),
        ((1, 1, 1, 1, 1), set()),
        ((1, 1, 1, 1, 1, 1), {("input.multi_prompt", "shots")}),
        ((12, 3), set()),
        ((13, 2), {("input.multi_prompt[0].duration", "shot_duration")}),
        ((0, 3), {("input.multi_prompt[0].duration", "shot_duration")}),
        ((1, 1), {("input.multi_prompt", "shot_sum")}),  # 2 s: below the 3 s minimum
        ((12, 4), {("input.multi_prompt", "shot_sum")}),  # 16 s: above 15 s
    ],
)
def test_shot_count_and_durations(durations, expected):
    body = multi(*durations)
    if sum(durations) > 15 or sum(durations) < 3:
        body["input"]["duration"] = "5"
    assert errors(body) == expected


@pytest.mark.parametrize(("stated", "shots"), [("5", (3, 3)), ("6", (2, 3)), ("15", (12, 2))])
def test_shots_must_add_up_to_duration(stated, shots):
    assert errors(multi(*shots, duration=stated)) == {("input.duration", "shot_sum")}


@pytest.mark.parametrize("value", [True, "3", 3.0, None, [3]])
def test_shot_duration_must_be_an_integer(value):
    body = mutate(multi(3, 2), "input.multi_prompt[0].duration", value)
    assert errors(body) == {("input.multi_prompt[0].duration", "shot_duration")}


@pytest.mark.parametrize(
    ("prompt", "ok"),
    [("y" * 500, True), ("y" * 501, False), ("y" * (500 - 37) + "@dog", True), ("y" * (500 - 36) + "@dog", False), ("", False)],
    ids=["500", "501", "463+ref", "464+ref", "empty"],
)
def test_shot_prompt_length(prompt, ok):
    body = mutate(multi(3, 2), "input.multi_prompt[1].prompt", prompt)
    assert errors(body) == (set() if ok else {("input.multi_prompt[1].prompt", "shot_prompt")})


@pytest.mark.parametrize("shots", [DELETE, [], None, "shot"])
def test_multi_shot_needs_shots(shots):
    assert ("input.multi_prompt", "shots") in errors(mutate(multi(), "input.multi_prompt", shots))


def test_multi_shot_needs_sound_on():
    assert errors(multi(sound=False)) == {("input.sound", "multi_sound")}


def test_prompt_on_multi_shot_is_ignored_with_a_warning():
    assert warnings(multi(prompt="unused")) == {("input.prompt", "ignored_field")}


# --- URLs --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://example.com/a.png", True), ("http://example.com/a.png", True), ("HTTPS://EXAMPLE.COM/a.png", True),
        ("file:///etc/passwd", False), ("javascript:alert(1)", False), ("data:image/png;base64,AAAA", False),
        ("ftp://example.com/a.png", False), ("/static/a.png", False), ("a.png", False), ("//example.com/a.png", False),
        ("https://", False), ("https:///a.png", False), ("https://exa mple.com/a.png", False), ("", False),
        (None, False), (5, False), ("http://[::1", False),
    ],
)
def test_every_url_is_http(url, ok):
    assert (url_problem(url) is None) is ok
    body = mutate(single(), "input.image_urls[0]", url)
    assert (("input.image_urls[0]", "url") not in errors(body)) is ok
    body = mutate(single(), "input.kling_elements[0].element_input_urls[1]", url)
    assert (("input.kling_elements[0].element_input_urls[1]", "url") not in errors(body)) is ok


# --- elements ----------------------------------------------------------------------------------


def element(name, images=2, **extra):
    return {"name": name, "description": f"the {name}", "element_input_urls": [IMG.format(i) for i in range(images)], **extra}


def with_elements(*elements, prompt=None):
    names = [e["name"] for e in elements if isinstance(e, dict) and isinstance(e.get("name"), str)]
    text = prompt if prompt is not None else "scene " + " ".join(f"@{n}" for n in names)
    return single(prompt=text, kling_elements=list(elements))


@pytest.mark.parametrize(("count", "ok"), [(3, True), (4, False)])
def test_at_most_three_elements(count, ok):
    body = with_elements(*(element(f"e{i}") for i in range(count)))
    assert errors(body) == (set() if ok else {("input.kling_elements", "elements")})


@pytest.mark.parametrize(("images", "ok"), [(0, False), (1, False), (2, True), (4, True), (5, False)])
def test_two_to_four_images(images, ok):
    found = errors(with_elements(element("dog", images)))
    assert found == (set() if ok else {("input.kling_elements[0].element_input_urls", "element_images")})


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("dog", True), ("element_dog", True), ("my-cat_2", True), ("A1", True),
        ("my cat", False), ("cat!", False), ("cаt", False),  # Cyrillic а
        ("ｃat", False), ("café", False), ("", False), ("dog.png", False),
        ("a" * 40, True), ("a" * 41, False),  # the library's cap (lib.kling.rules), checked on every payload
    ],
)
def test_element_names(name, ok):
    body = single(prompt="scene", kling_elements=[element(name)])
    assert (("input.kling_elements[0].name", "element_name") not in errors(body)) is ok


def test_element_name_message_suggests_a_fix():
    body = single(prompt="scene", kling_elements=[element("my cat")])
    [problem] = problems_at(errors_only(validate_payload(body)), "input.kling_elements[0].name")
    assert problem.message == "Element 1: Name 'my cat' has a space: use letters, digits, _ or -, e.g. 'my_cat'"


def test_lookalike_name_is_explained():
    body = single(prompt="scene", kling_elements=[element("cаt")])
    [problem] = errors_only(validate_payload(body))
    assert "Cyrillic Small Letter A" in problem.message and "looks like the Latin 'a'" in problem.message


@pytest.mark.parametrize(("value", "ok"), [(None, False), (5, False), (DELETE, False)])
def test_element_name_required(value, ok):
    assert ("input.kling_elements[0].name", "element_name") in errors(mutate(single(), "input.kling_elements[0].name", value))


def test_duplicate_names():
    body = with_elements(element("dog"), element("dog"))
    assert errors(body) == {("input.kling_elements[1].name", "element_name")}


@pytest.mark.parametrize("value", ["", "  ", None, DELETE, 3])
def test_element_description_required(value):
    body = mutate(single(), "input.kling_elements[0].description", value)
    assert errors(body) == {("input.kling_elements[0].description", "element_description")}


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"element_input_video_urls": [VIDEO]}, {("input.kling_elements[0]", "element_video")}),  # both
        ({"element_input_urls": DELETE, "element_input_video_urls": [VIDEO]}, set()),
        ({"element_input_urls": DELETE, "element_input_video_urls": [VIDEO, VIDEO]},
         {("input.kling_elements[0].element_input_video_urls", "element_video")}),
        ({"element_input_urls": DELETE, "element_input_video_urls": ["file:///clip.mp4"]},
         {("input.kling_elements[0].element_input_video_urls[0]", "url")}),
        ({"element_input_urls": DELETE}, {("input.kling_elements[0].element_input_urls", "element_images")}),
        ({"element_input_urls": "https://a/b.png"}, {("input.kling_elements[0].element_input_urls", "url")}),
    ],
)
def test_video_elements_k1(change, expected):
    body = single()
    for key, value in change.items():
        body = mutate(body, f"input.kling_elements[0].{key}", value)
    assert errors(body, video_schema="K1") == expected


@pytest.mark.parametrize(
    ("element_fields", "expected"),
    [
        ({"element_input_urls": [VIDEO]}, set()),
        ({"element_input_urls": [VIDEO], "start_time": 0, "end_time": 3000}, set()),
        ({"element_input_urls": [VIDEO], "start_time": 1000, "end_time": 9000}, set()),
        ({"element_input_urls": [VIDEO], "start_time": 1000, "end_time": 9001}, {("input.kling_elements[0].end_time", "video_window")}),
        ({"element_input_urls": [VIDEO], "end_time": 2999}, {("input.kling_elements[0].end_time", "video_window")}),
        ({"element_input_urls": [VIDEO], "start_time": "0", "end_time": 3000}, {("input.kling_elements[0].start_time", "video_window")}),
        ({"element_input_urls": [VIDEO, VIDEO]}, {("input.kling_elements[0].element_input_urls", "element_video")}),
        ({"element_input_urls": [VIDEO, IMG.format(1)]}, {("input.kling_elements[0]", "element_video")}),
        ({"element_input_video_urls": [VIDEO], "element_input_urls": DELETE},
         {("input.kling_elements[0].element_input_video_urls", "element_video"),
          ("input.kling_elements[0].element_input_urls", "element_images")}),
    ],
)
def test_video_elements_k4(element_fields, expected):
    body = single()
    for key, value in element_fields.items():
        body = mutate(body, f"input.kling_elements[0].{key}", value)
    assert errors(body, video_schema="K4") == expected


def test_schema_switch_is_read_from_rules(monkeypatch):
    body = mutate(single(), "input.kling_elements[0].element_input_urls", [VIDEO])
    assert errors(body) == {("input.kling_elements[0].element_input_urls", "element_images"),
                            ("input.kling_elements[0].element_input_urls[0]", "element_video")}
    monkeypatch.setattr(rules, "VIDEO_ELEMENT_SCHEMA", "K4")
    assert errors(body) == set()


# --- references --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a dog @dog", set()),
        ("sunlight through the window@dog", set()),  # glued to the previous word, as in KIE's example
        ("@dog, then @dog again.", set()),
        ("a cat @cat", {("input.prompt", "reference")}),
        ("mail me at a@b.com", {("input.prompt", "reference")}),  # @b counts as a reference
        ("@Dog", {("input.prompt", "reference")}),  # exact match only
    ],
)
def test_references_name_defined_elements(prompt, expected):
    body = single(prompt=prompt)
    assert errors(body) == expected


def test_undefined_reference_message():
    problems = problems_at(validate_payload(single(prompt="a @cat and @dog")), "input.prompt")
    assert [p.message for p in problems] == ["@cat is not a defined element: add an element named cat or fix the spelling."]


def test_undefined_reference_in_a_shot_points_at_the_shot():
    body = mutate(multi(3, 2), "input.multi_prompt[1].prompt", "then @cat")
    assert errors(body) == {("input.multi_prompt[1].prompt", "reference")}


# --- warnings ----------------------------------------------------------------------------------


def test_unused_element_is_a_warning():
    body = with_elements(element("dog"), element("cat"), prompt="only @dog")
    assert errors(body) == set()
    assert warnings(body) == {("input.kling_elements[1].name", "unused_element")}


def test_elements_without_first_frame_warn():
    body = mutate(single(), "input.image_urls", DELETE)
    assert errors(body) == set()
    assert warnings(body) == {("input.image_urls", "first_frame")}


@pytest.mark.parametrize(("value", "is_error"), [(0.5, False), (1, False), ("high", True), (True, True)])
def test_cfg_scale_warns(value, is_error):
    body = single(cfg_scale=value)
    assert ("input.cfg_scale", "cfg_scale") in warnings(body)
    assert (("input.cfg_scale", "cfg_scale") in errors(body)) is is_error


def test_unknown_fields_warn():
    body = single(negative_prompt="blur")
    body["extra"] = 1
    assert errors(body) == set()
    assert warnings(body) == {("input.negative_prompt", "unknown_field"), ("extra", "unknown_field")}


# --- malformed bodies never raise ----------------------------------------------------------------

WEIRD_BODIES = [
    None, 0, 1.5, "kling", b"bytes", [], [single()], {}, {"input": None}, {"input": "x"}, {"input": []},
    {"model": ["kling-3.0/video"], "input": {}}, {1: 2, None: 3}, {"input": {1: 2}},
    {"input": {"multi_shots": True}}, {"input": {"multi_shots": True, "multi_prompt": "abc"}},
    {"input": {"multi_shots": True, "multi_prompt": [None, 1, "x", [], {"prompt": None, "duration": None}]}},
    {"input": {"multi_shots": True, "multi_prompt": [{"prompt": ["x"], "duration": {"s": 1}}], "duration": "5"}},
    {"input": {"multi_shots": True, "duration": "9" * 400, "multi_prompt": [{"prompt": "a", "duration": 10**100}]}},
    {"input": {"duration": float("nan"), "mode": ["std"], "sound": "yes", "aspect_ratio": {}}},
    {"input": {"prompt": "@@@@", "kling_elements": "dog"}},
    {"input": {"prompt": "@a @b", "kling_elements": [None, 1, "x", [], {}]}},
    {"input": {"kling_elements": [{"name": ["x"], "description": 5, "element_input_urls": [None, 5, {}]}]}},
    {"input": {"kling_elements": [{"name": "x", "element_input_video_urls": "v", "element_input_urls": None}]}},
    {"input": {"kling_elements": [{"name": "\ud800", "start_time": [], "end_time": {}}]}},
    {"input": {"image_urls": "https://a/b.png", "cfg_scale": None}},
    {"input": {"image_urls": [None, ["x"], "http://[::1"]}, "callBackUrl": {"u": 1}},
    {"input": {"prompt": "\x00" * 3000, "duration": "\u0665"}},
]


@pytest.mark.parametrize("body", WEIRD_BODIES, ids=range(len(WEIRD_BODIES)))
@pytest.mark.parametrize("schema", ["K1", "K4"])
def test_malformed_bodies_never_raise(body, schema):
    problems = validate_payload(body, video_schema=schema)
    assert problems and all(isinstance(p, Problem) for p in problems)
    assert errors_only(problems)
    # Reached the end on its own, not through the safety net.
    assert not any("could not be checked" in p.message for p in problems)


def test_problems_at_and_errors_only():  # problems_at is this file's helper; errors_only is lib's
    problems = validate_payload(with_elements(element("a b"), element("ok", images=1), prompt="x @ok"))
    first = problems_at(problems, "input.kling_elements[0]")
    assert {p.path for p in first} == {"input.kling_elements[0].name"}
    assert problems_at(problems, "input.kling_elements[1]")[0].path == "input.kling_elements[1].element_input_urls"
    assert problems_at(problems, "input.kling_elements[1") == []
    assert all(p.level == "error" for p in errors_only(problems))


def test_every_rule_names_a_source():
    assert all(rule.source for rule in rules.RULES.values())
    fired = {p.rule for body in WEIRD_BODIES for p in validate_payload(body)}
    assert fired <= set(rules.RULES)


def test_the_first_frame_message_says_from_the_rules_table_whether_a_live_job_is_refused(monkeypatch):
    from dataclasses import replace

    from lib.kling.problems import live_verdict

    body = mutate(with_elements(element("dog"), prompt="a @dog"), "input.image_urls", DELETE)
    (problem,) = [p for p in validate_payload(body) if p.rule == "first_frame"]
    assert "Would a live job be refused? Not known" in problem.message
    assert rules.RULES["first_frame"].live == rules.LIVE_UNCONFIRMED
    # the table decides: were the row to record a refusal, the same check would say so
    monkeypatch.setitem(rules.RULES, "first_frame", replace(rules.RULES["first_frame"], live=rules.LIVE_REFUSED))
    assert live_verdict("first_frame").startswith("A live job like this is refused by KIE")
    (problem,) = [p for p in validate_payload(body) if p.rule == "first_frame"]
    assert "refused by KIE" in problem.message
    assert live_verdict("duration") == ""  # rows without a recorded outcome add nothing


def test_every_rule_records_a_known_live_outcome_or_none():
    assert {r.live for r in rules.RULES.values()} <= {"", *rules.LIVE_OUTCOMES}
