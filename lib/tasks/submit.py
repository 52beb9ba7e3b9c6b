"""Submitting tasks: a created task is recorded before anything else, a double click never creates two, and
KIE's 20-per-10-s limit is kept; a createTask that may have reached KIE is never sent again."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from lib.history.row import HistoryRow
from lib.kie.client import CreateHooks, KieClient
from lib.kie.errors import (
    GATEWAY_STATUSES,
    KieApiError,
    KieConnectionError,
    KieError,
    KieProtocolError,
    KieTimeoutError,
    ValidationError,
)
from lib.kling.pricing import estimate_credits
from lib.kling.problems import errors_only
from lib.kling.validation import validate_payload
from lib.tasks.callbacks import new_callback

if TYPE_CHECKING:
    from lib.storage.base import LedgerStore

log = logging.getLogger(__name__)

KIE_CREATE_LIMIT = 20      # new generation requests …
KIE_CREATE_WINDOW_S = 10.0  # … per 10 s per account (kie-api.md §10)
UNKNOWN_MSG = ("The connection ended after the request was sent, so KIE may have created this task. "
               "Check https://kie.ai/logs before submitting again.")


def new_batch_id() -> str:
    """A short id grouping the variants of one submit."""
    return "b-" + uuid.uuid4().hex[:10]


class SubmitGuard:
    """One paid task per click: a click token can be claimed once (a double click reuses the token)."""

    def __init__(self) -> None:
        self._claimed: set[str] = set()
        self._lock = threading.Lock()

    def claim(self, token: str) -> bool:
        """True the first time a token is seen, False on every repeat."""
        with self._lock:
            if token in self._claimed:
                return False
            self._claimed.add(token)
            return True


class RateLimiter:
    """A sliding window of KIE's 20 new tasks per 10 s, with injectable clock and sleep."""

    def __init__(self, limit: int = KIE_CREATE_LIMIT, window_s: float = KIE_CREATE_WINDOW_S,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.limit, self.window_s, self.clock, self.sleep = limit, window_s, clock, sleep
        self._sent: deque[float] = deque()
        self._lock = threading.Lock()

    def wait_turn(self) -> float:
        """Block until another task may be created; returns the seconds waited."""
        waited = 0.0
        with self._lock:
            while True:
                now = self.clock()
                while self._sent and now - self._sent[0] >= self.window_s:
                    self._sent.popleft()
                if len(self._sent) < self.limit:
                    self._sent.append(now)
                    return waited
                pause = self.window_s - (now - self._sent[0])
                self.sleep(pause)
                waited += pause


@dataclass(frozen=True)
class Submission:
    """What one submit produced: the ledger row, or the error that stopped it (nothing created)."""

    payload: dict[str, Any]
    row: HistoryRow | None = None
    error: KieError | None = None


def _row_from_payload(payload: dict[str, Any], *, batch_id: str, origin: str, estimated: int, account: str) -> Any:

    return HistoryRow.from_payload("pending", payload, origin=origin, state="queued", batch_id=batch_id,
                                   estimated_credits=estimated, account=account if origin == "live" else "")


def _maybe_created(exc: KieError) -> bool:
    """True when createTask may have reached KIE: a lost/garbled answer, or a gateway page in its place."""
    if isinstance(exc, KieApiError):
        return exc.http_status in GATEWAY_STATUSES and exc.code == exc.http_status
    return exc.request_sent


def create_hooks_for(limiter: RateLimiter | None, on_wait: Callable[[float], None] | None = None,
                     sleep: Callable[[float], None] | None = None) -> CreateHooks:
    """How a 429 on createTask is waited out: on the limiter's clock, each resend counted as a new attempt."""
    return CreateHooks(on_wait=on_wait, sleep=sleep or (limiter.sleep if limiter else None),
                       before_resend=limiter.wait_turn if limiter else None)


def submit_payload(client: KieClient, ledger: LedgerStore, payload: dict[str, Any], *, origin: str, batch_id: str,
                   limiter: RateLimiter | None = None, on_wait: Callable[[float], None] | None = None,
                   sleep: Callable[[float], None] | None = None, callbacks_to: str | None = None) -> Submission:
    """Validate, create the task once, and write its row before anything else happens.

    A 429 is waited out (KIE's Retry-After, else 2/4/8 s with jitter) and re-sent; `on_wait(seconds)` is told
    before each wait so the page can say "rate limited, retrying in N s". With `callbacks_to` (KLING_PUBLIC_URL)
    and no callBackUrl of the user's own, the task carries an unguessable callback URL of this server."""
    errors = errors_only(validate_payload(payload))
    if errors:
        raise ValidationError(errors)
    # Built before paying, so nothing about the row can fail once KIE has created the task.
    row = _row_from_payload(payload, batch_id=batch_id, origin=origin, estimated=estimate_credits(payload),
                            account=client.account)
    if callbacks_to and not payload.get("callBackUrl"):
        address = new_callback(callbacks_to)
        payload = {**payload, "callBackUrl": address.url}
        row = replace(row, callback_key=address.key)
    if limiter:
        limiter.wait_turn()
    try:
        task_id = client.create_task(payload, create_hooks_for(limiter, on_wait, sleep))
    except (KieTimeoutError, KieConnectionError, KieProtocolError, KieApiError) as exc:
        if not _maybe_created(exc):
            return Submission(payload, error=exc)
        row = replace(row, task_id=f"unknown-{uuid.uuid4().hex[:12]}", state="unknown", fail_msg=UNKNOWN_MSG)
        return _recorded(ledger, payload, row, exc)
    except KieError as exc:
        return Submission(payload, error=exc)
    log.info("task %s created (batch %s)", task_id, batch_id)
    return _recorded(ledger, payload, replace(row, task_id=task_id), None)


def _recorded(ledger: LedgerStore, payload: dict[str, Any], row: HistoryRow, error: KieError | None) -> Submission:
    """Append the row of a task KIE has (or may have) created; if that fails, the error names the task."""
    try:
        ledger.append(row)
    except Exception as exc:  # the task is (maybe) paid for: its id must not vanish with the error
        log.error("task %s was created but could not be recorded: %s", row.task_id, exc)
        return Submission(payload, error=KieError(
            f"Task {row.task_id} was sent to KIE but could not be saved to History ({exc})",
            "Note the task id and check https://kie.ai/logs before submitting again."))
    return Submission(payload, row=row, error=error)







