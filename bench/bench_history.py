"""Time the history ledger at 10,000 rows: append one row, update one row, load all rows.

Run: python bench/bench_history.py [rows]
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.common.clock import utc_now
from lib.history.ledger import Ledger
from lib.history.row import HistoryRow

TARGETS_MS = {"append one row": 10.0, "update one row": 100.0, "load all rows (cold)": 200.0}
REPEATS = 7


def sample_payload(i: int) -> dict[str, object]:
    """A realistic multi-shot createTask payload (about 600 bytes of JSON)."""
    shots = [{"prompt": f"Shot {n} of take {i}: @hero walks through neon rain, slow dolly in", "duration": 3}
             for n in range(3)]
    return {"model": "kling-3.0/video", "input": {
        "prompt": "", "multi_shots": True, "multi_prompt": shots, "duration": "9", "mode": "pro", "sound": True,
        "aspect_ratio": "16:9", "kling_elements": [{"name": "hero", "description": "a courier in a yellow coat",
                                                   "element_input_urls": ["https://tempfile.redpandaai.co/a.png"] * 2}]}}


def seed(ledger: Ledger, rows: int) -> None:
    """Write `rows` rows in one atomic rewrite (fast seeding; timing starts after)."""
    from lib.history.transfer import ImportReport

    made = [HistoryRow.from_payload(f"task{i:06d}", sample_payload(i), origin="sandbox", estimated_credits=243,
                                    batch_id=f"batch{i // 8}") for i in range(rows)]
    ledger.merge(ImportReport(rows_ok=made))


def _stdlib_read(path: Path) -> int:
    """The floor: stdlib csv.DictReader over the same file, every cell a str, no checks."""
    import csv

    with open(path, newline="", encoding="utf-8-sig") as fh:
        return sum(1 for _ in csv.DictReader(fh))


def median_ms(action: Callable[[int], object]) -> float:
    times = []
    for n in range(REPEATS):
        start = time.perf_counter()
        action(n)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main(rows: int = 10_000) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger.in_dir(tmp)
        seed(ledger, rows)
        size_mb = ledger.path.stat().st_size / 2**20
        ledger.rows()  # warm the page's cached view, as a running app has it
        results = {
            "append one row": median_ms(
                lambda n: ledger.append(HistoryRow.from_payload(f"new{n}", sample_payload(n), origin="live"))),
            "update one row": median_ms(
                lambda n: ledger.update(f"task{n * 997 % rows:06d}", state="succeeded", rating=n % 6,
                                        credits_consumed=243.0, last_checked_at=utc_now())),
            "load all rows (cold)": median_ms(lambda n: Ledger(ledger.path).rows()),
        }
        baseline = median_ms(lambda n: _stdlib_read(ledger.path))
    print(f"History ledger, {rows:,} rows ({size_mb:.1f} MB CSV), median of {REPEATS} runs")
    failed = 0
    for name, value in results.items():
        target = TARGETS_MS[name]
        verdict = "ok" if value <= target else "SLOW"
        failed += verdict != "ok"
        print(f"  {name:<22} {value:8.1f} ms   target {target:6.0f} ms   {verdict}")
    ratio = results["load all rows (cold)"] / baseline
    print(f"  baseline: stdlib csv.DictReader over the same file {baseline:8.1f} ms; cold load = {ratio:.1f}× it "
          "(target ≤ 2× at 100,000 rows)")
    print(json.dumps({**{k: round(v, 2) for k, v in results.items()}, "stdlib csv": round(baseline, 2)}))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000))
