"""The sandbox refuses what KIE documents, with KIE's codes and terse wording — never the app's explanations."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import requests

from lib.kling import rules
from lib.kling.validation import validate_payload
from lib.sandbox.kie_rules import kie_error

IMG = "https://cdn.example.com/a.png"
VID = "https://cdn.example.com/a.mp4"


def single(**changes: Any) -> dict[str, Any]:
    data = {"prompt": "A red fox runs", "duration": "5", "mode": "std", "sound": False, "multi_shots": False,
            "aspect_ratio": "16:9"}
    data.update(changes)
    return {"model": rules.MODEL, "input": {k: v for k, v in data.items() if v is not ...}}


def multi(shots: list[tuple[str, Any]], **changes: Any) -> dict[str, Any]:
    total = sum(d for _, d in shots if isinstance(d, int) and not isinstance(d, bool))
    data = {"multi_shots": True, "sound": True, "mode": "pro", "duration": str(total), "aspect_ratio": "9:16",
            "multi_prompt": [{"prompt": p, "duration": d} for p, d in shots]}
    data.update(changes)
    return {"model": rules.MODEL, "input": {k: v for k, v in data.items() if v is not ...}}


def element(name: str = "cat", **changes: Any) -> dict[str, Any]:
    entry = {"name": name, "description": "a cat", "element_input_urls": [IMG, IMG]}
    entry.update(changes)
    return {k: v for k, v in entry.items() if v is not ...}


CASES = [
    ({"model": "kling-2.6/video", "input": single()["input"]}, "model is not supported"),
    ({**single(), "callBackUrl": "not a url"}, "callBackUrl is not a valid URL"),
    ({"model": rules.MODEL}, "input cannot be empty"),
    (single(duration=...), "duration cannot be empty"),
    (single(duration="five"), "duration is invalid"),
    (single(duration="16"), "duration cannot be greater than 15"),
    (single(duration="2"), "duration cannot be less than 3"),
    (single(mode="ultra"), "mode must be one of std, pro, 4K"),
    (single(aspect_ratio="4:3"), "aspect_ratio must be one of 16:9, 9:16, 1:1"),
    (single(sound=...), "sound cannot be empty"),
    (single(sound="yes"), "sound must be a boolean"),
    (single(multi_shots=...), "multi_shots cannot be empty"),
    (single(prompt=""), "prompt cannot be empty"),
    (single(prompt="x" * 2501), "prompt length cannot exceed 2500"),
    (single(image_urls=[IMG, IMG, IMG]), "image_urls cannot have more than 2 items"),
    (single(image_urls=["ftp://x/y.png"]), "image_urls[0] is not a valid URL"),
    (multi([("a", 3)], sound=False), "sound must be true when multi_shots is true"),
    (multi([("a", 3)], multi_prompt=[]), "multi_prompt cannot be empty"),
    (multi([("a", 1)] * 6), "multi_prompt cannot have more than 5 items"),
    (multi([("a", 13)], duration="13"), "multi_prompt[0].duration cannot be greater than 12"),
    (multi([("a", 3), ("b", 0)], duration="3"), "multi_prompt[1].duration cannot be less than 1"),
    (multi([("a", "3")], duration="3"), "multi_prompt[0].duration must be an integer"),
    (multi([("", 3)]), "multi_prompt[0].prompt cannot be empty"),
    (multi([("x" * 501, 3)]), "multi_prompt[0].prompt length cannot exceed 500"),
    (multi([("a", 3)], duration="5"), "multi_prompt durations must add up to duration"),
    (multi([("a", 3)], image_urls=[IMG, IMG]), "image_urls cannot have more than 1 item"),
    (single(prompt="@a @b @c @d", kling_elements=[element(n) for n in "abcd"]),
     "kling_elements cannot have more than 3 items"),
    (single(prompt="@cat", kling_elements=[element(description="")]), "kling_elements[0].description cannot be empty"),
    (single(prompt="@cat", kling_elements=[element(name=...)]), "kling_elements[0].name cannot be empty"),
    (single(prompt="@cat", kling_elements=[element(element_input_urls=[IMG])]),
     "kling_elements[0].element_input_urls must have 2 to 4 items"),
    (single(prompt="@cat", kling_elements=[element(element_input_urls=[IMG] * 5)]),
     "kling_elements[0].element_input_urls must have 2 to 4 items"),
    (single(prompt="@cat", kling_elements=[element(element_input_video_urls=[VID])]),
     "kling_elements[0] cannot mix images and a video"),
    (single(prompt="@cat", kling_elements=[element(element_input_urls=..., element_input_video_urls=[VID, VID])]),
     "kling_elements[0].element_input_video_urls must have exactly 1 item"),
    (single(prompt="@dog", kling_elements=[element()]), "element @dog is not defined in kling_elements"),
]


@pytest.mark.parametrize(("payload", "message"), CASES, ids=[m for _, m in CASES])
def test_every_documented_limit_has_kies_wording(payload: dict[str, Any], message: str) -> None:
    assert kie_error(payload) == message


@pytest.mark.parametrize(("payload", "message"), CASES[:8] + CASES[16:20], ids=[m for _, m in CASES[:8] + CASES[16:20]])
def test_over_http_the_answer_is_a_200_with_code_422(sandbox, payload: dict[str, Any], message: str) -> None:
    resp = requests.post(sandbox.base_url + "/api/v1/jobs/createTask", json=payload,
                         headers={"Authorization": "Bearer k"}, timeout=10)
    assert resp.status_code == 200
    assert resp.json() == {"code": 422, "msg": message, "data": None}
    assert sandbox.backend.state()["tasks"] == 0


@pytest.mark.parametrize(("payload", "_"), CASES, ids=[m for _, m in CASES])
def test_the_app_catches_each_first_with_its_own_words(payload: dict[str, Any], _: str) -> None:
    errors = [p for p in validate_payload(copy.deepcopy(payload)) if p.level == "error"]
    assert errors, "the app's pre-submit checks must catch what KIE would refuse"
    assert all(p.message != kie_error(payload) for p in errors)


@pytest.mark.parametrize("payload", [
    single(), single(mode="4K", duration="15", sound=True), single(image_urls=[IMG, IMG]),
    multi([("a", 3), ("b @cat", 4)], kling_elements=[element()]),
    single(prompt="@cat", kling_elements=[element(element_input_urls=..., element_input_video_urls=[VID])]),
])
def test_valid_bodies_pass(payload: dict[str, Any]) -> None:
    assert kie_error(payload) is None and not [p for p in validate_payload(payload) if p.level == "error"]
