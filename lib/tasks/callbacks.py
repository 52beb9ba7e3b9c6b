"""KIE's callbacks, verified: an unguessable per-task URL, an optional HMAC signature, and never trusted alone.

When KLING_PUBLIC_URL is set, createTask carries `callBackUrl=<KLING_PUBLIC_URL>/kie/callback/<token>`; the
ledger keeps only a hash of the token. With KIE_WEBHOOK_KEY (KIE's webhookHmacKey) set, a callback must carry
`X-Webhook-Signature == base64(HMAC_SHA256(key, taskId + "." + X-Webhook-Timestamp))` with a timestamp within five
minutes, and a replay is refused. Either way the body is only a hint: the follower confirms it with one
recordInfo before the ledger changes, so a forged body can never mark a task done by itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from lib.history.row import HistoryRow
from lib.storage.base import LedgerStore
from lib.trust.limits import InputTooLarge, loads_bounded

log = logging.getLogger(__name__)

ROUTE = "/kie/callback/{token}"
MAX_BODY_BYTES = 256 * 1024
MAX_SKEW_S = 300
SEEN_MAX = 10_000


def public_url(environ: Mapping[str, str] | None = None) -> str | None:
    """KLING_PUBLIC_URL: the address KIE can reach this server at (e.g. behind a reverse proxy), or None."""
    value = (environ if environ is not None else os.environ).get("KLING_PUBLIC_URL", "").strip().rstrip("/")
    return value or None


def webhook_key(environ: Mapping[str, str] | None = None) -> str | None:
    """KIE_WEBHOOK_KEY: KIE's webhookHmacKey, to verify callback signatures (None: confirm every callback)."""
    value = (environ if environ is not None else os.environ).get("KIE_WEBHOOK_KEY", "").strip()
    return value or None


def token_key(token: str) -> str:
    """What the ledger keeps of a callback token: a one-way hash (the token itself is a bearer secret)."""
    return hashlib.sha256(f"kling-callback|{token}".encode()).hexdigest()[:40]


@dataclass(frozen=True)
class CallbackAddress:
    """A fresh callback URL for one task, and the hash of its token to store with the task."""

    url: str
    key: str


def new_callback(base: str) -> CallbackAddress:
    """An unguessable per-task callback URL under `base`."""
    token = secrets.token_urlsafe(24)
    return CallbackAddress(f"{base.rstrip('/')}{ROUTE.format(token=token)}", token_key(token))


def sign(key: str, task_id: str, timestamp: str) -> str:
    """KIE's webhook signature: base64(HMAC_SHA256(key, taskId + "." + timestamp))."""
    digest = hmac.new(key.encode(), f"{task_id}.{timestamp}".encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class Hints(Protocol):
    """Who confirms a callback (the server-side follower)."""

    def hint(self, task_id: str) -> None: ...


@dataclass(frozen=True)
class Answer:
    """The HTTP answer to one callback."""

    status: int
    body: dict[str, Any]


@dataclass
class CallbackReceiver:
    """Checks a callback and hands it to the follower; answers at once (KIE wants an answer within 15 s)."""

    ledger: LedgerStore
    follower: Hints
    key: str | None = None
    clock: Callable[[], float] = time.time
    _seen: OrderedDict[tuple[str, str, str], None] = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, token: str, headers: Mapping[str, str], body: bytes) -> Answer:
        """Verify one POST to /kie/callback/<token>; never changes the ledger itself."""
        if len(body) > MAX_BODY_BYTES:
            return Answer(413, {"error": "callback body too large"})
        try:
            data = loads_bounded(body or b"{}", max_bytes=MAX_BODY_BYTES, what="The callback")
        except (InputTooLarge, ValueError):
            return Answer(400, {"error": "callback body is not JSON"})
        inner = data.get("data") if isinstance(data, dict) and isinstance(data.get("data"), dict) else {}
        claimed = str(inner.get("taskId") or inner.get("task_id") or "")
        row = self._row_for(token, claimed)
        if row is None:
            return Answer(404, {"error": "unknown callback"})
        if claimed and claimed != row.task_id:
            return Answer(400, {"error": "task id does not match this callback"})
        refused = self._check_signature(row.task_id, headers)
        if refused is not None:
            return refused
        if row.finished:
            return Answer(200, {"received": True, "note": "already final"})  # the same callback twice: no change
        self.follower.hint(row.task_id)
        log.info("callback for %s accepted; confirming with recordInfo", row.task_id)
        return Answer(200, {"received": True})

    def _row_for(self, token: str, claimed: str) -> HistoryRow | None:
        key = token_key(token)
        if claimed:
            row = self.ledger.get(claimed)
            if row is not None and hmac.compare_digest(row.callback_key, key):
                return row
        return next((r for r in self.ledger.unfinished() if r.callback_key and hmac.compare_digest(r.callback_key,
                                                                                                   key)), None)

    def _check_signature(self, task_id: str, headers: Mapping[str, str]) -> Answer | None:
        if self.key is None:
            return None
        lowered = {k.lower(): v for k, v in headers.items()}
        stamp, given = lowered.get("x-webhook-timestamp", ""), lowered.get("x-webhook-signature", "")
        if not stamp or not given or not hmac.compare_digest(sign(self.key, task_id, stamp), given):
            return Answer(401, {"error": "bad signature"})
        try:
            skew = abs(self.clock() - float(stamp))
        except ValueError:
            return Answer(400, {"error": "bad timestamp"})
        if skew > MAX_SKEW_S:
            return Answer(400, {"error": "timestamp too far from now"})
        seen = (task_id, stamp, given)
        with self._lock:
            if seen in self._seen:
                return Answer(409, {"error": "replayed callback"})
            self._seen[seen] = None
            while len(self._seen) > SEEN_MAX:
                self._seen.popitem(last=False)
        return None
