"""Submit and follow: the row is written before any query, nothing is created twice, results are archived."""

from __future__ import annotations

import pytest
import requests

from lib.history.ledger import Ledger
from lib.kie.client import KieClient
from lib.kie.errors import KieApiError, KieConnectionError, ValidationError
from lib.storage.files import FileMedia
from lib.tasks.follow import refresh_task
from lib.tasks.submit import RateLimiter, SubmitGuard, new_batch_id, submit_payload
from tests.conftest import follow_to_end
from tests.kie.test_client import FakeClock as _Clock  # time that moves only when something sleeps on it

PAYLOAD = {"model": "kling-3.0/video",
           "input": {"prompt": "A lighthouse at dusk, slow dolly in", "duration": "3", "mode": "std",
                     "sound": False, "multi_shots": False, "aspect_ratio": "1:1"}}


@pytest.fixture
def ledger(tmp_path) -> Ledger:
    return Ledger(tmp_path / "history.csv")


def test_submit_writes_the_row_before_the_first_query(client, ledger, sandbox) -> None:
    sub = submit_payload(client, ledger, PAYLOAD, origin="sandbox", batch_id="b-1")
    assert sub.error is None and sub.row.state == "queued"
    stored = ledger.get(sub.row.task_id)
    assert stored is not None and stored.batch_id == "b-1" and stored.estimated_credits == 42
    assert stored.payload == PAYLOAD and stored.last_checked_at is None


def test_invalid_payload_raises_before_anything_is_sent(client, ledger, sandbox) -> None:
    bad = {**PAYLOAD, "input": {**PAYLOAD["input"], "duration": "16"}}
    with pytest.raises(ValidationError):
        submit_payload(client, ledger, bad, origin="sandbox", batch_id="b")
    assert sandbox.backend.state()["tasks"] == 0 and ledger.rows() == []


def test_api_error_creates_no_row(client, ledger, sandbox) -> None:
    sandbox.backend.configure(maintenance=True)
    sub = submit_payload(client, ledger, PAYLOAD, origin="sandbox", batch_id="b")
    assert isinstance(sub.error, KieApiError) and sub.error.code == 455 and sub.row is None
    assert ledger.rows() == []


def test_dropped_connection_after_sending_is_recorded_as_unknown(client, ledger, sandbox) -> None:
    sandbox.backend.configure(drop_connection_once=1)
    sub = submit_payload(client, ledger, PAYLOAD, origin="sandbox", batch_id="b")
    assert isinstance(sub.error, KieConnectionError)
    assert sub.row.state == "unknown" and "kie.ai/logs" in sub.row.fail_msg
    assert [r.state for r in ledger.rows()] == ["unknown"]


def test_refresh_follows_to_success_and_archives_the_video(client, ledger, sandbox, tmp_path) -> None:
    sandbox.backend.configure(progress="queries", every_n=1)
    row = submit_payload(client, ledger, PAYLOAD, origin="sandbox", batch_id="b").row
    row, states = follow_to_end(client, ledger, row, tmp_path)
    assert states[-1] == "succeeded" and "running" in states
    assert row.local_video and (tmp_path / "videos").exists()
    with open(FileMedia(tmp_path).video(row.task_id), "rb") as fh:
        assert fh.read(12)[4:8] == b"ftyp"
    assert row.result_url.endswith(".mp4") and row.credits_consumed == 42


def test_refresh_records_failure_reason(client, ledger, sandbox, tmp_path) -> None:
    sandbox.backend.configure(fail_next_task=1)
    row = submit_payload(client, ledger, PAYLOAD, origin="sandbox", batch_id="b").row
    row, _ = refresh_task(client, ledger, FileMedia(tmp_path), row, allow_private=True)
    assert row.state == "failed" and row.fail_code == "501" and row.fail_msg


def test_query_error_keeps_the_task_unfinished(ledger, sandbox, tmp_path) -> None:
    good = KieClient("k", sandbox.base_url, sandbox.base_url)
    row = submit_payload(good, ledger, PAYLOAD, origin="sandbox", batch_id="b").row
    dead = KieClient("k", "http://127.0.0.1:9", "http://127.0.0.1:9", timeout=(0.5, 0.5))
    row2, err = refresh_task(dead, ledger, FileMedia(tmp_path), row, allow_private=True)
    assert err is not None and row2.state == "queued" and row2.last_checked_at is not None


def test_submit_guard_claims_a_click_once() -> None:
    guard = SubmitGuard()
    assert guard.claim("click-1") and not guard.claim("click-1") and guard.claim("click-2")


def test_rate_limiter_keeps_20_per_10_seconds_without_real_sleep() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    limiter = RateLimiter(clock=lambda: now[0], sleep=sleep)
    for _ in range(20):
        assert limiter.wait_turn() == 0
    assert limiter.wait_turn() == pytest.approx(10.0)
    assert slept == [pytest.approx(10.0)]


def test_batch_ids_are_unique() -> None:
    assert len({new_batch_id() for _ in range(100)}) == 100


class _BrokenLedger:
    """A ledger whose disk write fails (full disk, lock held by another process)."""

    def append(self, row):
        from lib.history.errors import HistoryFileError

        raise HistoryFileError("history.csv is locked by another process")


def test_created_task_that_cannot_be_recorded_is_reported_with_its_id(client, sandbox, caplog) -> None:
    sub = submit_payload(client, _BrokenLedger(), PAYLOAD, origin="sandbox", batch_id="b")
    [task_id] = list(sandbox.backend.tasks)
    assert sub.row is None and sub.error is not None
    assert task_id in sub.error.message and "kie.ai/logs" in sub.error.fix
    assert task_id in caplog.text



class _AnswerSession(requests.Session):
    """Answers every request with one fixed KIE body (HTTP 200)."""

    def __init__(self, body: bytes) -> None:
        super().__init__()
        self.answer = body

    def send(self, request, **kwargs):
        resp = requests.Response()
        resp.status_code, resp.url, resp._content = 200, request.url, self.answer
        return resp


@pytest.mark.parametrize("body", [b'{"code":200,"msg":"success","data":{}}',
                                  b'{"code":200,"msg":"success","data":null}',
                                  b'{"code":200,"msg":"success","data":{"recordId":"r-1"}}'])
def test_success_without_a_task_id_is_recorded_as_unknown_not_dropped(ledger, body: bytes) -> None:
    # KIE said "success", so a paid task may exist even though its id did not arrive.
    client = KieClient("k", "https://api.example", "https://upload.example", session=_AnswerSession(body))
    sub = submit_payload(client, ledger, PAYLOAD, origin="live", batch_id="b")
    assert sub.error is not None and "check" in sub.error.fix.lower()
    assert [r.state for r in ledger.rows()] == ["unknown"]


# ---------------------------------------------------------------- 429 pacing (issue 15.2)

def test_429_is_waited_out_on_the_limiters_clock_and_every_attempt_is_counted(client, ledger, sandbox) -> None:
    sandbox.backend.configure(rate_limit_once=2, retry_after=3)
    clock, told = _Clock(), []
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    sub = submit_payload(client, ledger, PAYLOAD, origin="sandbox", batch_id="b", limiter=limiter,
                         on_wait=told.append)
    assert sub.error is None and [r.state for r in ledger.rows()] == ["queued"]
    assert told == clock.slept == [3.0, 3.0] and clock.now == 6.0
    assert list(limiter._sent) == [0.0, 3.0, 6.0]  # the two refused attempts take their place in the window
    assert sandbox.backend.state()["tasks"] == 1


def test_429_backoff_without_retry_after_is_jittered_and_at_least_2_s(client, ledger, sandbox) -> None:
    sandbox.backend.configure(rate_limit_once=2, retry_after=-1)
    clock, told = _Clock(), []
    sub = submit_payload(client, ledger, PAYLOAD, origin="sandbox", batch_id="b",
                         limiter=RateLimiter(clock=clock, sleep=clock.sleep), on_wait=told.append)
    assert sub.error is None and len(told) == 2
    assert 2.0 <= told[0] <= 2.5 and 3.0 <= told[1] <= 5.0 and clock.slept == told


def test_a_full_pacing_window_is_slept_before_the_resend(client, ledger, sandbox) -> None:
    clock = _Clock()
    limiter = RateLimiter(limit=2, window_s=10.0, clock=clock, sleep=clock.sleep)
    limiter.wait_turn()  # another submit a moment ago
    sandbox.backend.configure(rate_limit_once=1, retry_after=2)
    sub = submit_payload(client, ledger, PAYLOAD, origin="sandbox", batch_id="b", limiter=limiter)
    assert sub.error is None
    assert clock.slept == [2.0, 8.0]  # KIE's pause, then the rest of our own 10 s window


def test_429_that_persists_creates_nothing_and_records_nothing(client, ledger, sandbox) -> None:
    sandbox.backend.configure(rate_limit_once=9, retry_after=-1)
    clock, told = _Clock(), []
    sub = submit_payload(client, ledger, PAYLOAD, origin="sandbox", batch_id="b",
                         limiter=RateLimiter(clock=clock, sleep=clock.sleep), on_wait=told.append)
    assert isinstance(sub.error, KieApiError) and sub.error.code == 429 and sub.row is None
    assert len(told) == 3 and ledger.rows() == [] and sandbox.backend.state()["tasks"] == 0


def test_dropped_connection_is_still_never_resent_even_with_pacing(client, ledger, sandbox) -> None:
    sandbox.backend.configure(drop_connection_once=1)
    clock, told = _Clock(), []
    sub = submit_payload(client, ledger, PAYLOAD, origin="sandbox", batch_id="b",
                         limiter=RateLimiter(clock=clock, sleep=clock.sleep), on_wait=told.append)
    assert isinstance(sub.error, KieConnectionError) and sub.row.state == "unknown"
    assert told == [] and clock.slept == [] and sandbox.backend.state()["tasks"] == 0
