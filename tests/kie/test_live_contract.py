"""Live mode against a server written from KIE's documentation (not the sandbox): create, follow, credits, upload."""

from __future__ import annotations

import hashlib
import io
import re
from decimal import Decimal

import pytest
import requests

from lib.history.ledger import Ledger
from lib.kie.client import KieClient
from lib.kie.errors import KieApiError, advice_for_failure
from lib.kie.models import TaskState
from lib.kie.uploads import upload_file
from lib.tasks.submit import RateLimiter, submit_payload
from tests.conftest import follow_to_end
from tests.kie_docs_double import DocsKie

KEY = "sk-docs-double-000111"
PAYLOAD = {"model": "kling-3.0/video", "input": {"prompt": "A kite over a windy hill", "duration": "5", "mode": "pro",
                                                 "sound": True, "multi_shots": False, "aspect_ratio": "16:9"}}


@pytest.fixture
def kie():
    double = DocsKie(KEY).start()
    yield double
    double.stop()


def test_integer_credits_and_auth(kie) -> None:
    assert KieClient(KEY, kie.base_url, kie.base_url).get_credits() == Decimal(100)
    with pytest.raises(KieApiError) as err:
        KieClient("wrong", kie.base_url, kie.base_url).get_credits()
    assert err.value.code == 401


def test_job_created_and_followed_to_an_archived_result(kie, tmp_path) -> None:
    client = KieClient(KEY, kie.base_url, kie.base_url)
    ledger = Ledger(tmp_path / "history.csv")
    row = submit_payload(client, ledger, PAYLOAD, origin="live", batch_id="b").row
    row, states = follow_to_end(client, ledger, row, tmp_path)
    assert states == ["queued", "queued", "running", "succeeded"]
    assert row.fail_code == "" and row.local_video and row.result_url.startswith(kie.base_url)
    assert [p for m, p, _ in kie.requests if m == "POST"].count("/api/v1/jobs/createTask") == 1


def test_documented_record_shape_parses(kie) -> None:
    client = KieClient(KEY, kie.base_url, kie.base_url)
    task_id = client.create_task(PAYLOAD)
    first = client.get_task(task_id)
    assert first.state is TaskState.QUEUED and first.fail_code is None and first.result_urls == ()
    with pytest.raises(KieApiError) as err:
        client.get_task("task_missing")
    assert err.value.code == 422 and err.value.msg == "recordInfo is null"  # read from `message`


def test_stream_upload_sends_upload_path_and_parses_the_documented_response(kie) -> None:
    client = KieClient(KEY, kie.base_url, kie.base_url)
    data = b"\x89PNG\r\n\x1a\n" + b"0" * 100
    up = upload_file(client, io.BytesIO(data), file_name="f.png", upload_path="kling/el")
    assert re.search(r"/kling/el/[0-9a-f]{16}-[0-9a-f]{8}\.png$", up.download_url)
    assert up.size == 108 and up.method == "stream" and up.original_name == "f.png"
    assert up.file_name.startswith(hashlib.sha256(data).hexdigest()[:16])


def test_same_original_name_never_overwrites_on_a_host_that_overwrites_by_name(kie) -> None:
    # The double, like KIE, replaces a file uploaded again under the same uploadPath + fileName.
    client = KieClient(KEY, kie.base_url, kie.base_url)
    first_bytes, second_bytes = b"\x89PNG\r\n\x1a\nfirst", b"\x89PNG\r\n\x1a\nsecond"
    first = upload_file(client, io.BytesIO(first_bytes), file_name="first_frame.png", upload_path="kling-studio/frames")
    second = upload_file(client, io.BytesIO(second_bytes), file_name="first_frame.png",
                         upload_path="kling-studio/frames")
    again = upload_file(client, io.BytesIO(first_bytes), file_name="first_frame.png", upload_path="kling-studio/frames")
    assert len({first.download_url, second.download_url, again.download_url}) == 3
    assert requests.get(first.download_url, timeout=5).content == first_bytes
    assert requests.get(second.download_url, timeout=5).content == second_bytes


def test_get_requests_carry_the_json_content_type_getting_started_asks_for(kie) -> None:
    client = KieClient(KEY, kie.base_url, kie.base_url)
    client.get_credits()
    client.get_task(client.create_task(PAYLOAD))
    gets = [headers for method, path, headers in kie.requests if method == "GET" and path.startswith("/api/")]
    assert len(gets) == 2 and all(h.get("Content-Type") == "application/json" for h in gets)


def test_http_429_on_create_is_paced_and_creates_one_task(kie, tmp_path) -> None:
    kie.refuse_creates = 2
    client, ledger = KieClient(KEY, kie.base_url, kie.base_url), Ledger(tmp_path / "history.csv")
    now, told = [0.0], []
    limiter = RateLimiter(clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + s))
    sub = submit_payload(client, ledger, PAYLOAD, origin="live", batch_id="b", limiter=limiter, on_wait=told.append)
    assert sub.error is None and len(kie.tasks) == 1 and [r.state for r in ledger.rows()] == ["queued"]
    assert len(told) == 2 and told[0] >= 2.0 and told[1] >= 3.0 and now[0] == pytest.approx(sum(told))
    assert [p for m, p, _ in kie.requests if m == "POST"].count("/api/v1/jobs/createTask") == 3


@pytest.mark.parametrize(("fail", "advice_has"), [
    (("500", "Generation failed: content moderation"), "Change the prompt or the images"),
    (("422", "duration cannot be greater than 15"), "Fix duration"),
    (("500", "Internal error"), "Try again in a minute"),
])
def test_failed_task_gets_advice_from_code_and_message_and_no_assumed_credits(kie, tmp_path, fail, advice_has) -> None:
    from lib.history import view as hv
    kie.fail_next = fail
    client, ledger = KieClient(KEY, kie.base_url, kie.base_url), Ledger(tmp_path / "history.csv")
    row = submit_payload(client, ledger, PAYLOAD, origin="live", batch_id="b").row
    row, states = follow_to_end(client, ledger, row, tmp_path)
    assert states[-1] == "failed" and (row.fail_code, row.fail_msg) == fail
    assert advice_has in advice_for_failure(row.fail_code, row.fail_msg)
    assert hv.credits_text(row).endswith("consumed not reported")  # the double, like KIE's docs, sent none
