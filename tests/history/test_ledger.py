"""Tests for lib.history.ledger: the CSV ledger, its crash safety, export/import and recipes."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import multiprocessing
import signal
import subprocess
import sys
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lib.history.errors import DuplicateTaskError, HistoryFileError, UnknownTaskError
from lib.history.ledger import Ledger
from lib.history.row import COLUMNS, SCHEMA_VERSION, HistoryRow
from lib.history.transfer import ImportReport, export_csv, import_csv, recipe_json
from lib.kie.models import TaskState
from tests.csv_helpers import split_torn_tail

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
NASTY = ["=1+1", "+SUM(A1)", "-5", "@x", "\tx", "\rx", "'quoted", "''double", "'", "ünïcødé 🎬 漢字",
         "line1\nline2", "a,b,c", 'say "hi"', "\r\n", " lead space", ""]


def make_row(task_id: str = "t1", **fields: object) -> HistoryRow:
    base: dict[str, object] = {"task_id": task_id, "origin": "sandbox", "created_at": T0, "prompt": "A fox"}
    base.update(fields)
    return HistoryRow(**base)  # type: ignore[arg-type]


def full_row(task_id: str = "full", text: str = "x") -> HistoryRow:
    return make_row(
        task_id, batch_id="b-1", updated_at=T0 + timedelta(seconds=5), origin="live", state="succeeded",
        prompt=text, shots_json=json.dumps([{"prompt": text, "duration": 3}]), duration=3, mode="pro",
        sound=True, multi_shots=True, elements=("cat", "dog"), aspect_ratio="9:16", estimated_credits=81,
        credits_consumed=80.5, result_url="https://tempfile.aiquickdraw.com/r.mp4", local_video="videos/full.mp4",
        fail_code="", fail_msg=text, payload_json=json.dumps({"model": "kling-3.0/video", "input": {"prompt": text}}),
        rating=4, notes=text, last_checked_at=T0 + timedelta(minutes=1), stale=True,
    )


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return Ledger.in_dir(tmp_path)


# -- HistoryRow -------------------------------------------------------------------------------------
@pytest.mark.parametrize("text", NASTY)
def test_row_csv_dict_round_trip(text: str) -> None:
    row = full_row(text=text)
    data = row.to_csv_dict()
    assert list(data) == list(COLUMNS)
    assert data["schema_version"] == str(SCHEMA_VERSION)
    assert HistoryRow.from_csv_dict(data) == row


@pytest.mark.parametrize(
    ("column", "text", "expected"),
    [
        ("sound", "TRUE", True), ("sound", " yes ", True), ("sound", "0", False), ("sound", "", False),
        ("duration", "5.0", 5), ("duration", " 7 ", 7), ("duration", "", None), ("rating", "", 0),
        ("state", " Succeeded ", "succeeded"), ("origin", "LIVE", "live"), ("elements", " a , b ,", ("a", "b")),
        ("credits_consumed", "12.25", 12.25), ("created_at", "2026-03-01 12:00:00", datetime(2026, 3, 1, 12, tzinfo=UTC)),
        ("created_at", "2026-03-01T13:00:00+01:00", datetime(2026, 3, 1, 12, tzinfo=UTC)),
    ],
)
def test_from_csv_dict_is_tolerant(column: str, text: str, expected: object) -> None:
    data = make_row().to_csv_dict() | {column: text}
    assert getattr(HistoryRow.from_csv_dict(data), column) == expected


@pytest.mark.parametrize(
    ("column", "text"),
    [("duration", "abc"), ("duration", "2.5"), ("rating", "7"), ("state", "done"), ("origin", "cloud"),
     ("created_at", ""), ("created_at", "yesterday"), ("sound", "maybe"), ("task_id", "  "), ("schema_version", "2")],
)
def test_from_csv_dict_rejects_bad_values_naming_the_column(column: str, text: str) -> None:
    data = make_row().to_csv_dict() | {column: text}
    with pytest.raises(ValueError, match=column):
        HistoryRow.from_csv_dict(data)


def test_row_normalises_times_and_accepts_enum_state() -> None:
    row = make_row(created_at=datetime(2026, 3, 1, 12), state=TaskState.RUNNING)
    assert row.created_at.tzinfo is UTC and row.updated_at == row.created_at
    assert row.state == "running" and type(row.state) is str


@pytest.mark.parametrize("state", list(TaskState))
def test_enum_state_is_written_by_value_and_reads_back(ledger: Ledger, state: TaskState) -> None:
    # Regression: TaskState is a str, so a str-only check kept the enum and the file said "TaskState.SUCCEEDED".
    ledger.append(make_row("new", state=state))
    ledger.append(make_row("changed"))
    ledger.update("changed", state=state)
    cells = list(csv.DictReader(io.StringIO(ledger.path.read_text("utf-8"))))
    newest = {c["task_id"]: c["state"] for c in cells}  # an update appends the row's newest version
    assert newest == {"new": state.value, "changed": state.value}
    fresh = Ledger(ledger.path).rows()
    assert [r.state for r in fresh] == [state.value, state.value]
    assert all(r.finished is state.finished for r in fresh)


def test_from_payload_extracts_settings_and_drops_secrets() -> None:
    payload = {"model": "kling-3.0/video", "callBackUrl": "https://me/cb?token=s3cret", "input": {
        "prompt": "", "multi_shots": True, "multi_prompt": [{"prompt": "@cat runs", "duration": 5}],
        "duration": "5", "mode": "std", "sound": True, "aspect_ratio": "16:9",
        "kling_elements": [{"name": "cat", "description": "a cat", "element_input_urls": ["u1", "u2"]}]}}
    row = HistoryRow.from_payload("t9", payload, origin="live", estimated_credits=100, batch_id="b")
    assert (row.duration, row.mode, row.sound, row.multi_shots, row.elements) == (5, "std", True, True, ("cat",))
    assert row.shots == [{"prompt": "@cat runs", "duration": 5}]
    assert row.payload["input"]["kling_elements"][0]["name"] == "cat"
    assert "s3cret" not in row.payload_json and "callBackUrl" not in row.payload_json


def test_recipe_json_has_payload_settings_result_and_no_secret() -> None:
    secret_payload = {"model": "kling-3.0/video", "apiKey": "sk-live-123", "headers": {"Authorization": "Bearer zz"},
                      "input": {"prompt": "A fox", "mode": "pro"}, "note": "Bearer abc"}
    row = dataclasses.replace(full_row(), payload_json=json.dumps(secret_payload))
    text = recipe_json(row)
    recipe = json.loads(text)
    assert recipe["payload"]["input"] == {"prompt": "A fox", "mode": "pro"}
    assert recipe["settings"]["elements"] == ["cat", "dog"] and recipe["result"]["credits_consumed"] == 80.5
    for secret in ("sk-live-123", "Bearer", "apiKey", "Authorization"):
        assert secret not in text


# -- Ledger basics ----------------------------------------------------------------------------------
def test_append_get_update_delete(ledger: Ledger) -> None:
    assert ledger.rows() == [] and ledger.get("t1") is None and ledger.mtime_signature().size == 0
    ledger.append(make_row("t1"))
    ledger.append(make_row("t2", state="running"))
    ledger.append(make_row("t3", state="unknown"))
    assert [r.task_id for r in ledger.rows()] == ["t1", "t2", "t3"]
    new = ledger.update("t2", state="succeeded", result_url="https://x/y.mp4", rating=5)
    assert new.state == "succeeded" and new.updated_at > T0
    fresh = Ledger(ledger.path)  # another process's view, read from disk
    assert fresh.get("t2") == new
    assert [r.task_id for r in fresh.unfinished()] == ["t1", "t3"]
    assert ledger.delete(["t1", "nope"]) == 1
    assert [r.task_id for r in Ledger(ledger.path).rows()] == ["t2", "t3"]


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda lg: lg.append(make_row("t1")), DuplicateTaskError),
        (lambda lg: lg.update("missing", state="failed"), UnknownTaskError),
        (lambda lg: lg.update("t1", colour="red"), ValueError),
        (lambda lg: lg.update("t1", task_id="t2"), ValueError),
        (lambda lg: lg.update("t1", rating=9), ValueError),
        (lambda lg: lg.update("t1", state="exploded"), ValueError),
    ],
)
def test_bad_writes_raise_and_change_nothing(ledger: Ledger, call: object, error: type[Exception]) -> None:
    ledger.append(make_row("t1"))
    before = ledger.path.read_bytes()
    with pytest.raises(error):
        call(ledger)  # type: ignore[operator]
    assert ledger.path.read_bytes() == before


def test_file_is_plain_csv_for_pandas_and_spreadsheets(ledger: Ledger) -> None:
    import pandas as pd

    ledger.append(full_row("a", text="multi\nline, with \"quotes\""))
    ledger.append(make_row("b"))
    frame = pd.read_csv(ledger.path, keep_default_na=False)
    assert list(frame.columns) == list(COLUMNS)
    assert frame["schema_version"].tolist() == [1, 1]
    assert frame["prompt"][0] == "multi\nline, with \"quotes\""


def test_mtime_signature_changes_with_every_write(ledger: Ledger) -> None:
    ledger.append(make_row("t1"))
    first = ledger.mtime_signature()
    ledger.rows()
    assert ledger.mtime_signature() == first
    ledger.update("t1", rating=3)
    second = ledger.mtime_signature()
    assert second != first
    ledger.append(make_row("t2"))
    assert ledger.mtime_signature() != second


def test_cached_reader_sees_other_writers(ledger: Ledger) -> None:
    other = Ledger(ledger.path)
    ledger.append(make_row("t1"))
    assert [r.task_id for r in other.rows()] == ["t1"]
    ledger.append(make_row("t2"))  # an append: the other reader reads only the new bytes
    ledger.update("t1", notes="from elsewhere")  # a rewrite: a new file
    rows = other.rows()
    assert [r.task_id for r in rows] == ["t1", "t2"] and rows[0].notes == "from elsewhere"
    with pytest.raises(DuplicateTaskError):
        other.append(make_row("t2"))


# -- concurrency ------------------------------------------------------------------------------------
def test_threads_lose_no_row(tmp_path: Path) -> None:
    shared = Ledger.in_dir(tmp_path)

    def work(n: int) -> None:
        own = shared if n % 2 else Ledger.in_dir(tmp_path)
        for i in range(25):
            own.append(make_row(f"th{n}-{i}"))
            own.update(f"th{n}-{i}", state="succeeded", rating=n % 6)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rows = Ledger.in_dir(tmp_path).rows()
    assert len(rows) == 200 and len({r.task_id for r in rows}) == 200
    assert all(r.state == "succeeded" and r.rating == int(r.task_id[2]) % 6 for r in rows)


def _process_writer(data_dir: str, n: int) -> None:
    ledger = Ledger.in_dir(data_dir)
    for i in range(50):
        ledger.append(make_row(f"p{n}-{i}", state="running"))
        ledger.update(f"p{n}-{i}", state="succeeded", notes=f"by {n}")


def test_processes_lose_no_row(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_process_writer, args=(str(tmp_path), n)) for n in range(3)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    rows = Ledger.in_dir(tmp_path).rows()
    assert len(rows) == 150 and len({r.task_id for r in rows}) == 150
    assert all(r.state == "succeeded" and r.notes == f"by {r.task_id[1]}" for r in rows)


# -- crash safety -----------------------------------------------------------------------------------
TORN_WRITER = """
import os, sys
from datetime import UTC, datetime
from lib.history.ledger import HistoryRow, Ledger
ledger = Ledger(sys.argv[1])
for i in range(3):
    ledger.append(HistoryRow(task_id=f"ok{i}", origin="live", created_at=datetime.now(UTC), prompt="a\\nb"))
line = b'1,torn,b,2026-03-01T12:00:00Z,2026-03-01T12:00:00Z,live,kling-3.0/video,queued,"half a prompt\\nstill'
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
os.write(fd, line[: int(sys.argv[2])])
os._exit(1)
"""


@pytest.mark.parametrize("cut", [5, 40, 90, 120])
def test_writer_killed_mid_append_leaves_a_readable_file(tmp_path: Path, cut: int, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "history.csv"
    result = subprocess.run([sys.executable, "-c", TORN_WRITER, str(path), str(cut)], cwd=ROOT, timeout=60)
    assert result.returncode == 1
    ledger = Ledger(path)
    with caplog.at_level(logging.WARNING, logger="lib.history.ledger"):
        assert [r.task_id for r in ledger.rows()] == ["ok0", "ok1", "ok2"]
    assert "unfinished line" in caplog.text
    torn_bytes = path.read_bytes()
    ledger.append(make_row("after"))  # repairs: backs the file up, drops the torn tail, appends
    backups = list(tmp_path.glob("history.csv.bak-*"))
    assert len(backups) == 1 and backups[0].read_bytes() == torn_bytes
    assert [r.task_id for r in Ledger(path).rows()] == ["ok0", "ok1", "ok2", "after"]


def test_split_torn_tail_respects_quoted_newlines() -> None:
    good = b'h1,h2\r\n1,"a\r\nb"\r\n'
    assert split_torn_tail(good) == (good, b"")
    assert split_torn_tail(good + b'2,"c\r\nd') == (good, b'2,"c\r\nd')
    assert split_torn_tail(good + b"2,x") == (good, b"2,x")


REWRITER = """
import sys
from lib.history.ledger import Ledger
ledger = Ledger(sys.argv[1])
ledger.update("r0", notes="0")
print("ready", flush=True)
n = 0
while True:
    n += 1
    ledger.update("r0", notes=str(n))
"""


def test_writer_killed_during_rewrites_leaves_a_readable_file(tmp_path: Path) -> None:
    ledger = Ledger.in_dir(tmp_path)
    for i in range(2000):
        ledger.append(full_row(f"r{i}", text="some prompt " * 10))
    child = subprocess.Popen([sys.executable, "-c", REWRITER, str(ledger.path)], cwd=ROOT, stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == b"ready"
        for _ in range(3):
            ledger.update("r1", rating=2)  # contend for the lock while the child rewrites
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    rows = Ledger(ledger.path).rows()
    assert len(rows) == 2000 and rows[1].rating == 2 and rows[0].notes.isdigit()


BROKEN_HEADER = [
    (b"\xff\xfe" + "\u00e9t\u00e9,x\n".encode("latin-1"), "not UTF-8"),
    (b"task_id,state\r\nt1,queued\r\n", "lacks the columns"),
]
BROKEN_ROW = [
    (",".join(COLUMNS).encode() + b"\r\n1,t1,too,few\r\n", "has 4 cells"),
    (",".join(COLUMNS).encode() + b'\r\n1,t1,"bad"quote' + b",x" * 26 + b"\r\n", "not valid CSV"),
    (",".join(COLUMNS).encode() + b"\r\n1,t1,\xff" + b",x" * 26 + b"\r\n", "not UTF-8"),
]


@pytest.mark.parametrize(("content", "why"), BROKEN_HEADER)
def test_broken_file_raises_a_clear_error_and_is_never_overwritten(tmp_path: Path, content: bytes, why: str) -> None:
    path = tmp_path / "history.csv"
    path.write_bytes(content)
    ledger = Ledger(path)
    for action in (ledger.rows, lambda: ledger.append(make_row("new")), lambda: ledger.update("t1", rating=1),
                   lambda: ledger.merge(import_csv(export_csv([make_row("m")])))):
        with pytest.raises(HistoryFileError, match=why) as info:
            action()
        assert str(path) in str(info.value) and "Fix:" in str(info.value)
    assert path.read_bytes() == content


@pytest.mark.parametrize(("content", "why"), BROKEN_ROW)
def test_a_bad_row_is_skipped_and_reported_never_breaks_reading(tmp_path: Path, content: bytes, why: str) -> None:
    path = tmp_path / "history.csv"
    path.write_bytes(content)
    ledger = Ledger(path)
    assert ledger.rows() == [] and ledger.unfinished() == []
    ((line, reason),) = ledger.unreadable()
    assert line == 2 and why in reason
    with pytest.raises(UnknownTaskError):
        ledger.update("t1", rating=1)
    assert path.read_bytes() == content
    ledger.append(make_row("paid-task"))  # a paid task id is recorded even so; the bad line stays for the user
    assert path.read_bytes().startswith(content)
    assert ledger.get("paid-task") == make_row("paid-task")


def test_bad_value_mid_file_names_the_line(ledger: Ledger) -> None:
    ledger.append(make_row("t1"))
    ledger.append(make_row("t2"))
    text = ledger.path.read_text(encoding="utf-8").replace("sandbox", "cloud", 1)
    ledger.path.write_text(text, encoding="utf-8", newline="")
    again = Ledger(ledger.path)
    assert [r.task_id for r in again.rows()] == ["t2"]
    assert again.unreadable() == [(2, "origin: 'cloud' is not one of live, sandbox")]


# -- export / import --------------------------------------------------------------------------------
@pytest.mark.parametrize("text", NASTY)
def test_export_import_round_trip_is_exact(text: str) -> None:
    rows = [full_row("a", text=text), make_row("b", prompt=text, notes=text, batch_id=text)]
    data = export_csv(rows)
    report = import_csv(data, now=NOW_IMPORT)
    assert report.ok and report.bad_rows == [] and report.duplicates == []
    assert report.rows_ok == [as_imported(r) for r in rows]


NOW_IMPORT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def as_imported(row: HistoryRow) -> HistoryRow:
    """What an import keeps of a row: everything but its file location, marked imported."""
    return replace(row, local_video="", imported_at=NOW_IMPORT)


@pytest.mark.parametrize("text", ["=1+1", "+SUM(A1)", "-5", "@x", "\tx", "\rx"])
def test_export_neutralises_formula_cells(text: str) -> None:
    data = export_csv([make_row("a", prompt=text)])
    assert data.startswith(b"\xef\xbb\xbf")
    cells = next(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert cells["prompt"] == "'" + text


def _export_with(rows: list[HistoryRow], edit: object) -> bytes:
    records = list(csv.reader(io.StringIO(export_csv(rows).decode("utf-8-sig"), newline="")))
    edit(records)  # type: ignore[operator]
    buffer = io.StringIO()
    csv.writer(buffer).writerows(records)
    return buffer.getvalue().encode("utf-8")


def _drop_columns(records: list[list[str]], names: tuple[str, ...]) -> None:
    keep = [i for i, name in enumerate(records[0]) if name not in names]
    records[:] = [[r[i] for i in keep] for r in records]


def test_import_missing_columns_fails_naming_them() -> None:
    data = _export_with([make_row("a")], lambda recs: _drop_columns(recs, ("state", "prompt")))
    report = import_csv(data)
    assert not report.ok and report.missing_columns == ["state", "prompt"] and report.rows_ok == []
    assert "state" in report.summary() and "prompt" in report.summary()


def test_import_ignores_extra_columns_with_a_note() -> None:
    def add(recs: list[list[str]]) -> None:
        recs[0].append("my_tag")
        recs[1].append("keep me")

    report = import_csv(_export_with([make_row("a")], add))
    assert report.ok and report.extra_columns == ["my_tag"] and [r.task_id for r in report.rows_ok] == ["a"]
    assert "my_tag" in report.summary()


def test_import_reports_bad_rows_and_duplicates() -> None:
    def spoil(recs: list[list[str]]) -> None:
        header = recs[0]
        recs[2][header.index("duration")] = "five"
        recs[3][header.index("rating")] = "9"
        recs[4] = recs[4][:5]
        recs.append(list(recs[1]))

    rows = [make_row(f"t{i}") for i in range(5)]
    report = import_csv(_export_with(rows, spoil))
    assert [r.task_id for r in report.rows_ok] == ["t0", "t4"]
    assert [line for line, _ in report.bad_rows] == [3, 4, 5]
    assert "duration" in report.bad_rows[0][1] and "rating" in report.bad_rows[1][1]
    assert "cells" in report.bad_rows[2][1] and report.duplicates == ["t0"]
    assert "3 bad row(s)" in report.summary()


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_import_with_or_without_bom(bom: bytes) -> None:
    data = export_csv([make_row("a")]).removeprefix(b"\xef\xbb\xbf")
    assert [r.task_id for r in import_csv(bom + data).rows_ok] == ["a"]


def test_import_caps_huge_cells() -> None:
    data = export_csv([make_row("big", prompt="x" * 2_000_000), make_row("small")])
    report = import_csv(data)
    assert [r.task_id for r in report.rows_ok] == ["small"]
    assert report.bad_rows[0][0] == 2 and "2.0 MB" in report.bad_rows[0][1]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary file"),
        ("prompt;état\nun été,x\n".encode("latin-1"), "not UTF-8"),
        (b"hello world, this is not a history file\n", "missing column"),
        (b'{"json": "object"}', "missing column"),
    ],
)
def test_import_unreadable_files_explain_themselves(data: bytes, message: str) -> None:
    report = import_csv(data)
    assert not report.ok and report.rows_ok == [] and message in (report.error or "")
    assert report.summary() == report.error


def test_merge_adds_new_rows_and_never_changes_existing(ledger: Ledger) -> None:
    ledger.append(make_row("keep", rating=5, notes="mine"))
    report = import_csv(export_csv([make_row("keep", rating=1, notes="theirs"), make_row("new1"), make_row("new2")]))
    result = ledger.merge(report)
    assert result.added == ("new1", "new2") and result.skipped == ("keep",)
    added, skipped = ledger.merge(report)
    assert (added, skipped) == ((), ("keep", "new1", "new2"))
    rows = Ledger(ledger.path).rows()
    assert [r.task_id for r in rows] == ["keep", "new1", "new2"] and rows[0].notes == "mine"
    assert ledger.merge(ImportReport(error="bad")) == ((), ())


def test_merge_into_an_empty_history(tmp_path: Path) -> None:
    ledger = Ledger.in_dir(tmp_path / "new")
    rows = [full_row("a", text="=x"), make_row("b")]
    assert ledger.merge(import_csv(export_csv(rows), now=NOW_IMPORT)).added == ("a", "b")
    assert Ledger(ledger.path).rows() == [as_imported(r) for r in rows]
