"""Fault matrix: every way KIE (or the path to it) fails, run through lib against the sandbox's fault injection.

For each fault: what the user reads (`user_message()` names the cause and the fix), how many tasks the sandbox
holds and which ledger rows exist (no task lost, none created twice), and which requests went over the wire
(only safe calls are retried).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from lib.history.ledger import Ledger
from lib.kie.client import KieClient
from lib.kie.errors import (
    KieApiError,
    KieConnectionError,
    KieError,
    KieProtocolError,
    KieTaskFailed,
    KieTimeoutError,
)
from lib.kie.uploads import upload_file
from lib.storage.files import FileMedia
from lib.tasks.follow import refresh_task
from lib.tasks.submit import submit_payload
from tests.reliability.conftest import PAYLOAD, closed_port, png_bytes

CREATE = ("POST", "/api/v1/jobs/createTask")
CREDIT = ("GET", "/api/v1/chat/credit")
RECORD = ("GET", "/api/v1/jobs/recordInfo")
STREAM = ("POST", "/api/file-stream-upload")


@dataclass(frozen=True)
class Fault:
    """One row of the matrix."""

    config: dict[str, Any]
    op: str                                  # create | query | upload | refresh
    error: type[KieError] | None             # None: the call succeeds (after safe retries)
    says: tuple[str, ...] = ()               # substrings of err.user_message(): the cause and the fix
    tasks: int = 0                           # tasks the sandbox holds afterwards
    rows: tuple[str, ...] = ()               # ledger states afterwards
    calls: dict[tuple[str, str], int] = field(default_factory=dict)  # requests per route, retries included
    sleeps: tuple[float, ...] | None = None  # retry pauses urllib3 asked for (None: not checked)
    timeout: tuple[float, float] = (2.0, 5.0)
    host_down: bool = False


MATRIX: dict[str, Fault] = {
    "429+Retry-After on create: retried after the pause": Fault(
        {"rate_limit_once": 1, "retry_after": 2}, "create", None, tasks=1, rows=("queued",),
        calls={CREATE: 2}, sleeps=(2.0,)),
    "429 without Retry-After on create: paced, then sent again": Fault(
        {"rate_limit_once": 1, "retry_after": -1}, "create", None, tasks=1, rows=("queued",),
        calls={CREATE: 2}, sleeps=None),
    "429 that persists on create: gives up after 3 paced retries, nothing created": Fault(
        {"rate_limit_once": 9, "retry_after": 0}, "create", KieApiError,
        ("429", "Too many requests", "Wait a few seconds"), calls={CREATE: 4}),
    "429 on a query: retried": Fault(
        {"rate_limit_once": 1, "retry_after": 1}, "query", None, calls={CREDIT: 2}, sleeps=(1.0,)),
    "455 maintenance on create": Fault(
        {"maintenance": True}, "create", KieApiError, ("455", "maintenance", "Nothing was created"),
        calls={CREATE: 1}),
    "455 maintenance on a query": Fault(
        {"maintenance": True}, "query", KieApiError, ("455", "maintenance", "try again in a few minutes"),
        calls={CREDIT: 1}),
    "500 on create: never resent": Fault(
        {"server_error": True}, "create", KieApiError, ("500", "server error", "Try again in a minute"),
        calls={CREATE: 1}),
    "500 on a query: retried 3 times with backoff": Fault(
        {"server_error": True}, "query", KieApiError, ("500", "kie.ai/logs"), calls={CREDIT: 4}),
    "501 generation failed: row failed, credits back": Fault(
        {"fail_next_task": 1}, "refresh", KieTaskFailed, ("501", "0 credits"), tasks=1, rows=("failed",),
        calls={CREATE: 1, RECORD: 1}),
    "read timeout after createTask was sent": Fault(
        {"slow_seconds": 0.6}, "create", KieTimeoutError, ("did not answer in time", "History"),
        tasks=1, rows=("unknown",), calls={CREATE: 1}, timeout=(2.0, 0.2)),
    "read timeout on a query: retried twice": Fault(
        {"slow_seconds": 0.4}, "query", KieTimeoutError, ("did not answer in time", "History"),
        calls={CREDIT: 3}, timeout=(2.0, 0.15)),
    "dropped connection on create": Fault(
        {"drop_connection_once": 1}, "create", KieConnectionError, ("Lost the connection", "before submitting again"),
        rows=("unknown",), calls={CREATE: 1}),
    "dropped connection on a query: retried": Fault(
        {"drop_connection_once": 1}, "query", None, calls={CREDIT: 2}),
    "malformed JSON answer to create (task was made)": Fault(
        {"malformed_json_once": 1}, "create", KieProtocolError, ("not JSON", "before submitting again"),
        tasks=1, rows=("unknown",), calls={CREATE: 1}),
    "malformed JSON answer to a query": Fault(
        {"malformed_json_once": 1}, "query", KieProtocolError, ("not JSON", "try again"), calls={CREDIT: 1}),
    "proxy HTML 502 page on create": Fault(
        {"html_error_once": 1}, "create", KieApiError, ("HTML page", "proxy", "before submitting again"),
        rows=("unknown",), calls={CREATE: 1}),
    "proxy HTML 502 page on a query: retried": Fault(
        {"html_error_once": 1}, "query", None, calls={CREDIT: 2}),
    "proxy HTML 502 page on an upload: not resent": Fault(
        {"html_error_once": 1}, "upload", KieApiError, ("HTML page", "proxy"), calls={STREAM: 1}),
    "upload host down": Fault(
        {}, "upload", KieConnectionError, ("Could not reach", "KIE_UPLOAD_BASE"), host_down=True),
    "API host down on create": Fault(
        {}, "create", KieConnectionError, ("Could not reach", "KIE_API_BASE"), host_down=True),
}


def _run(fault: Fault, client: KieClient, ledger: Ledger, tmp_path) -> KieError | None:
    if fault.op == "query":
        try:
            client.get_credits()
        except KieError as exc:
            return exc
        return None
    if fault.op == "upload":
        import io

        try:
            upload_file(client, io.BytesIO(png_bytes()), file_name="a.png", upload_path="rel")
        except KieError as exc:
            return exc
        return None
    sub = submit_payload(client, ledger, PAYLOAD, origin="sandbox", batch_id="b-fault")
    if fault.op == "refresh" and sub.row is not None:
        row, err = refresh_task(client, ledger, FileMedia(tmp_path), sub.row, allow_private=True)
        assert err is None, err
        return KieTaskFailed(row.task_id, row.fail_code, row.fail_msg) if row.state == "failed" else None
    return sub.error


def _settle(sandbox, expected_tasks: int) -> None:
    """A slow request finishes on a server thread after the client gave up: wait for it (bounded)."""
    deadline = time.monotonic() + 5
    while sandbox.backend.state()["tasks"] < expected_tasks and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.parametrize("name", list(MATRIX))
def test_fault_matrix(name: str, sandbox, wire, retry_sleeps, tmp_path) -> None:
    fault = MATRIX[name]
    sandbox.backend.configure(**fault.config)
    credits_before = sandbox.backend.state()["credits"]
    api = f"http://127.0.0.1:{closed_port()}" if fault.host_down and fault.op == "create" else sandbox.base_url
    upload = f"http://127.0.0.1:{closed_port()}" if fault.host_down and fault.op == "upload" else sandbox.base_url
    client = KieClient("test-key", api, upload, timeout=fault.timeout)
    ledger = Ledger(tmp_path / "history.csv")

    err = _run(fault, client, ledger, tmp_path)

    if fault.error is None:
        assert err is None, err.user_message()
    else:
        assert isinstance(err, fault.error), f"{name}: got {err!r}"
        message = err.user_message()
        for part in fault.says:
            assert part.lower() in message.lower(), f"{name}: {part!r} not in {message!r}"
    _settle(sandbox, fault.tasks)
    assert sandbox.backend.state()["tasks"] == fault.tasks
    assert tuple(r.state for r in ledger.rows()) == fault.rows
    counts = {route: wire.count(route) for route in set(wire)}
    assert counts == fault.calls, f"{name}: wire {wire}"
    if fault.sleeps is not None:
        assert tuple(retry_sleeps) == fault.sleeps
    if fault.op == "refresh":
        assert sandbox.backend.state()["credits"] == credits_before  # failed tasks are refunded


def test_a_createtask_post_is_only_ever_repeated_after_a_429(sandbox, wire, retry_sleeps, tmp_path) -> None:
    """Across every non-429 fault, at most one createTask reaches the sandbox per submit."""
    ledger = Ledger(tmp_path / "history.csv")
    client = KieClient("test-key", sandbox.base_url, sandbox.base_url, timeout=(2.0, 5.0))
    faults = [{"drop_connection_once": 1}, {"html_error_once": 1}, {"malformed_json_once": 1},
              {"server_error": True}, {"maintenance": True}]
    for config in faults:
        sandbox.backend.configure(**config)
        submit_payload(client, ledger, PAYLOAD, origin="sandbox", batch_id="b")
        sandbox.backend.configure(server_error=False, maintenance=False)
    assert wire.count(CREATE) == len(faults)
    # every submit whose outcome is unknown left a row to check; the ones KIE refused left none
    assert [r.state for r in ledger.rows()] == ["unknown"] * 3
    assert retry_sleeps == []
