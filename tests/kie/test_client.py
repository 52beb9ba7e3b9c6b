"""KieClient against the sandbox over real HTTP: every documented code, every quirk, the retry rules."""

from __future__ import annotations

import socket
from decimal import Decimal
from http.client import RemoteDisconnected

import pytest
import requests
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from lib.kie.client import CreateHooks, KieClient, _was_sent, create_retry, query_retry, rate_limit_wait
from lib.kie.errors import (
    FIXES,
    KieApiError,
    KieConnectionError,
    KieProtocolError,
    KieTimeoutError,
    error_from_response,
)
from lib.kie.models import TaskRecord, TaskState, parse_state

SINGLE = {"model": "kling-3.0/video",
          "input": {"prompt": "A red fox runs through snow", "duration": "5", "mode": "std", "sound": False,
                    "multi_shots": False, "aspect_ratio": "16:9"}}
MULTI = {"model": "kling-3.0/video",
         "input": {"duration": "5", "mode": "pro", "sound": True, "multi_shots": True, "aspect_ratio": "9:16",
                   "multi_prompt": [{"prompt": "Wide shot of a city", "duration": 3},
                                    {"prompt": "Close-up of a face", "duration": 2}]}}


@pytest.fixture(autouse=True)
def _fast_retry_after(sandbox) -> None:
    sandbox.backend.configure(retry_after=0)


def test_create_and_follow_to_success_with_decimal_credit_debit(client, sandbox) -> None:
    sandbox.backend.configure(credits="160.62", progress="queries", every_n=1)
    task_id = client.create_task(SINGLE)
    assert task_id.startswith("task_kling-3.0_")
    assert client.get_credits() == Decimal("90.62")  # std 14 cr/s × 5 s
    states = [client.get_task(task_id) for _ in range(4)]
    assert [r.state for r in states][0] in (TaskState.QUEUED, TaskState.RUNNING)
    assert states[0].result_urls == () and states[0].fail_code is None  # resultJson "" and failCode null while pending
    final = client.get_task(task_id)
    assert final.state is TaskState.SUCCEEDED
    assert final.result_urls and final.result_urls[0].endswith(".mp4")
    assert final.param and final.param["input"]["prompt"] == SINGLE["input"]["prompt"]  # double-encoded param
    assert final.credits_consumed == 70


def test_result_video_is_served_and_download_url_works(client) -> None:
    record = client.get_task(client.create_task(MULTI))
    assert record.state is TaskState.SUCCEEDED
    link = client.download_url(record.result_urls[0])
    resp = client.session.get(link, timeout=10)
    assert resp.ok and resp.headers["Content-Type"] == "video/mp4" and resp.content[4:8] == b"ftyp"
    with pytest.raises(KieApiError) as err:
        client.download_url("https://example.com/not-kie.mp4")
    assert err.value.code == 422


def test_failed_task_reports_fail_code_and_message(client, sandbox) -> None:
    sandbox.backend.configure(fail_next_task=1)
    record = client.get_task(client.create_task(SINGLE))
    assert record.state is TaskState.FAILED and record.fail_code == "501" and record.fail_msg
    assert record.credits_consumed == 0


def test_recordinfo_404_falls_back_to_the_seed_path(client, sandbox) -> None:
    sandbox.backend.configure(disable_recordinfo=True, progress="queries", every_n=1)
    task_id = client.create_task(SINGLE)
    first = client.get_task(task_id)
    assert first.state in (TaskState.QUEUED, TaskState.RUNNING)
    for _ in range(5):
        last = client.get_task(task_id)
    assert last.state is TaskState.SUCCEEDED


def test_message_instead_of_msg_is_read(client, sandbox) -> None:
    sandbox.backend.configure(message_key="message")
    with pytest.raises(KieApiError) as err:
        client.get_task("task_does_not_exist")
    assert err.value.code == 422 and "recordInfo is null" in err.value.msg


@pytest.mark.parametrize(("option", "code"), [({"maintenance": True}, 455), ({"server_error": True}, 500)])
def test_create_errors_are_raised_and_create_nothing(client, sandbox, option, code) -> None:
    sandbox.backend.configure(**option)
    with pytest.raises(KieApiError) as err:
        client.create_task(SINGLE)
    assert err.value.code == code and err.value.fix == FIXES[code]
    assert sandbox.backend.state()["tasks"] == 0


def test_wrong_key_is_401_and_low_balance_is_402(sandbox) -> None:
    sandbox.backend.configure(required_key="right-key")
    wrong = KieClient("wrong-key", sandbox.base_url, sandbox.base_url)
    with pytest.raises(KieApiError) as err:
        wrong.get_credits()
    assert err.value.code == 401 and "api-key" in err.value.fix
    right = KieClient("right-key", sandbox.base_url, sandbox.base_url)
    sandbox.backend.configure(credits="10")
    with pytest.raises(KieApiError) as err:
        right.create_task(SINGLE)
    assert err.value.code == 402


def test_invalid_payload_is_422_with_kie_wording(client) -> None:
    with pytest.raises(KieApiError) as err:
        client.create_task({**SINGLE, "model": "nope"})
    assert err.value.code == 422


def test_http_429_once_is_retried_for_queries_and_for_create(client, sandbox) -> None:
    sandbox.backend.configure(rate_limit_once=1)
    assert client.get_credits() > 0
    sandbox.backend.configure(rate_limit_once=1)
    slept: list[float] = []
    client.create_task(SINGLE, CreateHooks(sleep=slept.append))
    assert sandbox.backend.state()["tasks"] == 1
    assert len(slept) == 1 and 2.0 <= slept[0] <= 2.5  # Retry-After: 0 is no advice: the 2 s backoff applies


def test_dropped_connection_on_create_is_unknown_not_retried(client, sandbox) -> None:
    sandbox.backend.configure(drop_connection_once=1)
    with pytest.raises(KieConnectionError) as err:
        client.create_task(SINGLE)
    assert err.value.request_sent is True
    assert sandbox.backend.state()["tasks"] == 0  # the sandbox dropped before creating; we did not resend


def test_dropped_connection_and_html_page_are_retried_for_queries(client, sandbox) -> None:
    sandbox.backend.configure(drop_connection_once=1)
    assert client.get_credits() > 0
    sandbox.backend.configure(html_error_once=1)
    assert client.get_credits() > 0


def test_html_error_page_on_create_is_a_clear_error(client, sandbox) -> None:
    sandbox.backend.configure(html_error_once=1)
    with pytest.raises(KieApiError) as err:
        client.create_task(SINGLE)
    assert err.value.code == 502 and "HTML" in err.value.msg and "proxy" in err.value.fix


def test_read_timeout_after_sending_is_flagged_as_maybe_created(sandbox) -> None:
    sandbox.backend.configure(slow_seconds=1.5)
    impatient = KieClient("k", sandbox.base_url, sandbox.base_url, timeout=(2, 0.3))
    with pytest.raises(KieTimeoutError) as err:
        impatient.create_task(SINGLE)
    assert err.value.request_sent and "History" in err.value.fix


def test_dead_network_is_a_connection_error_that_was_not_sent() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = KieClient("k", f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}", timeout=(1, 1))
    with pytest.raises(KieConnectionError) as err:
        dead.create_task(SINGLE)
    assert err.value.request_sent is False and "network" in err.value.fix


@pytest.mark.parametrize("code", [401, 402, 404, 408, 422, 429, 433, 455, 500, 501, 505])
@pytest.mark.parametrize("as_http_status", [False, True])
def test_every_documented_code_has_a_fix(code: int, as_http_status: bool) -> None:
    body = f'{{"code": {code}, "msg": "boom", "data": null}}'
    err = error_from_response(code if as_http_status else 200, body)
    assert err.code == code and err.msg == "boom" and err.fix == FIXES[code]


def test_non_json_and_empty_bodies_survive() -> None:
    assert error_from_response(502, "<html><body>Bad Gateway</body></html>").code == 502
    assert error_from_response(200, "").code == 500
    assert error_from_response(200, '["not", "an", "object"]').code == 500


@pytest.mark.parametrize(("wire", "state"), [
    ("waiting", TaskState.QUEUED), ("queuing", TaskState.QUEUED), ("pending", TaskState.QUEUED),
    ("generating", TaskState.RUNNING), ("processing", TaskState.RUNNING), ("SUCCESS", TaskState.SUCCEEDED),
    ("completed", TaskState.SUCCEEDED), ("fail", TaskState.FAILED), ("failed", TaskState.FAILED),
])
def test_both_state_vocabularies_normalise(wire: str, state: TaskState) -> None:
    assert parse_state(wire) is state


@pytest.mark.parametrize("wire", ["running", "", None, "cancelled"])
def test_unknown_state_is_an_error_naming_it(wire) -> None:
    with pytest.raises(KieProtocolError, match="unknown task state"):
        parse_state(wire)


@pytest.mark.parametrize(("retry", "method", "status", "expected"), [
    (create_retry(), "POST", 429, True), (create_retry(), "POST", 500, False), (create_retry(), "POST", 503, False),
    (query_retry(), "GET", 429, True), (query_retry(), "GET", 500, True), (query_retry(), "GET", 404, False),
    (query_retry(), "POST", 500, False), (query_retry(), "POST", 429, False),
])
def test_only_safe_calls_are_retried(retry, method, status, expected) -> None:
    assert retry.is_retry(method, status) is expected
    if method == "POST" and retry is not None:
        assert retry.read == 0 or not retry._is_method_retryable(method)


def test_key_is_not_in_repr(client) -> None:
    assert "test-key" not in repr(client)



@pytest.mark.parametrize("cost_time", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_in_a_record_are_treated_as_missing(cost_time: str) -> None:
    record = TaskRecord.from_json({"taskId": "t", "state": "generating", "costTime": cost_time,
                                   "creditsConsumed": cost_time})
    assert record.cost_time is None and record.credits_consumed is None


# ---------------------------------------------------------------- 429 pacing on createTask (issue 15.2)

@pytest.mark.parametrize(("retry", "retry_after", "pick", "wait"), [
    (1, None, "low", 2.0), (1, None, "high", 2.5), (2, None, "low", 3.0), (2, None, "high", 5.0),
    (3, None, "low", 6.0), (3, None, "high", 10.0), (9, None, "high", 10.0),  # never past the 3rd step
    (1, 0.0, "low", 2.0),     # Retry-After: 0 is no advice
    (1, 1.0, "high", 2.0),    # honoured, but never under the 2 s floor
    (1, 7.0, "high", 7.0), (3, 30.0, "low", 30.0),
    (1, 31.0, "low", None),   # longer than we wait: give up and tell the person
])
def test_rate_limit_wait_table(retry: int, retry_after: float | None, pick: str, wait: float | None) -> None:
    uniform = (lambda a, b: a) if pick == "low" else (lambda a, b: b)
    assert rate_limit_wait(retry, retry_after, uniform) == (pytest.approx(wait) if wait is not None else None)


class FakeClock:
    """Time that moves only when something sleeps on it."""

    def __init__(self) -> None:
        self.now, self.slept = 0.0, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.mark.parametrize(("retry_after", "refusals", "expected"), [
    (3, 1, [3.0]), (-1, 1, [2.5]), (-1, 2, [2.5, 5.0]), (-1, 3, [2.5, 5.0, 10.0]), (1, 2, [2.0, 2.0]),
])
def test_429_on_create_waits_on_the_injected_clock_then_creates_once(client, sandbox, retry_after, refusals,
                                                                     expected) -> None:
    sandbox.backend.configure(rate_limit_once=refusals, retry_after=retry_after)
    clock, told, resends = FakeClock(), [], []
    hooks = CreateHooks(on_wait=told.append, sleep=clock.sleep, before_resend=lambda: resends.append(clock()),
                        uniform=lambda a, b: b)
    task_id = client.create_task(SINGLE, hooks)
    assert task_id and sandbox.backend.state()["tasks"] == 1
    assert told == clock.slept == expected and clock.now == pytest.approx(sum(expected))
    assert len(resends) == refusals


def test_429_that_persists_gives_up_after_three_paced_retries(client, sandbox) -> None:
    sandbox.backend.configure(rate_limit_once=9, retry_after=-1)
    clock = FakeClock()
    with pytest.raises(KieApiError) as err:
        client.create_task(SINGLE, CreateHooks(sleep=clock.sleep, uniform=lambda a, b: a))
    assert err.value.code == 429 and err.value.fix == FIXES[429]
    assert clock.slept == [2.0, 3.0, 6.0] and sandbox.backend.state()["tasks"] == 0
    assert sandbox.backend.config.rate_limit_once == 5  # 1 try + 3 retries reached the sandbox


def test_429_with_a_retry_after_too_long_to_wait_is_reported_at_once(client, sandbox) -> None:
    sandbox.backend.configure(rate_limit_once=1, retry_after=120)
    clock = FakeClock()
    with pytest.raises(KieApiError) as err:
        client.create_task(SINGLE, CreateHooks(sleep=clock.sleep, on_wait=clock.sleep))
    assert err.value.code == 429 and err.value.retry_after == 120 and clock.slept == []
    assert sandbox.backend.state()["tasks"] == 0


def test_without_hooks_the_429_pause_goes_through_urllib3s_sleep(client, sandbox, monkeypatch) -> None:
    import types

    import urllib3.util.retry as retry_module

    slept: list[float] = []
    monkeypatch.setattr(retry_module, "time", types.SimpleNamespace(sleep=slept.append))
    sandbox.backend.configure(rate_limit_once=1, retry_after=4)
    client.create_task(SINGLE)
    assert slept == [4.0]


# ---------------------------------------------------------------- "was it sent?" from exception types (15.2)

def _wrapped(reason: Exception) -> requests.ConnectionError:
    return requests.ConnectionError(MaxRetryError(None, "http://kie.test/api", reason))


def _with_context(inner: Exception) -> requests.ConnectionError:
    try:
        try:
            raise inner
        except Exception:
            raise requests.ConnectionError("connection failed") from None
    except requests.ConnectionError as exc:
        exc.__context__ = inner
        return exc


@pytest.mark.parametrize(("exc", "sent"), [
    (_wrapped(NewConnectionError(None, "Failed to establish a new connection: [Errno 111] refused")), False),
    (_wrapped(NameResolutionError("kie.test", None, OSError("no such host"))), False),
    (_wrapped(ConnectTimeoutError("connect timed out")), False),
    (_with_context(NewConnectionError(None, "refused")), False),
    (requests.ConnectionError(ProtocolError("Connection aborted.", ConnectionResetError(104, "reset"))), True),
    (_wrapped(ProtocolError("Connection aborted.", RemoteDisconnected("closed"))), True),
    # the words alone decide nothing: a dropped answer that mentions "refused" was still sent
    (requests.ConnectionError(ProtocolError("Connection refused by peer after the body")), True),
    (requests.ConnectionError("Failed to establish a new connection"), True),
])
def test_was_sent_is_decided_by_exception_types(exc: requests.ConnectionError, sent: bool) -> None:
    assert _was_sent(exc) is sent


def test_a_refused_connection_on_create_is_a_not_sent_error(monkeypatch) -> None:
    client = KieClient("k", "http://kie.test", "http://kie.test")

    def refuse(*args, **kwargs):
        raise _wrapped(NewConnectionError(None, "refused"))

    monkeypatch.setattr(client.session, "request", refuse)
    with pytest.raises(KieConnectionError) as err:
        client.create_task(SINGLE)
    assert err.value.request_sent is False and "Could not reach" in err.value.message


def test_a_read_timeout_inside_a_connection_error_is_a_sent_timeout(monkeypatch) -> None:
    client = KieClient("k", "http://kie.test", "http://kie.test")

    def slow(*args, **kwargs):
        raise _wrapped(ReadTimeoutError(None, "http://kie.test", "Read timed out."))

    monkeypatch.setattr(client.session, "request", slow)
    with pytest.raises(KieTimeoutError) as err:
        client.create_task(SINGLE)
    assert err.value.request_sent is True


# ---------------------------------------------------------------- headers (15.9)

def test_get_requests_carry_json_content_type(client, sandbox, monkeypatch) -> None:
    seen: list[tuple[str, str | None]] = []
    real = client.session.request

    def spy(method, url, **kwargs):
        seen.append((method, kwargs.get("headers", {}).get("Content-Type")))
        return real(method, url, **kwargs)

    monkeypatch.setattr(client.session, "request", spy)
    client.get_credits()
    client.get_task(client.create_task(SINGLE))
    assert seen == [("GET", "application/json"), ("POST", None), ("GET", "application/json")]
