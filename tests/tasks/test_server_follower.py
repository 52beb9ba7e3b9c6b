"""Results arrive with no tab open: the real server (`streamlit run streamlit_app.py`) follows and archives
tasks by itself, survives kill -9, and with callbacks on confirms each callback with one recordInfo."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from lib.history.ledger import Ledger
from lib.kie.client import KieClient
from lib.storage.files import FileMedia
from lib.tasks.submit import submit_payload
from tests.conftest import free_port

PAYLOAD = {"model": "kling-3.0/video", "input": {"prompt": "a paper boat in the rain", "duration": "3",
                                                 "mode": "std", "sound": False, "aspect_ratio": "16:9",
                                                 "multi_shots": False}}


def _client(port: int) -> KieClient:
    return KieClient("sandbox-demo", f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}")


def _wait_archived(data: Path, task_id: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = Ledger.in_dir(data).get(task_id)
        if row is not None and row.state == "succeeded" and FileMedia(data).video(task_id) is not None:
            return
        time.sleep(0.3)
    raise AssertionError(f"{task_id} was not archived in {timeout:.0f} s: {Ledger.in_dir(data).get(task_id)}")


def _queries(data: Path, task_id: str) -> int:
    state = json.loads((data / "sandbox" / "sandbox_state.json").read_text())
    tasks = state["tasks"] if isinstance(state.get("tasks"), dict) else {t["task_id"]: t for t in state["tasks"]}
    return int(tasks[task_id]["queries"])


@pytest.fixture
def sandbox_port() -> int:
    return free_port()


def test_a_task_with_no_tab_open_is_archived_by_the_server(app_server_factory, tmp_path: Path,
                                                            sandbox_port: int) -> None:
    data = tmp_path / "data"
    app_server_factory(data, env={"KLING_SANDBOX_PORT": str(sandbox_port), "KLING_SANDBOX_SECONDS": "2"})
    # what Compose does, but no browser ever connects: the row is written, then nobody looks
    row = submit_payload(_client(sandbox_port), Ledger.in_dir(data), PAYLOAD, origin="sandbox", batch_id="b").row
    _wait_archived(data, row.task_id)


def test_kill_9_mid_task_then_a_restart_with_no_browser_archives_it(app_server_factory, tmp_path: Path,
                                                                    sandbox_port: int) -> None:
    data = tmp_path / "data"
    env = {"KLING_SANDBOX_PORT": str(sandbox_port), "KLING_SANDBOX_SECONDS": "4"}
    first = app_server_factory(data, env=env)
    row = submit_payload(_client(sandbox_port), Ledger.in_dir(data), PAYLOAD, origin="sandbox", batch_id="b").row
    first.stop(kill=True)  # kill -9 while the task is generating
    assert Ledger.in_dir(data).get(row.task_id).state != "succeeded"
    app_server_factory(data, env=env)  # a new process starts from the ledger
    _wait_archived(data, row.task_id)


def test_with_callbacks_each_task_costs_at_most_two_queries(app_server_factory, tmp_path: Path,
                                                            sandbox_port: int) -> None:
    data = tmp_path / "data"
    app_port = free_port()
    env = {"KLING_SANDBOX_PORT": str(sandbox_port), "KLING_SANDBOX_SECONDS": "2",
           "KLING_PUBLIC_URL": f"http://127.0.0.1:{app_port}", "KIE_WEBHOOK_KEY": "demo-hmac-key"}
    server = app_server_factory(data, env=env, port=app_port)
    ids = [submit_payload(_client(sandbox_port), Ledger.in_dir(data), PAYLOAD, origin="sandbox", batch_id="b",
                          callbacks_to=env["KLING_PUBLIC_URL"]).row.task_id for _ in range(3)]
    for task_id in ids:
        _wait_archived(data, task_id, timeout=30)
        assert _queries(data, task_id) <= 2, _queries(data, task_id)
    assert server.proc.poll() is None
