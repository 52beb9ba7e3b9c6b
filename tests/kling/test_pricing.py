"""Prices as data: credits per second, estimates for payloads and jobs, dollars."""

from __future__ import annotations

from decimal import Decimal

import pytest

from lib.kling.job import Job, Shot, build_payload
from lib.kling.pricing import (
    PRICES,
    RESOLUTIONS,
    credits_per_second,
    credits_to_usd,
    estimate_credits,
    format_cost,
)


@pytest.mark.parametrize(
    ("mode", "sound", "rate"),
    [("std", False, 14), ("std", True, 20), ("pro", False, 18), ("pro", True, 27), ("4K", False, 67), ("4K", True, 67)],
)
def test_credits_per_second(mode, sound, rate):
    assert credits_per_second(mode, sound) == rate == PRICES[mode][sound]


@pytest.mark.parametrize("mode", ["4k", "hd", None])
def test_unknown_mode_has_no_price(mode):
    with pytest.raises(ValueError, match="No price"):
        credits_per_second(mode, False)


@pytest.mark.parametrize(
    ("job", "credits"),
    [
        (Job(prompt="x", duration=5), 70),
        (Job(prompt="x", duration=15, mode="pro", sound=True), 405),
        (Job(prompt="x", duration=3, mode="4K", sound=True), 201),
        (Job(multi_shots=True, sound=True, shots=(Shot("a", 3), Shot("b", 4)), duration=5), 7 * 20),
    ],
)
def test_estimates(job, credits):
    assert estimate_credits(build_payload(job)) == credits


def test_multi_shot_bills_on_total_duration():
    payload = build_payload(Job(multi_shots=True, sound=True, mode="pro", shots=(Shot("a", 6), Shot("b", 6))))
    assert estimate_credits(payload) == 12 * 27


@pytest.mark.parametrize(
    "payload",
    [{}, {"input": None}, {"input": {"mode": "std", "duration": "abc"}}, {"input": {"mode": "std", "duration": "16"}},
     {"input": {"mode": "8K", "duration": "5"}}, None],
)
def test_unpriceable_payloads_raise_value_error(payload):
    with pytest.raises(ValueError):
        estimate_credits(payload)





@pytest.mark.parametrize(
    ("credits", "usd", "text"),
    [
        (70, Decimal("0.35"), "70 credits (US$0.35)"),
        (405, Decimal("2.025"), "405 credits (US$2.025)"),
        (1, Decimal("0.005"), "1 credit (US$0.005)"),
        (200, Decimal("1"), "200 credits (US$1.00)"),
        (0, Decimal("0"), "0 credits (US$0.00)"),
        (12345, Decimal("61.725"), "12,345 credits (US$61.725)"),
    ],
)
def test_usd_and_format(credits, usd, text):
    assert credits_to_usd(credits) == usd
    assert format_cost(credits) == text


@pytest.mark.parametrize(
    ("mode", "aspect", "size"),
    [("std", "16:9", "1280×720"), ("std", "9:16", "720×1280"), ("pro", "1:1", "1080×1080"), ("4K", "16:9", "3840×2160")],
)
def test_resolutions(mode, aspect, size):
    assert RESOLUTIONS[mode][aspect] == size
