"""Concurrency and restarts: several writers on one ledger, writers killed mid-write, the app killed mid-generation."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lib.history.ledger import Ledger
from lib.history.row import HistoryRow
from lib.storage.files import FileMedia
from tests.conftest import ROOT, free_port, wait_for_app
from tests.csv_helpers import split_torn_tail
from tests.reliability.conftest import PAYLOAD

WRITERS = 3
ROWS_PER_WRITER = 60  # each appends 60 rows, then updates each once: 360 writes in all


def writer(path: Path, mode: str, prefix: str, count: int) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "tests.reliability.ledger_writer", str(path), mode, prefix,
                             str(count)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def parse_strictly(path: Path) -> list[dict[str, str]]:
    """The file as plain CSV (a torn last line, which the ledger ignores and repairs, aside)."""
    whole, _torn = split_torn_tail(path.read_bytes())
    return list(csv.DictReader(io.StringIO(whole.decode("utf-8")), strict=True))


def test_three_processes_writing_at_once_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    procs = [writer(path, "both", f"w{n}", ROWS_PER_WRITER) for n in range(WRITERS)]
    reads = 0
    while any(p.poll() is None for p in procs):  # read while they write: always parseable
        if path.exists():
            rows = Ledger(path).rows()
            assert len({r.task_id for r in rows}) == len(rows)
            parse_strictly(path)
            reads += 1
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        assert out.count("\n") == 2 * ROWS_PER_WRITER
    rows = Ledger(path).rows()
    ids = [r.task_id for r in rows]
    assert sorted(ids) == sorted(f"w{n}-{i}" for n in range(WRITERS) for i in range(ROWS_PER_WRITER))
    assert all(r.state == "running" and r.notes.startswith(r.batch_id + " update") for r in rows)
    # every line parses; updates append a row's newer version, so the file holds each task id once or more
    assert len({cells["task_id"] for cells in parse_strictly(path)}) == WRITERS * ROWS_PER_WRITER
    assert reads > 0


@pytest.mark.parametrize("mode", ["append", "update"])
def test_a_writer_killed_mid_write_leaves_a_readable_ledger(mode: str, tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    ledger = Ledger(path)
    for i in range(150):
        ledger.append(HistoryRow.from_payload(f"k-{i}", PAYLOAD, origin="sandbox", batch_id="k"))
    ledger.close()
    survived = 0
    for kill_after in (3, 17, 41):  # kill at different points of the loop
        proc = writer(path, mode, "k" if mode == "update" else f"a{kill_after}", 10_000)
        for _ in range(kill_after):
            assert proc.stdout.readline(), proc.stderr.read()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        rows = Ledger(path).rows()  # parses, and the lock died with the process
        assert {f"k-{i}" for i in range(150)} <= {r.task_id for r in rows}
        assert len({r.task_id for r in rows}) == len(rows)
        survived += 1
    # the ledger still takes writes, and no temporary file is mistaken for data
    Ledger(path).append(HistoryRow.from_payload("after-kill", PAYLOAD, origin="sandbox"))
    assert Ledger(path).get("after-kill") is not None
    assert survived == 3


# ---------------------------------------------------------------- the app server (browser)

def _submit_to_app_sandbox(sandbox_port: int, data_dir: Path, count: int) -> list[str]:
    """Submit as Compose does (same lib call, same ledger), against the app's own sandbox."""
    from lib.kie.client import KieClient
    from lib.tasks.submit import submit_payload

    base = f"http://127.0.0.1:{sandbox_port}"
    client = KieClient("sandbox-demo", base, base)
    ledger = Ledger.in_dir(data_dir)
    ids = []
    for n in range(count):
        body = {**PAYLOAD, "input": {**PAYLOAD["input"], "prompt": f"Shot {n}: a lighthouse at dusk"}}
        sub = submit_payload(client, ledger, body, origin="sandbox", batch_id="b-restart")
        assert sub.error is None, sub.error
        ids.append(sub.row.task_id)
    return ids


def _open_app(browser, url: str):
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(url)
    wait_for_app(page)
    return context, page


def _wait_all_succeeded(data_dir: Path, ids: list[str], timeout_s: float = 60) -> list[HistoryRow]:
    deadline = time.monotonic() + timeout_s
    while True:
        rows = {r.task_id: r for r in Ledger.in_dir(data_dir).rows()}
        if all(rows[i].state == "succeeded" and rows[i].local_video for i in ids) or time.monotonic() > deadline:
            return [rows[i] for i in ids]
        time.sleep(0.5)  # the app's followers poll on their own schedule (2 s ticks)


@pytest.mark.browser
def test_two_browser_sessions_follow_the_same_tasks_without_duplicates(app_server_factory, browser, tmp_path) -> None:
    port = free_port()
    data = tmp_path / "data"
    server = app_server_factory(data, env={"KLING_SANDBOX_PORT": str(port), "KLING_SANDBOX_SECONDS": "2"})
    first = _open_app(browser, server.url)
    ids = _submit_to_app_sandbox(port, data, 4)
    second = _open_app(browser, server.url + "/History")
    try:
        rows = _wait_all_succeeded(data, ids)
        assert [r.state for r in rows] == ["succeeded"] * 4
        all_rows = Ledger.in_dir(data).rows()
        assert sorted(r.task_id for r in all_rows) == sorted(ids)  # none lost, none doubled
        for row in rows:
            assert FileMedia(data).video(row.task_id).read_bytes()[4:8] == b"ftyp"
        assert not list((data / "videos").glob("*.part"))
    finally:
        first[0].close()
        second[0].close()


@pytest.mark.browser
def test_app_killed_mid_generation_resumes_every_task_after_restart(app_server_factory, browser, tmp_path) -> None:
    port = free_port()
    data = tmp_path / "data"
    env = {"KLING_SANDBOX_PORT": str(port), "KLING_SANDBOX_SECONDS": "4"}
    server = app_server_factory(data, env=env)
    context, _page = _open_app(browser, server.url)  # starts the app's sandbox
    ids = _submit_to_app_sandbox(port, data, 3)
    context.close()
    server.stop(kill=True)  # kill -9 while every task is still generating
    assert {r.state for r in Ledger.in_dir(data).rows()} <= {"queued", "running"}
    state = json.loads((data / "sandbox" / "sandbox_state.json").read_text())
    assert sorted(state["tasks"]) == sorted(ids)

    restarted = app_server_factory(data, env=env)
    context, _page = _open_app(browser, restarted.url)
    try:
        rows = _wait_all_succeeded(data, ids)
        assert [r.state for r in rows] == ["succeeded"] * 3, [(r.task_id, r.state) for r in rows]
        assert sorted(r.task_id for r in Ledger.in_dir(data).rows()) == sorted(ids)
        assert all(FileMedia(data).video(r.task_id).read_bytes()[4:8] == b"ftyp" for r in rows)
        state = json.loads((data / "sandbox" / "sandbox_state.json").read_text())
        assert len(state["tasks"]) == 3 and not (data / "sandbox" / "sandbox_state.corrupt").exists()
    finally:
        context.close()
