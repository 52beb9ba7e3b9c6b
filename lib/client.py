"""KIE API client: createTask, task query (with the seed-path fallback), credits and download links."""

from __future__ import annotations

import enum
import hashlib
import json
import logging
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util import Retry

from lib.errors import (
    KieApiError,
    KieConnectionError,
    KieProtocolError,
    KieTimeoutError,
    body_message,
    error_from_response,
    parse_body,
)

log = logging.getLogger(__name__)

USER_AGENT = "KlingStudio/1.0 (+python-requests)"
CREATE_PATH = "/api/v1/jobs/createTask"
RECORD_PATH = "/api/v1/jobs/recordInfo"
SEED_TASK_PATH = "/api/v1/jobs/{task_id}"
CREDIT_PATH = "/api/v1/chat/credit"
DOWNLOAD_URL_PATH = "/api/v1/common/download-url"
SENT_FIX = ("The request reached KIE but the answer was lost or garbled, so KIE may have acted on it. "
            "If you were submitting, check History (or https://kie.ai/logs) before submitting again; "
            "otherwise try again.")


class TaskState(str, enum.Enum):
    """The closed set of task states, whatever vocabulary the server speaks."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (TaskState.SUCCEEDED, TaskState.FAILED)


_WIRE_STATES = {
    "waiting": TaskState.QUEUED, "queuing": TaskState.QUEUED, "pending": TaskState.QUEUED,
    "generating": TaskState.RUNNING, "processing": TaskState.RUNNING,
    "success": TaskState.SUCCEEDED, "completed": TaskState.SUCCEEDED,
    "fail": TaskState.FAILED, "failed": TaskState.FAILED,
}


def parse_state(wire: object) -> TaskState:
    """Map KIE's (or the seed's) state word to TaskState; an unknown word is an error naming it."""
    state = _WIRE_STATES.get(str(wire).strip().lower()) if wire is not None else None
    if state is None:
        raise KieProtocolError(f"KIE reported an unknown task state {wire!r}",
                               "The API may have changed. Check the task at https://kie.ai/logs.")
    return state


def _loads_maybe(value: Any) -> Any:
    """json.loads for KIE's string-encoded fields; '' and None are empty."""
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _result_urls(data: dict[str, Any]) -> tuple[str, ...]:
    result = _loads_maybe(data.get("resultJson"))
    if result is None:
        result = data.get("result") or data.get("output")
    urls: Any = None
    if isinstance(result, dict):
        urls = result.get("resultUrls") or result.get("result_urls") or result.get("urls")
    elif isinstance(result, list):
        urls = result
    urls = urls if urls is not None else data.get("resultUrls")
    if isinstance(urls, str):
        urls = [urls]
    return tuple(str(u) for u in urls or () if u)


def as_decimal(value: Any) -> Decimal | None:
    """A finite number from KIE's loosely typed fields (number or text), or None."""
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None  # int(NaN) would raise deep inside a status query


@dataclass(frozen=True)
class TaskRecord:
    """One task as KIE reports it, normalised."""

    task_id: str
    state: TaskState
    result_urls: tuple[str, ...] = ()
    fail_code: str | None = None
    fail_msg: str | None = None
    credits_consumed: Decimal | None = None
    cost_time: int | None = None
    create_time: int | None = None
    complete_time: int | None = None
    param: dict[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any], task_id: str = "") -> TaskRecord:
        """Parse recordInfo's `data` (or the seed path's) with every documented quirk."""
        param = _loads_maybe(data.get("param"))
        if isinstance(param, dict):
            param = {**param, "input": _loads_maybe(param.get("input"))}
        fail_code = data.get("failCode")
        credits = data.get("creditsConsumed", data.get("consumeCredits"))
        return cls(
            task_id=str(data.get("taskId") or data.get("task_id") or task_id),
            state=parse_state(data.get("state", data.get("status"))),
            result_urls=_result_urls(data),
            fail_code=str(fail_code) if fail_code not in (None, "") else None,
            fail_msg=(str(data.get("failMsg")) if data.get("failMsg") not in (None, "") else None),
            credits_consumed=as_decimal(credits),
            cost_time=int(as_decimal(data.get("costTime")) or 0) or None,
            create_time=int(as_decimal(data.get("createTime")) or 0) or None,
            complete_time=int(as_decimal(data.get("completeTime")) or 0) or None,
            param=param if isinstance(param, dict) else None,
        )


class _CreateRetry(Retry):
    """createTask retries only what KIE provably did not take: connect errors and HTTP 429."""

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        return bool(self.total) and status_code == 429


def query_retry() -> Retry:
    """Retries for safe calls: connection errors, 429, 455-as-503 and 5xx, jittered, honouring Retry-After."""
    return Retry(total=4, connect=3, read=2, status=3, backoff_factor=0.5, backoff_jitter=0.25,
                 status_forcelist=(429, 500, 502, 503, 504), allowed_methods=frozenset({"GET"}),
                 raise_on_status=False, respect_retry_after_header=True)


def create_retry() -> Retry:
    """Retries for createTask: never after the request may have been read."""
    return _CreateRetry(total=2, connect=2, read=0, status=2, other=0, backoff_factor=0.5,
                        allowed_methods=frozenset({"POST"}), raise_on_status=False,
                        respect_retry_after_header=True)


def build_session(api_base: str) -> requests.Session:
    """A session whose createTask route has the strict retry policy and every other route the safe one."""
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    session.mount("http://", HTTPAdapter(max_retries=query_retry()))
    session.mount("https://", HTTPAdapter(max_retries=query_retry()))
    session.mount(api_base.rstrip("/") + CREATE_PATH, HTTPAdapter(max_retries=create_retry()))
    return session


def _was_sent(exc: requests.ConnectionError) -> bool:
    text = repr(exc)
    return not any(m in text for m in ("NewConnectionError", "NameResolutionError", "ConnectTimeout",
                                        "Connection refused", "Failed to establish"))


class KieClient:
    """Talks to KIE (or the sandbox). Holds the key only in memory; one instance per browser session."""

    def __init__(self, api_key: str | None, api_base: str, upload_base: str,
                 session: requests.Session | None = None, timeout: tuple[float, float] = (5, 30)) -> None:
        self._api_key = api_key or ""
        self.api_base = api_base.rstrip("/")
        self.upload_base = upload_base.rstrip("/")
        self.session = session or build_session(self.api_base)
        self.timeout = timeout
        self._seed_path = False

    def __repr__(self) -> str:
        return f"KieClient(api_base={self.api_base!r}, upload_base={self.upload_base!r}, key=***)"

    @property
    def account(self) -> str:
        """A one-way fingerprint of the key, to tell whose live tasks a ledger row holds (never the key)."""
        if not self._api_key:
            return ""
        digest = hashlib.sha256(f"kling-studio-account|{self._api_key}".encode()).hexdigest()
        return "acct-" + digest[:16]

    def auth_headers(self) -> dict[str, str]:
        """The Authorization header; callers must never log it."""
        return {"Authorization": f"Bearer {self._api_key}"}

    def request(self, method: str, url: str, *, timeout: tuple[float, float] | None = None,
                **kwargs: Any) -> dict[str, Any]:
        """Send one request; success only for HTTP 2xx with body code 200. Returns the body."""
        headers = {**self.auth_headers(), **kwargs.pop("headers", {})}
        try:
            resp = self.session.request(method, url, headers=headers, timeout=timeout or self.timeout, **kwargs)
        except requests.ConnectTimeout as exc:
            raise KieTimeoutError(f"Could not connect to {_host(url)} in time", request_sent=False) from exc
        except requests.Timeout as exc:
            raise KieTimeoutError(f"{_host(url)} did not answer in time", request_sent=True) from exc
        except requests.ConnectionError as exc:
            if "ReadTimeoutError" in repr(exc):  # urllib3 wraps a read timeout it may not retry in MaxRetryError
                raise KieTimeoutError(f"{_host(url)} did not answer in time", request_sent=True) from exc
            sent = _was_sent(exc)
            err = KieConnectionError(
                f"{'Lost the connection to' if sent else 'Could not reach'} {_host(url)}",
                SENT_FIX if sent else None)
            err.request_sent = sent
            raise err from exc
        except requests.RequestException as exc:
            raise KieConnectionError(f"Request to {_host(url)} failed: {type(exc).__name__}") from exc
        body = parse_body(resp.text)
        if 200 <= resp.status_code < 300 and body is None:  # KIE took the request; its answer was garbled
            err = KieProtocolError(f"{_host(url)} answered HTTP {resp.status_code} with a body that is not JSON",
                                   SENT_FIX)
            err.request_sent = True
            raise err
        ok = 200 <= resp.status_code < 300 and body is not None and str(body.get("code")) == "200"
        if not ok:
            err = error_from_response(resp.status_code, resp.text, dict(resp.headers))
            log.info("KIE %s %s failed: code=%s http=%s", method, _path(url), err.code, resp.status_code)
            raise err
        return body  # type: ignore[return-value]

    def create_task(self, payload: dict[str, Any]) -> str:
        """Submit a createTask body; returns the taskId. Never retried once KIE may have read it."""
        body = self.request("POST", self.api_base + CREATE_PATH, json=payload)
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        task_id = data.get("taskId") if data else None
        if not task_id:  # KIE said success, so a paid task may exist: never treat it as "nothing created"
            err = KieProtocolError(f"createTask answered '{body_message(body) or 'success'}' without a taskId",
                                   SENT_FIX)
            err.request_sent = True
            raise err
        return str(task_id)

    def get_task(self, task_id: str) -> TaskRecord:
        """Query a task: recordInfo first, the seed's /jobs/{taskId} when recordInfo is 404."""
        if not self._seed_path:
            try:
                body = self.request("GET", self.api_base + RECORD_PATH, params={"taskId": task_id})
                return self._record(body, task_id)
            except KieApiError as exc:
                if exc.http_status != 404:
                    raise
                log.info("recordInfo answered HTTP 404; falling back to the seed task path")
                self._seed_path = True
        body = self.request("GET", self.api_base + SEED_TASK_PATH.format(task_id=task_id))
        return self._record(body, task_id)

    @staticmethod
    def _record(body: dict[str, Any], task_id: str) -> TaskRecord:
        data = body.get("data")
        if not isinstance(data, dict):
            raise KieApiError(422, body_message(body) or "recordInfo is null")
        return TaskRecord.from_json(data, task_id)

    def get_credits(self, timeout: tuple[float, float] | None = None) -> Decimal:
        """The remaining credit balance (a decimal, e.g. 60.62)."""
        body = self.request("GET", self.api_base + CREDIT_PATH, timeout=timeout)
        value = as_decimal(body.get("data"))
        if value is None:
            raise KieApiError(500, f"Credit balance is not a number: {body.get('data')!r}")
        return value

    def download_url(self, url: str) -> str:
        """A temporary (20 min) download link for a KIE-generated file URL."""
        body = self.request("POST", self.api_base + DOWNLOAD_URL_PATH, json={"url": url})
        data = body.get("data")
        if not isinstance(data, str) or not data:
            raise KieApiError(500, "download-url answered without a URL")
        return data


def _host(url: str) -> str:
    return url.split("/")[2] if "://" in url else url


def _path(url: str) -> str:
    return "/" + url.split("/", 3)[3].split("?")[0] if url.count("/") >= 3 else url
