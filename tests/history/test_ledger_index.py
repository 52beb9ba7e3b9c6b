"""The ledger's unfinished index: `unfinished()` always equals filtering `rows()`, without walking finished rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from lib.history import csvfile, ledger_file
from lib.history.ledger import Ledger
from lib.history.row import UNFINISHED_STATES, HistoryRow
from tests.history.test_ledger import make_row


def _expected(ledger: Ledger) -> list[HistoryRow]:
    return [row for row in ledger.rows() if row.state in UNFINISHED_STATES]


def _check(ledger: Ledger) -> None:
    assert ledger.unfinished() == _expected(ledger)
    assert Ledger(ledger.path).unfinished() == _expected(ledger)  # and as a fresh process reads the file


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    ledger = Ledger.in_dir(tmp_path)
    for i in range(6):
        ledger.append(make_row(f"t{i}", state="succeeded" if i % 2 else "running"))
    ledger.unfinished()  # build the index, as a running follower has it
    return ledger


def test_appends_and_updates_keep_the_index(ledger: Ledger) -> None:
    ledger.append(make_row("new", state="queued"))
    _check(ledger)
    ledger.update("t0", state="succeeded")
    _check(ledger)
    ledger.update("t2", state="unknown", notes="still going")
    _check(ledger)
    assert [r.task_id for r in ledger.unfinished()] == ["t2", "t4", "new"]


def test_a_finished_run_made_unfinished_again_keeps_rows_order(ledger: Ledger) -> None:
    ledger.append(make_row("last", state="running"))
    ledger.update("t1", state="running")  # an earlier id: its place is before t2
    _check(ledger)
    assert [r.task_id for r in ledger.unfinished()] == ["t0", "t1", "t2", "t4", "last"]


def test_another_writers_lines_are_seen(ledger: Ledger) -> None:
    other = Ledger(ledger.path)
    other.append(make_row("theirs", state="running"))
    other.update("t4", state="failed")
    other.update("t3", state="queued")
    _check(ledger)


def test_delete_compaction_and_unreadable_lines(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger.delete(["t2"])
    _check(ledger)
    monkeypatch.setattr("lib.history.ledger.COMPACT_MIN", 1)
    for _ in range(3):
        ledger.update("t0", notes="again")
    _check(ledger)
    with ledger.path.open("ab") as fh:
        fh.write(b"1,t4,,not a time,,sandbox,kling-3.0/video,running" + b"," * 23 + b"\r\n")
    _check(ledger)
    assert "t4" not in [r.task_id for r in ledger.unfinished()]


def test_compaction_keeps_every_row_in_its_place(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    """rows() is oldest first before and after the file is compacted (an update appends the row's new line)."""
    order = [r.task_id for r in ledger.rows()]
    monkeypatch.setattr("lib.history.ledger.COMPACT_MIN", 2)
    for i in range(6):
        ledger.update(order[0], notes=str(i))
        ledger.update(order[1], rating=2)
        assert [r.task_id for r in Ledger(ledger.path).rows()] == order
    lines = ledger.path.read_text().splitlines()
    assert len(lines) < 1 + len(order) + 6  # compacted meanwhile, not only appended
    fresh = Ledger(ledger.path).rows()
    assert fresh[0].notes == "5" and fresh[1].rating == 2
    _check(ledger)


class _CountingStates(frozenset):
    checks = 0

    def __contains__(self, state: object) -> bool:
        _CountingStates.checks += 1
        return super().__contains__(state)


def test_following_looks_at_no_finished_row_once_indexed(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(200):
        ledger.append(make_row(f"done{i}", state="succeeded"))
    ledger.unfinished()
    monkeypatch.setattr(csvfile, "UNFINISHED_STATES", _CountingStates(UNFINISHED_STATES))
    for _ in range(5):  # a follower's ticks: update each unfinished row, read the unfinished rows again
        for row in ledger.unfinished():
            ledger.update(row.task_id, notes="tick")
    assert [r.task_id for r in ledger.unfinished()] == ["t0", "t2", "t4"]
    assert _CountingStates.checks == 15  # one per update: the 203 finished rows are never looked at


def test_bulk_parse_pauses_the_collector_and_restores_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    monkeypatch.setattr(ledger_file, "BULK_ROWS", 3)
    states: list[bool] = []
    real = ledger_file.LedgerFile._parse_lines
    monkeypatch.setattr(ledger_file.LedgerFile, "_parse_lines",
                        lambda self, snap, first: states.append(gc.isenabled()) or real(self, snap, first))
    ledger = Ledger.in_dir(tmp_path)
    for i in range(4):
        ledger.append(make_row(f"t{i}"))
    assert len(Ledger(ledger.path).rows()) == 4
    assert states == [False] and gc.isenabled()
