"""The payload builder: exact JSON, round trips, and the one @reference pattern."""

from __future__ import annotations

import json

import pytest

from lib.kling import rules
from lib.kling.job import (
    ElementSpec,
    Job,
    Shot,
    build_payload,
    job_from_payload,
    prompt_budget_length,
    referenced_names,
)
from lib.kling.validation import validate_payload

DOG = ElementSpec("dog", "a brown terrier", ("https://a.example/1.png", "https://a.example/2.png"))
CAT = ElementSpec("cat", "a grey cat", ("https://a.example/3.png", "https://a.example/4.png"))
CLIP = ElementSpec("clip", "a moving car", video_urls=("https://a.example/car.mp4",))


def test_single_shot_exact_payload():
    job = Job(prompt="A dog @dog runs", duration=7, mode="pro", sound=True, image_urls=("https://a.example/f.png",),
              elements=(DOG, CAT), callback_url="https://hook.example/cb")
    payload = build_payload(job)
    assert list(payload) == ["model", "callBackUrl", "input"]
    assert payload == {
        "model": "kling-3.0/video",
        "callBackUrl": "https://hook.example/cb",
        "input": {
            "prompt": "A dog @dog runs",
            "image_urls": ["https://a.example/f.png"],
            "sound": True,
            "duration": "7",
            "aspect_ratio": "16:9",
            "mode": "pro",
            "multi_shots": False,
            "kling_elements": [{"name": "dog", "description": "a brown terrier",
                                "element_input_urls": ["https://a.example/1.png", "https://a.example/2.png"]}],
        },
    }
    assert validate_payload(payload) == []


def test_minimal_job_leaves_unset_fields_out():
    payload = build_payload(Job(prompt="sunset", aspect_ratio=None))
    assert payload == {"model": rules.MODEL, "input": {"prompt": "sunset", "sound": False, "duration": "5",
                                                       "mode": "std", "multi_shots": False}}
    assert None not in json.loads(json.dumps(payload))["input"].values()


def test_multi_shot_duration_is_the_sum_of_shots():
    job = Job(multi_shots=True, sound=True, duration=5, prompt="ignored @dog",
              shots=(Shot("first @cat", 4), Shot("second", 6)), elements=(DOG, CAT))
    data = build_payload(job)["input"]
    assert data["duration"] == "10"
    assert "prompt" not in data
    assert data["multi_prompt"] == [{"prompt": "first @cat", "duration": 4}, {"prompt": "second", "duration": 6}]
    assert [e["name"] for e in data["kling_elements"]] == ["cat"]  # dog is only in the ignored prompt


def test_single_shot_ignores_shots():
    data = build_payload(Job(prompt="x", shots=(Shot("y", 3),)))["input"]
    assert "multi_prompt" not in data and data["prompt"] == "x"


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ("K1", {"name": "clip", "description": "a moving car", "element_input_video_urls": ["https://a.example/car.mp4"]}),
        ("K4", {"name": "clip", "description": "a moving car", "element_input_urls": ["https://a.example/car.mp4"],
                "start_time": 0, "end_time": 5000}),
    ],
)
def test_video_element_schema_switch(schema, expected, monkeypatch):
    monkeypatch.setattr(rules, "VIDEO_ELEMENT_SCHEMA", schema)
    clip = ElementSpec("clip", "a moving car", video_urls=("https://a.example/car.mp4",), start_time=0, end_time=5000)
    payload = build_payload(Job(prompt="@clip drives", image_urls=("https://a.example/f.png",), elements=(clip,)))
    assert payload["input"]["kling_elements"] == [expected]
    assert validate_payload(payload) == []
    assert job_from_payload(payload).elements == (clip if schema == "K4" else ElementSpec(
        "clip", "a moving car", video_urls=("https://a.example/car.mp4",)),)


ROUND_TRIP_JOBS = [
    Job(prompt="a calm lake"),
    Job(prompt="a calm lake", aspect_ratio=None, mode="4K", duration=15, sound=True),
    Job(prompt="@dog and @cat play", image_urls=("https://a.example/f.png", "https://a.example/l.png"),
        elements=(DOG, CAT), mode="pro", aspect_ratio="9:16", duration=3),
    Job(multi_shots=True, sound=True, duration=8, aspect_ratio="1:1", shots=(Shot("open @clip", 3), Shot("close", 5)),
        image_urls=("https://a.example/f.png",), elements=(CLIP,), callback_url="https://hook.example/cb"),
    Job(prompt="with cfg", cfg_scale=0.5),
]


@pytest.mark.parametrize("job", ROUND_TRIP_JOBS, ids=range(len(ROUND_TRIP_JOBS)))
def test_round_trip(job):
    payload = build_payload(job)
    assert [p for p in validate_payload(payload) if p.level == "error"] == []
    assert build_payload(job_from_payload(payload)) == payload
    assert build_payload(job_from_payload(json.loads(json.dumps(payload)))) == payload
    assert job_from_payload(payload) == job


def test_job_from_payload_is_lenient_but_rejects_non_objects():
    job = job_from_payload({"input": {"duration": 9, "multi_prompt": [None, {"prompt": 5, "duration": "4"}],
                                      "kling_elements": [None, {"name": 3}], "sound": "yes", "cfg_scale": True}})
    assert job == Job(duration=9, shots=(Shot("", 4),), elements=(ElementSpec("", ""),), aspect_ratio=None)
    with pytest.raises(ValueError, match="JSON object"):
        job_from_payload(["not", "a", "dict"])


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("@dog runs", ["dog"]),
        ("the window@element_dog.", ["element_dog"]),
        ("@a @b @a", ["a", "b"]),
        ("@my-cat's toy", ["my-cat"]),
        ("mail a@b.com", ["b"]),
        ("no refs @ all", []),
        ("@cаt", ["c"]),  # a Cyrillic а ends the ASCII name
        ("", []),
    ],
)
def test_referenced_names(text, names):
    assert referenced_names(text) == names


@pytest.mark.parametrize(("text", "length"), [("abc", 3), ("@dog", 37), ("x@dog y@dog", 1 + 37 + 2 + 37), ("@", 1)])
def test_prompt_budget_length(text, length):
    assert prompt_budget_length(text) == length
