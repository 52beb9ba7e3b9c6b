"""KIE API client: createTask, task query (with the seed-path fallback), credits and download links."""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from types import TracebackType
from typing import Any

import requests
import urllib3.util.retry as urllib3_retry
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import ConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    InvalidHeader,
    MaxRetryError,
    NewConnectionError,
    ReadTimeoutError,
    ResponseError,
)
from urllib3.response import BaseHTTPResponse
from urllib3.util import Retry

from lib.kie.errors import (
    KieApiError,
    KieConnectionError,
    KieProtocolError,
    KieTimeoutError,
    body_message,
    error_from_response,
    parse_body,
)
from lib.kie.models import TaskRecord, as_decimal

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


# A createTask refused with 429 is re-sent after KIE's Retry-After, else after 2, 4, 8 s (±25 %), at most 3 times.
CREATE_429_RETRIES = 3
CREATE_BACKOFF_S = (2.0, 4.0, 8.0)
CREATE_JITTER = 0.25
CREATE_MIN_WAIT_S = 2.0   # KIE's window is 20 tasks per 10 s: an instant resend is refused again
CREATE_MAX_WAIT_S = 30.0  # a longer Retry-After is reported to the person instead of waited out


def rate_limit_wait(retry_number: int, retry_after: float | None,
                    uniform: Callable[[float, float], float] = random.uniform) -> float | None:
    """Seconds to wait before re-sending the `retry_number`-th (1-based) refused createTask; None: give up now."""
    if retry_after is not None and retry_after > 0:
        return max(CREATE_MIN_WAIT_S, float(retry_after)) if retry_after <= CREATE_MAX_WAIT_S else None
    base = CREATE_BACKOFF_S[min(max(retry_number, 1), len(CREATE_BACKOFF_S)) - 1]
    jittered = base * uniform(1 - CREATE_JITTER, 1 + CREATE_JITTER)
    return min(CREATE_MAX_WAIT_S, max(CREATE_MIN_WAIT_S, jittered))


@dataclass(frozen=True)
class CreateHooks:
    """What one createTask call does while it waits out a 429 (all injectable; defaults sleep for real)."""

    on_wait: Callable[[float], None] | None = None        # e.g. show "rate limited, retrying in N s"
    sleep: Callable[[float], None] | None = None          # None: urllib3's own time.sleep
    before_resend: Callable[[], object] | None = None     # e.g. RateLimiter.wait_turn: the resend is counted too
    uniform: Callable[[float, float], float] = random.uniform


_CREATE_HOOKS: ContextVar[CreateHooks | None] = ContextVar("kling_studio_create_hooks", default=None)


@contextmanager
def create_hooks(hooks: CreateHooks | None) -> Iterator[None]:
    """Make `hooks` apply to the createTask requests sent inside the block (this thread/context only)."""
    token = _CREATE_HOOKS.set(hooks)
    try:
        yield
    finally:
        _CREATE_HOOKS.reset(token)


def _retry_after_of(retry: Retry, response: BaseHTTPResponse) -> float | None:
    try:
        return retry.get_retry_after(response)
    except InvalidHeader:  # an unreadable Retry-After is no advice: fall back to the backoff
        return None


class _CreateRetry(Retry):
    """createTask retries only what KIE provably did not take: connect errors and HTTP 429 (paced, see above)."""

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        return bool(self.total) and status_code == 429

    def increment(self, method: str | None = None, url: str | None = None, response: BaseHTTPResponse | None = None,
                  error: Exception | None = None, _pool: ConnectionPool | None = None,
                  _stacktrace: TracebackType | None = None) -> _CreateRetry:
        if response is not None and response.status == 429:
            retry_after = _retry_after_of(self, response)
            if retry_after is not None and retry_after > CREATE_MAX_WAIT_S:  # urlopen then returns the 429
                raise MaxRetryError(_pool, url, ResponseError(f"Retry-After {retry_after:g} s is too long to wait"))
        return super().increment(method, url, response, error, _pool, _stacktrace)

    def sleep(self, response: BaseHTTPResponse | None = None) -> None:
        if response is None or response.status != 429:
            return super().sleep(response)  # a connect error: nothing reached KIE, urllib3's short backoff
        hooks = _CREATE_HOOKS.get() or CreateHooks()
        refused = sum(1 for h in self.history if h.status == 429)
        wait = rate_limit_wait(refused, _retry_after_of(self, response), hooks.uniform) or CREATE_MIN_WAIT_S
        log.info("createTask rate limited (429 #%d); retrying in %.1f s", refused, wait)
        if hooks.on_wait:
            hooks.on_wait(wait)
        (hooks.sleep or urllib3_retry.time.sleep)(wait)  # looked up at call time, so tests can record it
        if hooks.before_resend:
            hooks.before_resend()
        return None


def query_retry() -> Retry:
    """Retries for safe calls: connection errors, 429, 455-as-503 and 5xx, jittered, honouring Retry-After."""
    return Retry(total=4, connect=3, read=2, status=3, backoff_factor=0.5, backoff_jitter=0.25,
                 status_forcelist=(429, 500, 502, 503, 504), allowed_methods=frozenset({"GET"}),
                 raise_on_status=False, respect_retry_after_header=True)


def create_retry() -> Retry:
    """Retries for createTask: never after the request may have been read."""
    return _CreateRetry(total=CREATE_429_RETRIES, connect=2, read=0, status=CREATE_429_RETRIES, other=0,
                        backoff_factor=0.5, allowed_methods=frozenset({"POST"}), raise_on_status=False,
                        respect_retry_after_header=True)


def build_session(api_base: str) -> requests.Session:
    """A session whose createTask route has the strict retry policy and every other route the safe one."""
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    session.mount("http://", HTTPAdapter(max_retries=query_retry()))
    session.mount("https://", HTTPAdapter(max_retries=query_retry()))
    session.mount(api_base.rstrip("/") + CREATE_PATH, HTTPAdapter(max_retries=create_retry()))
    return session


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and every exception it wraps: args (requests wraps urllib3's), `.reason`, __cause__, __context__."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        item = todo.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        yield item
        todo.extend([*item.args, getattr(item, "reason", None), item.__cause__, item.__context__])


def _was_sent(exc: requests.ConnectionError) -> bool:
    """False only when urllib3 says the connection was never made (so KIE cannot have read the request)."""
    return not any(isinstance(e, (NewConnectionError, ConnectTimeoutError)) for e in _causes(exc))


def _read_timed_out(exc: requests.ConnectionError) -> bool:
    return any(isinstance(e, ReadTimeoutError) for e in _causes(exc))


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
        # KIE's Getting Started asks for this header on every request, GETs included
        json_type = {"Content-Type": "application/json"} if method.upper() == "GET" else {}
        headers = {**json_type, **self.auth_headers(), **kwargs.pop("headers", {})}
        try:
            resp = self.session.request(method, url, headers=headers, timeout=timeout or self.timeout, **kwargs)
        except requests.ConnectTimeout as exc:
            raise KieTimeoutError(f"Could not connect to {_host(url)} in time", request_sent=False) from exc
        except requests.Timeout as exc:
            raise KieTimeoutError(f"{_host(url)} did not answer in time", request_sent=True) from exc
        except requests.ConnectionError as exc:
            if _read_timed_out(exc):  # urllib3 wraps a read timeout it may not retry in MaxRetryError
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

    def create_task(self, payload: dict[str, Any], hooks: CreateHooks | None = None) -> str:
        """Submit a createTask body; returns the taskId. Re-sent only after a 429 (paced by `hooks`), never once
        KIE may have read it."""
        with create_hooks(hooks):
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
