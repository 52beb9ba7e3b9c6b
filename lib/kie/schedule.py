"""When to ask KIE about a task next: a pure backoff schedule with a deadline and injectable time."""

from __future__ import annotations

from collections.abc import Callable

# (elapsed seconds up to, low, high): KIE advises 2–3 s for the first 30 s, 5–10 s until 2 min, then 15–30 s.
SCHEDULE: tuple[tuple[float, float, float], ...] = (
    (30.0, 2.0, 3.0),
    (120.0, 5.0, 10.0),
    (float("inf"), 15.0, 30.0),
)
DEFAULT_DEADLINE_S = 30 * 60  # long 4K/15 s jobs need more than KIE's generic 10–15 min


def delay_range(elapsed_s: float) -> tuple[float, float]:
    """The (low, high) wait after `elapsed_s` seconds since the task was created."""
    for limit, low, high in SCHEDULE:
        if elapsed_s < limit:
            return low, high
    return SCHEDULE[-1][1], SCHEDULE[-1][2]


def next_delay(elapsed_s: float, jitter: Callable[[float, float], float] | None = None) -> float:
    """Seconds to wait before the next query; `jitter` picks within the band (default: its middle)."""
    low, high = delay_range(max(0.0, elapsed_s))
    return jitter(low, high) if jitter else (low + high) / 2


def is_stale(created_at: float, now: float, deadline_s: float = DEFAULT_DEADLINE_S) -> bool:
    """Past the deadline a task is 'stale, still checking' — never failed."""
    return now - created_at > deadline_s


def is_due(created_at: float, last_checked: float | None, now: float) -> bool:
    """Whether a task should be queried now under the schedule (one query per due task per tick)."""
    if last_checked is None:
        return True
    return now - last_checked >= next_delay(last_checked - created_at)


def queries_for(duration_s: float) -> int:
    """How many queries the schedule sends over `duration_s` seconds (for benchmarks and tests)."""
    t, count = 0.0, 0
    while t < duration_s:
        count += 1
        t += next_delay(t)
    return count
