"""The sandbox sends KIE's callbacks: when a task with a callBackUrl ends, POST its record in KIE's shape, signed
like KIE (X-Webhook-Timestamp, X-Webhook-Signature) with the sandbox's webhook key, and with injectable faults:
none sent, sent twice, a bad signature, or late. So every path of the app's receiver is tested offline."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    from lib.sandbox.backend import SandboxBackend

log = logging.getLogger(__name__)

CALLBACK_MODES = ("send", "none", "twice", "bad_signature", "late")
POLL_S = 0.25


def callback_body(record: dict[str, Any]) -> dict[str, Any]:
    """KIE's market callback: {code, msg, data: {taskId, state, resultJson, failCode, failMsg, ...}}."""
    ok = record.get("state") == "success"
    return {"code": 200 if ok else 501, "msg": "success" if ok else (record.get("failMsg") or "failed"),
            "data": record}


def signature(key: str, task_id: str, timestamp: str) -> str:
    """base64(HMAC_SHA256(key, taskId + "." + timestamp)), as KIE signs callbacks."""
    return base64.b64encode(hmac.new(key.encode(), f"{task_id}.{timestamp}".encode(), hashlib.sha256).digest()).decode()


class CallbackSender:
    """A thread that notices finished tasks with a callBackUrl and POSTs their callback once (or as faulted)."""

    def __init__(self, backend: SandboxBackend) -> None:
        self.backend = backend
        self.sent: list[tuple[str, int]] = []  # (task id, HTTP status or -1 when the POST failed)
        self._done: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="kie-sandbox-callbacks", daemon=True)

    def start(self) -> CallbackSender:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(POLL_S):
            try:
                self.tick()
            except Exception:  # a broken receiver must not stop the sandbox
                log.exception("sandbox callback tick failed")

    def tick(self) -> None:
        """Send the callbacks that are due."""
        for task_id, url, record in self.backend.finished_callbacks(exclude=self._done):
            config = self.backend.config
            if config.callback_mode == "late" and time.time() - record["completeTime"] / 1000 < config.callback_delay_s:
                continue
            self._done.add(task_id)
            if config.callback_mode == "none":
                continue
            times = 2 if config.callback_mode == "twice" else 1
            for _ in range(times):
                self._post(task_id, url, record, bad=config.callback_mode == "bad_signature")

    def _post(self, task_id: str, url: str, record: dict[str, Any], *, bad: bool) -> None:
        stamp = str(int(time.time()))
        key = self.backend.config.webhook_key
        headers = {"Content-Type": "application/json"}
        if key:
            headers["X-Webhook-Timestamp"] = stamp
            headers["X-Webhook-Signature"] = signature("wrong-" + key if bad else key, task_id, stamp)
        try:
            answer = requests.post(url, data=json.dumps(callback_body(record)), headers=headers, timeout=(2, 5))
            self.sent.append((task_id, answer.status_code))
        except requests.RequestException as exc:
            log.warning("sandbox callback to %s failed: %s", url, exc.__class__.__name__)
            self.sent.append((task_id, -1))
