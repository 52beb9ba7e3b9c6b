"""Ledger.update_many and the follower's tick: every answer of a tick recorded in one write and one fsync."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lib.history.errors import UnknownTaskError
from lib.history.ledger import Ledger
from lib.kie.errors import KieError
from lib.kie.models import TaskRecord, TaskState
from lib.storage.files import FileMedia
from lib.tasks.follow import follow_tick
from tests.history.test_ledger import make_row


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    ledger = Ledger.in_dir(tmp_path)
    for i in range(4):
        ledger.append(make_row(f"t{i}", state="running"))
    return ledger


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = os.fsync

    def counting(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr("lib.history.ledger_file.os.fsync", counting)
    return calls


def test_update_many_writes_every_row_in_one_fsync(ledger: Ledger, fsyncs: list[int]) -> None:
    new = ledger.update_many({"t0": {"state": "succeeded"}, "t2": {"rating": 3, "notes": "ok"}})
    assert [r.task_id for r in new] == ["t0", "t2"] and new[0].state == "succeeded" and new[1].rating == 3
    assert len(fsyncs) == 1
    again = Ledger(ledger.path)
    assert again.get("t0") == new[0] and again.get("t2") == new[1]
    assert [r.task_id for r in again.rows()] == ["t0", "t1", "t2", "t3"]
    assert [r.task_id for r in again.unfinished()] == ["t1", "t2", "t3"]


def test_update_many_with_an_unknown_id_changes_nothing(ledger: Ledger) -> None:
    before = ledger.path.read_bytes()
    with pytest.raises(UnknownTaskError, match="nope"):
        ledger.update_many({"t0": {"state": "succeeded"}, "nope": {"notes": "x"}})
    with pytest.raises(ValueError, match="rating"):
        ledger.update_many({"t0": {"state": "succeeded"}, "t1": {"rating": 9}})
    assert ledger.path.read_bytes() == before and ledger.update_many({}) == []


def test_update_many_repairs_a_torn_tail(ledger: Ledger) -> None:
    with ledger.path.open("ab") as fh:
        fh.write(b'1,t9,,2026-03-01T12:00:00Z,,sandbox,kling-3.0/video,running,"half a prom')
    ledger.update_many({"t1": {"notes": "one"}, "t3": {"notes": "three"}})
    again = Ledger(ledger.path)
    assert [r.notes for r in again.rows()] == ["", "one", "", "three"]
    assert not again.path.read_bytes().endswith(b"prom") and list(ledger.path.parent.glob("history.csv.bak-*"))


class _Kie:
    """Answers recordInfo from a table; a task id missing from it fails like a dropped connection."""

    def __init__(self, states: dict[str, TaskState]) -> None:
        self.states, self.asked = states, []

    def get_task(self, task_id: str) -> TaskRecord:
        self.asked.append(task_id)
        if task_id not in self.states:
            raise KieError("connection dropped", "retry")
        return TaskRecord(task_id, self.states[task_id])


def test_a_follow_tick_records_all_answers_in_one_fsync(ledger: Ledger, fsyncs: list[int], tmp_path: Path) -> None:
    kie = _Kie({"t0": TaskState.RUNNING, "t1": TaskState.FAILED, "t3": TaskState.RUNNING})
    result = follow_tick(kie, ledger, FileMedia(tmp_path), ledger.unfinished(),  # type: ignore[arg-type]
                         origin="sandbox", allow_private=False)
    assert kie.asked == ["t0", "t1", "t2", "t3"] and len(fsyncs) == 1
    assert result.finished == 1 and [task_id for task_id, _ in result.errors] == ["t2"]
    rows = {r.task_id: r for r in Ledger(ledger.path).rows()}
    assert rows["t1"].state == "failed" and rows["t2"].state == "running"
    assert all(r.last_checked_at is not None for r in rows.values())
    assert [r.task_id for r in ledger.unfinished()] == ["t0", "t2", "t3"]
