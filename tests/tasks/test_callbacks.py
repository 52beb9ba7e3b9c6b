"""Callbacks: verified, confirmed with recordInfo, idempotent; forged, stale and replayed ones change nothing."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from lib.history.row import HistoryRow
from lib.storage.files import open_file_storage
from lib.tasks.callbacks import CallbackReceiver, new_callback, sign, token_key

KEY = "webhook-secret"
NOW = 1_800_000_000.0


class Hints:
    def __init__(self) -> None:
        self.hinted: list[str] = []

    def hint(self, task_id: str) -> None:
        self.hinted.append(task_id)


def body(task_id: str, state: str = "success") -> bytes:
    return json.dumps({"code": 200, "msg": "success", "data": {"taskId": task_id, "state": state,
                                                              "resultJson": "", "failCode": None}}).encode()


@pytest.fixture
def setup(tmp_path: Path) -> tuple[CallbackReceiver, Hints, str, HistoryRow]:
    storage = open_file_storage(tmp_path)
    address = new_callback("https://studio.example")
    token = address.url.rsplit("/", 1)[1]
    row = HistoryRow(task_id="task-1", origin="sandbox", state="running", callback_key=address.key)
    storage.ledger.append(row)
    hints = Hints()
    return CallbackReceiver(storage.ledger, hints, KEY, clock=lambda: NOW), hints, token, row


def headers(task_id: str, stamp: float = NOW, key: str = KEY) -> dict[str, str]:
    return {"X-Webhook-Timestamp": str(int(stamp)), "X-Webhook-Signature": sign(key, task_id, str(int(stamp)))}


def test_a_valid_callback_is_handed_to_the_follower_and_changes_no_row_by_itself(setup) -> None:
    receiver, hints, token, row = setup
    before = receiver.ledger.get(row.task_id)
    answer = receiver.handle(token, headers(row.task_id), body(row.task_id))
    assert answer.status == 200 and hints.hinted == [row.task_id]
    assert receiver.ledger.get(row.task_id) == before  # only the follower's recordInfo may change it


@pytest.mark.parametrize(("make", "status"), [
    (lambda t: ("wrong-token", headers(t), body(t)), 404),                       # unguessable URL
    (lambda t: (None, headers(t, key="forged"), body(t)), 401),                  # bad signature
    (lambda t: (None, {}, body(t)), 401),                                        # unsigned
    (lambda t: (None, headers(t, stamp=NOW - 301), body(t)), 400),               # stale
    (lambda t: (None, headers(t, stamp=NOW + 301), body(t)), 400),               # from the future
    (lambda t: (None, headers("task-2"), body("task-2")), 400),                  # another task's id
    (lambda t: (None, headers(t), b"{" * 5000), 400),                            # not JSON / too deep
    (lambda t: (None, headers(t), b" " * 300_000), 413),                         # too large
])
def test_forged_stale_and_odd_callbacks_change_nothing(setup, make, status) -> None:
    receiver, hints, token, row = setup
    given_token, given_headers, given_body = make(row.task_id)
    answer = receiver.handle(given_token or token, given_headers, given_body)
    assert answer.status == status and hints.hinted == []


def test_a_replay_is_refused_and_a_duplicate_after_the_end_changes_nothing(setup) -> None:
    receiver, hints, token, row = setup
    signed = headers(row.task_id)
    assert receiver.handle(token, signed, body(row.task_id)).status == 200
    assert receiver.handle(token, signed, body(row.task_id)).status == 409  # the same signed callback again
    receiver.ledger.update(row.task_id, state="succeeded")
    again = receiver.handle(token, headers(row.task_id, stamp=NOW + 1), body(row.task_id))
    assert again.status == 200 and hints.hinted == [row.task_id]  # final already: nothing to confirm


def test_without_a_webhook_key_every_callback_is_still_only_a_hint(setup) -> None:
    receiver, hints, token, row = setup
    open_receiver = replace(receiver, key=None)
    assert open_receiver.handle(token, {}, body(row.task_id, state="success")).status == 200
    assert hints.hinted == [row.task_id] and receiver.ledger.get(row.task_id).state == "running"


def test_the_ledger_keeps_only_a_hash_of_the_token() -> None:
    address = new_callback("https://studio.example/")
    token = address.url.rsplit("/", 1)[1]
    assert address.url.startswith("https://studio.example/kie/callback/") and len(token) >= 32
    assert address.key == token_key(token) and token not in address.key
