"""What a loaded ledger keeps in memory: slotted rows and their values, the file itself mapped (not copied)."""

from __future__ import annotations

import csv
import json
import mmap
import tracemalloc
from pathlib import Path

from lib.history.ledger import Ledger
from lib.history.row import HistoryRow
from lib.history.transfer import ImportReport
from tests.history.test_ledger import full_row


def test_a_loaded_ledger_holds_about_its_rows_not_the_file_twice(tmp_path: Path) -> None:
    rows = [full_row(f"t{i:05d}", text=json.dumps({"shot": i, "words": "neon rain " * 8})) for i in range(3_000)]
    Ledger.in_dir(tmp_path, fsync=False).merge(ImportReport(rows_ok=rows))
    size = (tmp_path / "history.csv").stat().st_size
    tracemalloc.start()
    try:
        with (tmp_path / "history.csv").open(newline="", encoding="utf-8") as fh:  # the rows themselves, alone
            alone = [HistoryRow.from_csv_dict(data) for data in csv.DictReader(fh)]
        rows_only, _ = tracemalloc.get_traced_memory()
        del alone
        tracemalloc.reset_peak()
        start, _ = tracemalloc.get_traced_memory()
        ledger = Ledger.in_dir(tmp_path)
        loaded = ledger.rows()
        held = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    assert loaded == rows
    assert isinstance(ledger._snap.data, mmap.mmap)  # type: ignore[union-attr]
    assert held < rows_only + 0.25 * size  # the rows and a small index; before, also a copy of the whole file


def test_appends_and_updates_extend_the_mapped_file(tmp_path: Path) -> None:
    ledger = Ledger.in_dir(tmp_path)
    ledger.append(full_row("a"))
    other = Ledger(ledger.path)
    other.append(full_row("b"))
    assert [r.task_id for r in ledger.rows()] == ["a", "b"]
    ledger.update_many({"a": {"notes": "one"}, "b": {"notes": "two"}})
    assert [r.notes for r in other.rows()] == ["one", "two"] and len(ledger._snap.data) == ledger.path.stat().st_size  # type: ignore[union-attr]
