"""The server-side follower: which rows it queries, how often, and that it archives without any browser."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from lib.history.row import HistoryRow
from lib.kie.client import KieClient
from lib.storage.files import open_file_storage
from lib.tasks.submit import submit_payload
from lib.tasks.worker import SAFETY_EVERY_S, SAFETY_FIRST_S, Follower, safety_due

PAYLOAD = {"model": "kling-3.0/video", "input": {"prompt": "a paper boat", "duration": "5", "mode": "std",
                                                 "sound": False, "aspect_ratio": "16:9", "multi_shots": False}}


def _follower(tmp_path: Path, client: KieClient, **options: object) -> Follower:
    storage = open_file_storage(tmp_path)
    return Follower(storage, lambda row: client if row.origin == "sandbox" else None, allow_private=True,
                    **options)  # type: ignore[arg-type]


def test_a_task_is_followed_to_its_archived_video_with_no_browser(tmp_path: Path, sandbox, client) -> None:
    follower = _follower(tmp_path, client)
    row = submit_payload(client, follower.storage.ledger, PAYLOAD, origin="sandbox", batch_id="b").row
    result = follower.run_once()
    assert result.finished == 1 and not result.errors
    assert follower.storage.ledger.get(row.task_id).state == "succeeded"
    assert follower.storage.media.video(row.task_id).read_bytes()[4:8] == b"ftyp"
    assert follower.run_once().finished == 0 and follower.due() == []  # nothing left: no more queries


def test_it_starts_from_the_ledger_so_a_restart_loses_nothing(tmp_path: Path, sandbox, client) -> None:
    first = _follower(tmp_path, client)
    row = submit_payload(client, first.storage.ledger, PAYLOAD, origin="sandbox", batch_id="b").row
    again = _follower(tmp_path, client)  # a new process: it knows only what the ledger says
    assert [r.task_id for r, _ in again.due()] == [row.task_id]
    assert again.run_once().finished == 1


def test_imported_unknown_and_keyless_rows_are_never_queried(tmp_path: Path, sandbox, client) -> None:
    follower = _follower(tmp_path, client)
    ledger = follower.storage.ledger
    base = HistoryRow.from_payload("t-live", PAYLOAD, origin="live", state="running", account="someone-else")
    ledger.append(base)  # a live task made with a key typed in a browser: waits for that key
    ledger.append(replace(base, task_id="t-imported", origin="sandbox", imported_at=base.created_at))
    ledger.append(replace(base, task_id="unknown-1", origin="sandbox", state="unknown"))
    assert follower.due() == [] and follower.run_once().finished == 0 and follower.queries == 0


def test_with_callbacks_on_it_polls_only_on_the_slow_safety_schedule(tmp_path: Path, sandbox, client) -> None:
    follower = _follower(tmp_path, client, callbacks_on=True)
    row = submit_payload(client, follower.storage.ledger, PAYLOAD, origin="sandbox", batch_id="b").row
    created = row.created_at.timestamp()
    assert follower.due(created + 5) == []  # no query right away: the callback is expected
    assert [r.task_id for r, _ in follower.due(created + SAFETY_FIRST_S)] == [row.task_id]
    follower.hint(row.task_id)  # a callback arrived: confirm it at once with one recordInfo
    assert [r.task_id for r, _ in follower.due(created + 5)] == [row.task_id]
    assert follower.run_once(created + 5).finished == 1 and follower.queries == 1


def test_safety_schedule() -> None:
    row = HistoryRow.from_payload("t", PAYLOAD, origin="sandbox")
    start = row.created_at.timestamp()
    assert not safety_due(row, start + SAFETY_FIRST_S - 1) and safety_due(row, start + SAFETY_FIRST_S)
    checked = replace(row, last_checked_at=row.created_at + timedelta(seconds=70))
    assert not safety_due(checked, start + 70 + SAFETY_EVERY_S - 1) and safety_due(checked, start + 70 + SAFETY_EVERY_S)


def test_a_failing_tick_never_ends_the_thread(tmp_path: Path, sandbox, client) -> None:
    follower = _follower(tmp_path, client, tick_s=0.01)
    calls = []

    def broken(now: float | None = None) -> None:
        calls.append(now)
        raise RuntimeError("disk on fire")

    follower.run_once = broken  # type: ignore[method-assign]
    follower.start()
    try:
        for _ in range(200):
            if len(calls) >= 3:
                break
            follower._wake.wait(0.01)
    finally:
        follower.stop()
    assert len(calls) >= 3
