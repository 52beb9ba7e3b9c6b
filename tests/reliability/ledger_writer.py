"""A ledger writer process for the concurrency tests: `python -m tests.reliability.ledger_writer PATH MODE PREFIX N`.

MODE `append` adds N rows `<PREFIX>-<i>`; `update` rewrites the state of the rows whose id starts with PREFIX,
N times round-robin; `both` appends then updates each row once. Prints one line per write (flushed).
"""

from __future__ import annotations

import sys

from lib.history.ledger import Ledger
from lib.history.row import HistoryRow

PAYLOAD = {"model": "kling-3.0/video",
           "input": {"prompt": "Concurrent writer", "duration": "3", "mode": "std", "sound": False,
                     "multi_shots": False, "aspect_ratio": "1:1"}}


def main(path: str, mode: str, prefix: str, count: int) -> None:
    ledger = Ledger(path)
    if mode in ("append", "both"):
        for i in range(count):
            ledger.append(HistoryRow.from_payload(f"{prefix}-{i}", PAYLOAD, origin="sandbox", batch_id=prefix))
            print("append", i, flush=True)
    if mode in ("update", "both"):
        mine = [r.task_id for r in ledger.rows() if r.task_id.startswith(prefix)]
        total = count if mode == "update" else len(mine)
        for i in range(total):
            ledger.update(mine[i % len(mine)], state="running", notes=f"{prefix} update {i} " + "x" * (i % 50))
            print("update", i, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))
