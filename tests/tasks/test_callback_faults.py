"""The sandbox's callback faults against the real receiver and follower: none sent, sent twice, badly signed, late.
Whatever arrives, each task ends archived, with at most two recordInfo queries, and a forged callback changes
nothing by itself."""

from __future__ import annotations

import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lib.kie.client import KieClient
from lib.sandbox.server import start_sandbox
from lib.storage.files import open_file_storage
from lib.tasks.callbacks import CallbackReceiver
from lib.tasks.submit import submit_payload
from lib.tasks.worker import SAFETY_FIRST_S, Follower

KEY = "sandbox-hmac"
PAYLOAD = {"model": "kling-3.0/video", "input": {"prompt": "a lantern", "duration": "3", "mode": "std",
                                                 "sound": False, "aspect_ratio": "16:9", "multi_shots": False}}


class Receiver:
    def __init__(self, receiver: CallbackReceiver) -> None:
        self.statuses: list[int] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                match = re.fullmatch(r"/kie/callback/([\w-]+)", self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                answer = receiver.handle(match.group(1) if match else "", dict(self.headers), body)
                outer.statuses.append(answer.status)
                self.send_response(answer.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.mark.parametrize(("mode", "statuses"), [
    ("send", [200]), ("twice", [200, 409]), ("bad_signature", [401]), ("none", []), ("late", [200]),
])
def test_every_callback_fault_ends_archived_with_few_queries(tmp_path: Path, mode: str, statuses: list[int]) -> None:
    sandbox = start_sandbox(data_dir=tmp_path / "sandbox", progress="wall", seconds=0.5)
    client = KieClient("sandbox-demo", sandbox.base_url, sandbox.base_url)
    storage = open_file_storage(tmp_path)
    follower = Follower(storage, lambda row: client, allow_private=(sandbox.base_url,), callbacks_on=True)
    receiver = Receiver(CallbackReceiver(storage.ledger, follower, KEY))
    sandbox.backend.configure(callback_origins=receiver.base, webhook_key=KEY, callback_mode=mode,
                              callback_delay_s=1.0)
    try:
        row = submit_payload(client, storage.ledger, PAYLOAD, origin="sandbox", batch_id="b",
                             callbacks_to=receiver.base).row
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(receiver.statuses) < len(statuses):
            follower.run_once()  # a hinted task is confirmed at once; otherwise nothing is due yet
            time.sleep(0.1)
        time.sleep(0.5)  # a second (duplicate) callback, if any, has arrived by now
        follower.run_once()
        assert receiver.statuses == statuses
        if storage.media.video(row.task_id) is None:  # no valid callback: the slow safety poll finds it
            assert storage.ledger.get(row.task_id).state == "queued"  # a forged/absent callback changed nothing
            follower.run_once(now=row.created_at.timestamp() + SAFETY_FIRST_S)
        assert storage.ledger.get(row.task_id).state == "succeeded" and storage.media.video(row.task_id)
        assert sandbox.backend.tasks[row.task_id].queries <= 2
    finally:
        receiver.httpd.shutdown()
        sandbox.stop()
