"""Plan (render, check, price before sending) and the resumable runner against the sandbox."""

from __future__ import annotations

import csv
import io
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from lib.batch.background import resume_unfinished, server_senders
from lib.batch.manifest import manifest_csv
from lib.batch.plan import plan_batch
from lib.batch.rows import rows_from_csv
from lib.batch.runner import (
    CRASHED_MSG,
    Sender,
    batch_pace,
    create_batch,
    list_batches,
    load_batch,
    run_batch,
    save_batch,
)
from lib.batch.template import make_template
from lib.storage.files import open_file_storage
from lib.tasks.submit import RateLimiter

TEMPLATE = make_template({"compose_prompt": "A {{animal}} crosses {{place}}, {sunny|rainy} light",
                          "compose_duration": 5})


def _csv(rows: int = 20, bad: dict[int, str] | None = None) -> bytes:
    lines = ["animal,place,mode"] + [f"animal{i},town{i}," for i in range(1, rows + 1)]
    for number, line in (bad or {}).items():
        lines[number] = line
    return ("\n".join(lines) + "\n").encode()


def _plan(data: bytes):
    return plan_batch(TEMPLATE, rows_from_csv(data, TEMPLATE.variables, []), [])


def _sender(client, storage) -> Sender:
    return Sender(client, storage.ledger, storage.library, RateLimiter(clock=lambda: 0.0, sleep=lambda s: None))


def test_every_row_is_rendered_checked_and_priced_and_bad_rows_are_skipped() -> None:
    plan = _plan(_csv(bad={4: "animal4,town4,ultra", 9: ","}))
    assert len(plan.jobs) == 20 and len(plan.sendable) == 18 and plan.rows_with_errors == [4, 9]
    assert plan.credits == 18 * 70
    assert plan.jobs[0].prompt == "A animal1 crosses town1, sunny light"
    assert plan.jobs[1].prompt.endswith("rainy light")
    assert [p.text() for p in plan.jobs[3].errors] == ["column mode: 'ultra' is not a mode: write std, pro or 4K."]


def test_rules_problems_sit_at_their_field() -> None:
    long = make_template({"compose_prompt": "{{animal}} " + "x" * 2600})
    plan = plan_batch(long, rows_from_csv(b"animal\ncat\n", ["animal"], []), [])
    assert plan.jobs[0].errors and plan.jobs[0].errors[0].where == "prompt"


def test_a_batch_sends_each_good_row_once_and_the_manifest_is_spreadsheet_safe(tmp_path: Path, client,
                                                                                 sandbox) -> None:
    storage = open_file_storage(tmp_path / "data")
    plan = _plan(_csv(bad={4: "animal4,town4,ultra", 9: ","}, rows=20).replace(b"animal1,", b"=cmd(),"))
    batch = create_batch(tmp_path / "data", plan, origin="sandbox", account="")
    done = run_batch(tmp_path / "data", batch.batch_id, _sender(client, storage))
    assert done.status == "done" and done.count("sent") == 18 and done.count("skipped") == 2
    assert len(sandbox.backend.tasks) == 18
    again = run_batch(tmp_path / "data", batch.batch_id, _sender(client, storage))  # nothing left: nothing sent
    assert again.count("sent") == 18 and len(sandbox.backend.tasks) == 18
    lines = list(csv.reader(io.StringIO(manifest_csv(done, storage.ledger).decode("utf-8-sig"))))
    assert lines[0] == ["row", "take", "animal", "place", "prompt", "task_id", "state", "batch_state", "credits",
                        "video_link", "message"]
    assert lines[1][2] == "'=cmd()" and lines[1][5].startswith("task_")
    assert lines[4][7] == "skipped" and lines[4][5] == ""


def test_a_row_marked_before_a_crash_is_matched_to_the_ledger_or_left_unknown_never_resent(
        tmp_path: Path, client, sandbox) -> None:
    data = tmp_path / "data"
    storage = open_file_storage(data)
    batch = create_batch(data, _plan(_csv(rows=5)), origin="sandbox", account="")
    stop = threading.Event()
    limiter = RateLimiter(limit=100, clock=lambda: 0.0, sleep=lambda s: None)
    calls = {"n": 0}
    original = limiter.wait_turn

    def wait_turn() -> float:
        calls["n"] += 1
        if calls["n"] == 3:
            stop.set()
        return original()

    limiter.wait_turn = wait_turn  # type: ignore[method-assign]
    run_batch(data, batch.batch_id, Sender(client, storage.ledger, storage.library, limiter), stop)
    saved = load_batch(data, batch.batch_id)
    assert saved.count("sent") == 3 and saved.count("planned") == 2
    # simulate two crashes: row 4 after KIE took it (ledger row written), row 5 before anything was sent
    sent_row4 = client.create_task(saved.jobs[3].payload)
    from lib.history.row import HistoryRow
    storage.ledger.append(HistoryRow.from_payload(sent_row4, saved.jobs[3].payload, origin="sandbox",
                                                  state="queued", batch_id=batch.batch_id))
    jobs = list(saved.jobs)
    jobs[3] = replace(jobs[3], state="unknown")
    jobs[4] = replace(jobs[4], state="unknown")
    save_batch(data, replace(saved, jobs=tuple(jobs), status="running"))
    assert len(sandbox.backend.tasks) == 4
    resumed = run_batch(data, batch.batch_id, _sender(client, storage))
    assert len(sandbox.backend.tasks) == 4  # nothing was sent again
    assert resumed.jobs[3].state == "sent" and resumed.jobs[3].task_id == sent_row4
    assert resumed.jobs[4].state == "unknown" and resumed.jobs[4].message == CRASHED_MSG


def test_insufficient_credits_pauses_the_batch_with_the_row_still_planned(tmp_path: Path, client, sandbox) -> None:
    data = tmp_path / "data"
    storage = open_file_storage(data)
    sandbox.backend.configure(credits="150")
    batch = create_batch(data, _plan(_csv(rows=4)), origin="sandbox", account="")
    paused = run_batch(data, batch.batch_id, _sender(client, storage))
    assert paused.status == "paused" and paused.count("sent") == 2 and paused.count("planned") == 2
    assert "row 3" in paused.note
    assert resume_unfinished(data, lambda b: None) == []  # paused batches wait for a person


def test_the_server_resumes_running_batches_only_for_the_client_that_may_send_them(tmp_path: Path, client,
                                                                                     sandbox) -> None:
    data = tmp_path / "data"
    storage = open_file_storage(data)
    batch = create_batch(data, _plan(_csv(rows=3)), origin="sandbox", account="")
    live = create_batch(data, _plan(_csv(rows=2)), origin="live", account="someone-else")
    sender_for = server_senders(storage.ledger, storage.library, client, None)
    assert sender_for(load_batch(data, live.batch_id)) is None
    assert resume_unfinished(data, sender_for) == [batch.batch_id]
    for _ in range(200):
        if load_batch(data, batch.batch_id).status == "done":
            break
        threading.Event().wait(0.05)
    assert load_batch(data, batch.batch_id).count("sent") == 3
    assert {b.batch_id for b in list_batches(data)} == {batch.batch_id, live.batch_id}


def test_an_unreadable_batch_file_is_skipped(tmp_path: Path) -> None:
    folder = tmp_path / "batches"
    folder.mkdir()
    (folder / "b-0123456789.json").write_text("{not json")
    (folder / "../evil.json").write_text("{}")
    assert list_batches(tmp_path) == []


@pytest.mark.parametrize(("spec", "limit"), [("", None), ("3/2", 3), ("nonsense", None)])
def test_the_batch_pace_comes_from_kling_batch_rate(spec: str, limit: int | None) -> None:
    pace = batch_pace({"KLING_BATCH_RATE": spec})
    assert (pace.limit if pace else None) == limit
