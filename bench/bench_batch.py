"""Time a template batch's plan: 500 CSV rows read, rendered, checked by the rules engine and priced (target
≤ 2 s), beside a baseline of 500 bare build_payload calls in the same run.

Run: python bench/bench_batch.py [rows]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.batch.plan import plan_batch
from lib.batch.rows import rows_from_csv
from lib.batch.template import make_template
from lib.kling.job import Job, build_payload

TARGET_S = 2.0
REPEATS = 5
TEMPLATE = {"compose_prompt": "A {{animal}} in a {{coat}} coat crosses {{place}} at {dawn|noon|dusk}, "
                              "{slow dolly in|handheld|drone shot}, {sunny|rainy} light", "compose_duration": 5}


def sample_csv(rows: int) -> bytes:
    """`rows` rows of three variables, with a mode override on every fifth."""
    lines = ["animal,coat,place,mode"]
    lines += [f"fox{i},yellow,street {i},{'pro' if i % 5 == 0 else ''}" for i in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def _median_s(action: object) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        action()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(rows: int = 500) -> tuple[float, float]:
    """(plan seconds, bare build_payload seconds) for `rows` rows, medians of interleaved runs."""
    template, data = make_template(TEMPLATE), sample_csv(rows)
    jobs = [Job(prompt=f"A fox{i} in a yellow coat crosses street {i}", duration=5) for i in range(rows)]

    def plan() -> None:
        found = plan_batch(template, rows_from_csv(data, template.variables, []), [])
        assert len(found.sendable) == rows

    def bare() -> None:
        for job in jobs:
            build_payload(job)

    return _median_s(plan), _median_s(bare)


def main(rows: int = 500) -> int:
    planned, bare = run(rows)
    ok = planned <= TARGET_S
    print(f"Batch plan, {rows} rows: read CSV + render + check + price {planned:.3f} s "
          f"(target ≤ {TARGET_S:.0f} s, {'PASS' if ok else 'FAIL'}); baseline {rows} bare build_payload calls "
          f"{bare:.3f} s ({planned / bare:.0f}× the baseline); medians of {REPEATS}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 500))
