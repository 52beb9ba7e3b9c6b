"""The backoff schedule, staleness and the wait loop with injected time."""

from __future__ import annotations

import pytest

from lib.kie.schedule import delay_range, is_due, is_stale, next_delay, queries_for


@pytest.mark.parametrize(("elapsed", "band"), [
    (0, (2, 3)), (29.9, (2, 3)), (30, (5, 10)), (119.9, (5, 10)), (120, (15, 30)), (3600, (15, 30)), (-5, (2, 3)),
])
def test_delay_band_follows_kie_advice(elapsed: float, band: tuple[int, int]) -> None:
    assert delay_range(max(0, elapsed)) == band
    low, high = band
    assert low <= next_delay(elapsed) <= high
    assert next_delay(elapsed, lambda lo, hi: hi) == high


def test_five_minute_task_needs_at_most_40_queries() -> None:
    assert queries_for(300) <= 40
    assert queries_for(30) >= 10  # still quick at the start


@pytest.mark.parametrize(("created", "now", "stale"), [(0, 1800, False), (0, 1800.1, True), (100, 50, False)])
def test_stale_only_after_the_deadline(created: float, now: float, stale: bool) -> None:
    assert is_stale(created, now, 1800) is stale


def test_is_due_skips_ticks_until_the_band_has_passed() -> None:
    assert is_due(0, None, 0)
    assert not is_due(0, 10, 11)   # 2.5 s band in the first 30 s
    assert is_due(0, 10, 12.5)
    assert not is_due(0, 200, 210)  # 22.5 s band after 2 min
    assert is_due(0, 200, 223)
