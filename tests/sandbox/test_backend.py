"""The offline KIE over real loopback HTTP: endpoints, quirks, faults, files, credits, persistence."""

from __future__ import annotations

import base64
import io
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import av
import pytest
import requests
from PIL import Image

from lib.sandbox.backend import DEFAULT_CREDITS
from lib.sandbox.server import SandboxServer, start_sandbox

AUTH = {"Authorization": "Bearer test-key"}
DAY = 24 * 3600


class FakeClock:
    """Backend time that only moves when a test says so."""

    def __init__(self, start: float = 1_780_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def single(prompt: str = "A red fox runs through snow", duration: str = "5", mode: str = "std",
           sound: bool = False, aspect: str | None = "16:9", **extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"prompt": prompt, "duration": duration, "mode": mode, "sound": sound,
                            "multi_shots": False, **extra}
    if aspect:
        data["aspect_ratio"] = aspect
    return {"model": "kling-3.0/video", "input": data}


def multi(shots: list[tuple[str, int]], aspect: str = "9:16", **extra: Any) -> dict[str, Any]:
    data = {"multi_shots": True, "sound": True, "mode": "pro", "duration": str(sum(d for _, d in shots)),
            "aspect_ratio": aspect, "multi_prompt": [{"prompt": p, "duration": d} for p, d in shots], **extra}
    return {"model": "kling-3.0/video", "input": data}


def png_bytes(colour: tuple[int, int, int] = (220, 20, 20), size: tuple[int, int] = (64, 36)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sandbox(clock: FakeClock):
    server = start_sandbox(progress="immediate", clock=clock)
    yield server
    server.stop()


def api(server: SandboxServer, method: str, path: str, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("headers", AUTH)
    kwargs.setdefault("timeout", 10)
    return requests.request(method, server.base_url + path, **kwargs)


def create(server: SandboxServer, payload: dict[str, Any] | None = None) -> str:
    body = api(server, "POST", "/api/v1/jobs/createTask", json=payload or single()).json()
    assert body["code"] == 200, body
    return body["data"]["taskId"]


def record(server: SandboxServer, task_id: str) -> dict[str, Any]:
    body = api(server, "GET", "/api/v1/jobs/recordInfo", params={"taskId": task_id}).json()
    assert body["code"] == 200, body
    return body["data"]


def configure(server: SandboxServer, **options: Any) -> dict[str, Any]:
    resp = requests.post(server.base_url + "/sandbox/config", json=options, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()["config"]


def upload_b64(server: SandboxServer, data: bytes, name: str | None = "frame.png", path: str = "images") -> dict:
    body = {"base64Data": base64.b64encode(data).decode(), "uploadPath": path}
    if name:
        body["fileName"] = name
    resp = api(server, "POST", "/api/file-base64-upload", json=body)
    assert resp.status_code == 200, resp.text
    return resp.json()["data"]


# ---- createTask and recordInfo --------------------------------------------------------------
def test_create_task_envelope_and_ids(sandbox: SandboxServer) -> None:
    resp = api(sandbox, "POST", "/api/v1/jobs/createTask", json=single())
    body = resp.json()
    assert resp.status_code == 200 and body["code"] == 200 and body["msg"] == "success"
    assert re.fullmatch(r"task_kling-3\.0_\d{17}", body["data"]["taskId"])
    assert body["data"]["recordId"] == body["data"]["taskId"]


def test_success_record_has_kie_quirks(sandbox: SandboxServer) -> None:
    from lib.kling.pricing import estimate_credits

    payload = {**single(), "callBackUrl": "https://example.com/hook"}
    task_id = create(sandbox, payload)
    data = record(sandbox, task_id)
    assert data["state"] == "success" and data["model"] == "kling-3.0/video"
    assert json.loads(data["resultJson"]) == {"resultUrls": [f"{sandbox.base_url}/files/results/{task_id}.mp4"]}
    param = json.loads(data["param"])
    assert isinstance(param["input"], str), "input must be JSON-encoded inside param (double encoding)"
    assert json.loads(param["input"]) == payload["input"]
    assert param["callBackUrl"] == "https://example.com/hook"
    assert data["failCode"] is None and data["failMsg"] is None
    assert "updateTime" not in data
    assert isinstance(data["costTime"], int) and isinstance(data["createTime"], int)
    assert data["completeTime"] >= data["createTime"]
    assert data["creditsConsumed"] == estimate_credits(payload)


@pytest.mark.parametrize(("every_n", "expected"), [
    (1, ["queuing", "generating", "success", "success"]),
    (2, ["waiting", "queuing", "queuing", "generating", "generating", "success"]),
])
def test_queries_progress(sandbox: SandboxServer, every_n: int, expected: list[str]) -> None:
    configure(sandbox, progress="queries", every_n=every_n)
    task_id = create(sandbox)
    states = [record(sandbox, task_id)["state"] for _ in expected]
    assert states == expected


def test_pending_record_is_empty_until_done(sandbox: SandboxServer) -> None:
    configure(sandbox, progress="queries", every_n=5)
    data = record(sandbox, create(sandbox))
    assert data["state"] == "waiting"
    assert data["resultJson"] == "" and data["failCode"] is None and data["failMsg"] is None
    assert data["completeTime"] is None and data["costTime"] is None and data["creditsConsumed"] == 0


@pytest.mark.parametrize(("elapsed", "state"), [
    (0.0, "waiting"), (1.4, "waiting"), (1.6, "queuing"), (3.1, "generating"), (5.9, "generating"), (6.0, "success"),
])
def test_wall_progress_follows_backend_clock(sandbox: SandboxServer, clock: FakeClock, elapsed: float,
                                             state: str) -> None:
    configure(sandbox, progress="wall", seconds=6)
    task_id = create(sandbox)
    clock.now += elapsed
    assert record(sandbox, task_id)["state"] == state


def test_wall_success_reports_cost_time_in_seconds(sandbox: SandboxServer, clock: FakeClock) -> None:
    configure(sandbox, progress="wall", seconds=6)
    task_id = create(sandbox)
    clock.now += 60
    data = record(sandbox, task_id)
    assert data["costTime"] == 6 and data["completeTime"] - data["createTime"] == 6000


@pytest.mark.parametrize(("query", "code", "msg"), [
    ({}, 400, "taskId parameter is required"),
    ({"taskId": ""}, 400, "taskId parameter is required"),
    ({"taskId": "task_kling-3.0_0000"}, 422, "recordInfo is null"),
])
def test_record_info_errors_ride_on_http_200(sandbox: SandboxServer, query: dict, code: int, msg: str) -> None:
    resp = api(sandbox, "GET", "/api/v1/jobs/recordInfo", params=query)
    assert resp.status_code == 200
    assert resp.json() == {"code": code, "msg": msg, "data": None}


def test_validation_error_uses_kie_wording_not_the_apps(sandbox: SandboxServer) -> None:
    payload = single()
    payload["model"] = "nope"
    resp = api(sandbox, "POST", "/api/v1/jobs/createTask", json=payload)
    assert resp.status_code == 200
    assert resp.json() == {"code": 422, "msg": "model is not supported", "data": None}
    assert requests.get(sandbox.base_url + "/sandbox/state", timeout=10).json()["tasks"] == 0


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]"])
def test_create_task_rejects_bad_bodies(sandbox: SandboxServer, body: bytes) -> None:
    resp = api(sandbox, "POST", "/api/v1/jobs/createTask", data=body,
               headers={**AUTH, "Content-Type": "application/json"})
    assert resp.status_code == 200 and resp.json()["code"] == 422


# ---- failures and credits ----------------------------------------------------------------------
def test_fail_next_task_is_one_shot_and_refunds(sandbox: SandboxServer) -> None:
    configure(sandbox, fail_next_task=True)
    failed = record(sandbox, create(sandbox))
    assert failed["state"] == "fail" and failed["failCode"] == "501" and failed["failMsg"]
    assert failed["resultJson"] == "" and failed["creditsConsumed"] == 0
    assert api(sandbox, "GET", "/api/v1/chat/credit").json()["data"] == float(DEFAULT_CREDITS)
    assert record(sandbox, create(sandbox))["state"] == "success"


def test_fail_all_tasks_persists(sandbox: SandboxServer) -> None:
    configure(sandbox, fail_all_tasks=True)
    assert [record(sandbox, create(sandbox))["state"] for _ in range(2)] == ["fail", "fail"]


@pytest.mark.parametrize(("payload", "cost"), [
    (single(duration="5", mode="std", sound=False), 70),
    (multi([("a", 3), ("b", 4)]), 7 * 27),
])
def test_create_debits_credits_as_a_decimal(sandbox: SandboxServer, payload: dict, cost: int) -> None:
    configure(sandbox, credits="500.37")
    create(sandbox, payload)
    body = api(sandbox, "GET", "/api/v1/chat/credit").json()
    assert body["code"] == 200 and body["msg"] == "success"
    assert Decimal(str(body["data"])) == Decimal("500.37") - cost


def test_insufficient_credits(sandbox: SandboxServer) -> None:
    configure(sandbox, credits=69.99)
    resp = api(sandbox, "POST", "/api/v1/jobs/createTask", json=single(duration="5", mode="std"))
    assert resp.status_code == 200 and resp.json()["code"] == 402
    assert resp.json()["msg"] == "Insufficient Credits"
    assert api(sandbox, "GET", "/api/v1/chat/credit").json()["data"] == 69.99


# ---- auth ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("required", "header", "ok"), [
    (None, None, False), (None, "Bearer ", False), (None, "Basic abc", False), (None, "Bearer anything", True),
    ("secret", "Bearer wrong", False), ("secret", "Bearer secret", True),
])
def test_api_auth(sandbox: SandboxServer, required: str | None, header: str | None, ok: bool) -> None:
    configure(sandbox, required_key=required)
    headers = {"Authorization": header} if header is not None else {}
    resp = api(sandbox, "GET", "/api/v1/chat/credit", headers=headers)
    assert resp.status_code == 200
    if ok:
        assert resp.json()["code"] == 200
    else:
        assert resp.json() == {"code": 401, "msg": "You do not have access permissions", "data": None}


def test_upload_host_auth_uses_real_http_401(sandbox: SandboxServer) -> None:
    resp = api(sandbox, "POST", "/api/file-base64-upload", headers={},
               json={"base64Data": "aGk=", "uploadPath": "x"})
    assert resp.status_code == 401
    assert resp.json() == {"success": False, "code": 401, "msg": "Authentication failed: Invalid API Key"}


def test_state_never_shows_the_key(sandbox: SandboxServer) -> None:
    configure(sandbox, required_key="top-secret")
    assert "top-secret" not in requests.get(sandbox.base_url + "/sandbox/state", timeout=10).text


# ---- faults ---------------------------------------------------------------------------------
def test_rate_limit_once_is_real_http_429(sandbox: SandboxServer) -> None:
    configure(sandbox, rate_limit_once=True, retry_after=3)
    resp = api(sandbox, "POST", "/api/v1/jobs/createTask", json=single())
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "3"
    assert resp.json() == {"code": 429, "msg": "Rate limited", "data": None}
    assert requests.get(sandbox.base_url + "/sandbox/state", timeout=10).json()["tasks"] == 0
    assert api(sandbox, "POST", "/api/v1/jobs/createTask", json=single()).json()["code"] == 200


@pytest.mark.parametrize(("option", "http_status", "code", "msg"), [
    ("maintenance", 200, 455, "Service Unavailable: system under maintenance"),
    ("server_error", 500, 500, "Server Error"),
])
def test_persistent_faults(sandbox: SandboxServer, option: str, http_status: int, code: int, msg: str) -> None:
    configure(sandbox, **{option: True})
    for _ in range(2):
        resp = api(sandbox, "GET", "/api/v1/chat/credit")
        assert resp.status_code == http_status and resp.json() == {"code": code, "msg": msg, "data": None}
    configure(sandbox, **{option: False})
    assert api(sandbox, "GET", "/api/v1/chat/credit").json()["code"] == 200


def test_html_error_once(sandbox: SandboxServer) -> None:
    configure(sandbox, html_error_once=True)
    resp = api(sandbox, "GET", "/api/v1/chat/credit")
    assert resp.status_code == 502 and resp.headers["Content-Type"].startswith("text/html")
    assert "502 Bad Gateway" in resp.text and "nginx" in resp.text
    assert api(sandbox, "GET", "/api/v1/chat/credit").status_code == 200


def test_drop_connection_once(sandbox: SandboxServer) -> None:
    configure(sandbox, drop_connection_once=True)
    with pytest.raises(requests.ConnectionError):
        api(sandbox, "POST", "/api/v1/jobs/createTask", json=single())
    assert api(sandbox, "GET", "/api/v1/chat/credit").json()["code"] == 200


def test_slow_seconds_causes_client_timeout(sandbox: SandboxServer) -> None:
    configure(sandbox, slow_seconds=5)
    with pytest.raises(requests.ReadTimeout):
        api(sandbox, "GET", "/api/v1/chat/credit", timeout=(2, 0.2))


def test_message_key_quirk(sandbox: SandboxServer) -> None:
    configure(sandbox, message_key="message")
    body = api(sandbox, "GET", "/api/v1/jobs/recordInfo", params={"taskId": "missing"}).json()
    assert body == {"code": 422, "message": "recordInfo is null", "data": None}


def test_disabled_record_info_falls_back_to_seed_path(sandbox: SandboxServer) -> None:
    configure(sandbox, progress="queries", every_n=1, disable_recordinfo=True)
    task_id = create(sandbox)
    assert api(sandbox, "GET", "/api/v1/jobs/recordInfo", params={"taskId": task_id}).status_code == 404
    states = [api(sandbox, "GET", f"/api/v1/jobs/{task_id}").json()["data"]["state"] for _ in range(3)]
    assert states == ["pending", "processing", "completed"]


def test_seed_path_vocabulary_for_failure_and_unknown(sandbox: SandboxServer) -> None:
    configure(sandbox, fail_next_task=1)
    task_id = create(sandbox)
    assert api(sandbox, "GET", f"/api/v1/jobs/{task_id}").json()["data"]["state"] == "failed"
    assert api(sandbox, "GET", "/api/v1/jobs/task_unknown").json()["code"] == 404


@pytest.mark.parametrize("option", [{"nope": 1}, {"progress": "sometimes"}, {"every_n": 0}, {"message_key": "m"}])
def test_config_rejects_bad_options(sandbox: SandboxServer, option: dict) -> None:
    assert requests.post(sandbox.base_url + "/sandbox/config", json=option, timeout=10).status_code == 400


def test_unknown_api_path_is_404(sandbox: SandboxServer) -> None:
    assert api(sandbox, "POST", "/api/v1/nothing/here", json={}).status_code == 404


# ---- uploads ---------------------------------------------------------------------------------
def test_stream_upload_shape_and_serving(sandbox: SandboxServer, clock: FakeClock) -> None:
    data = png_bytes()
    resp = api(sandbox, "POST", "/api/file-stream-upload",
               files={"file": ("local.png", data, "image/png")}, data={"uploadPath": "/images/user/", "fileName": "a.png"})
    assert resp.status_code == 200
    body = resp.json()
    assert {k: body[k] for k in ("success", "code", "msg")} == {"success": True, "code": 200,
                                                                "msg": "File uploaded successfully"}
    info = body["data"]
    assert info["success"] is True and info["fileName"] == "a.png"
    assert info["filePath"] == "kieai/sandbox/images/user/a.png"
    assert info["downloadUrl"] == f"{sandbox.base_url}/files/kieai/sandbox/images/user/a.png"
    assert info["fileSize"] == len(data) and info["mimeType"] == "image/png"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", info["uploadedAt"])
    served = requests.get(info["downloadUrl"], timeout=10)
    assert served.status_code == 200 and served.content == data
    assert served.headers["Content-Type"] == "image/png" and served.headers["Content-Length"] == str(len(data))


def test_stream_upload_without_file_name_gets_random_name(sandbox: SandboxServer) -> None:
    resp = api(sandbox, "POST", "/api/file-stream-upload",
               files={"file": ("clip.mp4", b"\x00\x00\x00\x18ftypmp42rest", "video/mp4")}, data={"uploadPath": "v"})
    info = resp.json()["data"]
    assert re.fullmatch(r"\d{13}-[a-z0-9]{11}\.mp4", info["fileName"]) and info["mimeType"] == "video/mp4"


@pytest.mark.parametrize(("prefix", "name", "mime"), [
    ("", "x.png", "image/png"),
    ("data:image/png;base64,", None, "image/png"),
])
def test_base64_upload(sandbox: SandboxServer, prefix: str, name: str | None, mime: str) -> None:
    data = png_bytes()
    body = {"base64Data": prefix + base64.b64encode(data).decode(), "uploadPath": "b64"}
    if name:
        body["fileName"] = name
    info = api(sandbox, "POST", "/api/file-base64-upload", json=body).json()["data"]
    assert info["mimeType"] == mime and info["fileSize"] == len(data)
    assert info["fileName"].endswith(".png")
    assert requests.get(info["downloadUrl"], timeout=10).content == data


@pytest.mark.parametrize(("path", "body", "msg"), [
    ("/api/file-base64-upload", {"base64Data": "aGk=", "fileName": "a.txt"}, "Missing required parameter: uploadPath"),
    ("/api/file-url-upload", {"fileUrl": "http://x/y"}, "Missing required parameter: uploadPath"),
    ("/api/file-base64-upload", {"base64Data": "@@not base64@@", "uploadPath": "p"},
     "Base64 decoding failed: Invalid Base64 format"),
    ("/api/file-base64-upload", {"base64Data": "aGk=", "uploadPath": "../../etc"}, "Invalid parameter: uploadPath"),
    ("/api/file-base64-upload", {"base64Data": "aGk=", "uploadPath": "p", "fileName": "../x"},
     "Invalid parameter: fileName"),
])
def test_upload_errors_use_real_http_400(sandbox: SandboxServer, path: str, body: dict, msg: str) -> None:
    resp = api(sandbox, "POST", path, json=body)
    assert resp.status_code == 400
    assert resp.json() == {"success": False, "code": 400, "msg": msg}


def test_stream_upload_requires_upload_path(sandbox: SandboxServer) -> None:
    resp = api(sandbox, "POST", "/api/file-stream-upload", files={"file": ("a.png", png_bytes(), "image/png")})
    assert resp.status_code == 400 and resp.json()["msg"] == "Missing required parameter: uploadPath"


def test_upload_size_cap(sandbox: SandboxServer) -> None:
    configure(sandbox, max_upload_bytes=1000)
    resp = api(sandbox, "POST", "/api/file-stream-upload", files={"file": ("a.bin", b"x" * 5000)},
               data={"uploadPath": "p"})
    assert resp.status_code == 413 and resp.json()["success"] is False
    resp = api(sandbox, "POST", "/api/file-base64-upload",
               json={"base64Data": base64.b64encode(b"x" * 1001).decode(), "uploadPath": "p"})
    assert resp.status_code == 413


def test_upload_endpoint_wrong_method(sandbox: SandboxServer) -> None:
    assert api(sandbox, "GET", "/api/file-stream-upload").status_code == 405


def test_url_upload_copies_own_files(sandbox: SandboxServer) -> None:
    source = upload_b64(sandbox, png_bytes(), "src.png")
    resp = api(sandbox, "POST", "/api/file-url-upload",
               json={"fileUrl": source["downloadUrl"], "uploadPath": "copies", "fileName": "copy.png"})
    assert resp.status_code == 200
    info = resp.json()["data"]
    assert info["filePath"] == "kieai/sandbox/copies/copy.png" and info["mimeType"] == "image/png"
    assert requests.get(info["downloadUrl"], timeout=10).content == png_bytes()


@pytest.mark.parametrize("url", [
    "https://example.com/cat.png", "file:///etc/passwd", "http://localhost:1/files/x.png",
    "{base}/api/v1/chat/credit", "{base}/files/kieai/sandbox/none/missing.png", "{base}/files/../sandbox_state.json",
])
def test_url_upload_refuses_foreign_urls(sandbox: SandboxServer, url: str) -> None:
    resp = api(sandbox, "POST", "/api/file-url-upload",
               json={"fileUrl": url.format(base=sandbox.base_url), "uploadPath": "p"})
    assert resp.status_code == 400
    assert resp.json() == {"success": False, "code": 400, "msg": "Failed to download file from URL"}


@pytest.mark.parametrize(("days", "status"), [(2.99, 200), (3.01, 404)])
def test_uploads_expire_after_three_days(sandbox: SandboxServer, days: float, status: int) -> None:
    info = upload_b64(sandbox, png_bytes())
    requests.post(sandbox.base_url + "/sandbox/clock", json={"advance": days * DAY}, timeout=10).raise_for_status()
    assert requests.get(info["downloadUrl"], timeout=10).status_code == status


# ---- files: Range, results, download-url ------------------------------------------------------
@pytest.mark.parametrize(("header", "status", "span"), [
    ("bytes=0-9", 206, (0, 9)), ("bytes=10-", 206, (10, None)), ("bytes=-5", 206, (-5, None)),
    ("bytes=0-999999", 206, (0, None)), ("bytes=999999-", 416, None), ("bytes=abc", 416, None),
])
def test_range_requests(sandbox: SandboxServer, header: str, status: int, span: tuple | None) -> None:
    data = bytes(range(256)) * 4
    info = upload_b64(sandbox, data, "blob.bin")
    resp = requests.get(info["downloadUrl"], headers={"Range": header}, timeout=10)
    assert resp.status_code == status
    if span is None:
        assert resp.headers["Content-Range"] == f"bytes */{len(data)}"
        return
    start, end = span
    expected = data[start:None if end is None else end + 1]
    assert resp.content == expected and resp.headers["Content-Length"] == str(len(expected))
    first = start % len(data)
    assert resp.headers["Content-Range"] == f"bytes {first}-{first + len(expected) - 1}/{len(data)}"
    assert resp.headers["Accept-Ranges"] == "bytes"


def test_head_gives_length_without_body(sandbox: SandboxServer) -> None:
    info = upload_b64(sandbox, png_bytes())
    resp = requests.head(info["downloadUrl"], timeout=10)
    assert resp.status_code == 200 and resp.headers["Content-Length"] == str(len(png_bytes())) and not resp.content


def test_result_video_is_the_animatic(sandbox: SandboxServer) -> None:
    frame = upload_b64(sandbox, png_bytes((230, 10, 10), (36, 64)), "first.png")
    payload = multi([("wide shot", 2), ("close up", 1)], aspect="9:16", image_urls=[frame["downloadUrl"]])
    task_id = create(sandbox, payload)
    url = json.loads(record(sandbox, task_id)["resultJson"])["resultUrls"][0]
    resp = requests.get(url, timeout=30)
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "video/mp4"
    with av.open(io.BytesIO(resp.content)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (1080, 1920)  # pro at 9:16, as KIE sizes it
        assert container.duration / 1_000_000 == pytest.approx(3.0, abs=0.1)
        first = next(container.decode(video=0)).to_image().getpixel((540, 1500))
    assert first[0] > 120 and first[0] > 2 * first[2], "the red first frame must show through shot 1"


def test_result_missing_until_success(sandbox: SandboxServer) -> None:
    configure(sandbox, progress="queries", every_n=10)
    task_id = create(sandbox)
    assert requests.get(f"{sandbox.base_url}/files/results/{task_id}.mp4", timeout=10).status_code == 404


def test_download_url_gives_20_minute_link(sandbox: SandboxServer) -> None:
    info = upload_b64(sandbox, png_bytes())
    resp = api(sandbox, "POST", "/api/v1/common/download-url", json={"url": info["downloadUrl"]})
    body = resp.json()
    assert resp.status_code == 200 and body["code"] == 200
    link = body["data"]
    assert link.startswith(info["downloadUrl"] + "?expires=")
    assert requests.get(link, timeout=10).content == png_bytes()
    requests.post(sandbox.base_url + "/sandbox/clock", json={"advance": 21 * 60}, timeout=10).raise_for_status()
    assert requests.get(link, timeout=10).status_code == 403


@pytest.mark.parametrize("url", ["https://example.com/video.mp4", "", "{base}/files/results/task_nope.mp4"])
def test_download_url_refuses_external_urls(sandbox: SandboxServer, url: str) -> None:
    resp = api(sandbox, "POST", "/api/v1/common/download-url", json={"url": url.format(base=sandbox.base_url)})
    assert resp.status_code == 200 and resp.json()["code"] == 422


# ---- control and persistence -----------------------------------------------------------------------
def test_state_clock_and_reset(sandbox: SandboxServer) -> None:
    create(sandbox)
    upload_b64(sandbox, png_bytes())
    state = requests.get(sandbox.base_url + "/sandbox/state", timeout=10).json()
    assert state["tasks"] == 1 and state["files"] == 1 and state["credits"] == float(DEFAULT_CREDITS) - 70
    assert requests.post(sandbox.base_url + "/sandbox/clock", json={"advance": 90}, timeout=10).json() == \
        {"clock_offset": 90.0}
    state = requests.post(sandbox.base_url + "/sandbox/reset", timeout=10).json()
    assert (state["tasks"], state["files"], state["credits"], state["clock_offset"]) == (0, 0, float(DEFAULT_CREDITS), 0.0)


def test_restart_keeps_tasks_files_and_wall_progress(tmp_path: Path, clock: FakeClock) -> None:
    first = start_sandbox(data_dir=tmp_path, progress="wall", seconds=6, clock=clock)
    try:
        task_id = create(first)
        info = upload_b64(first, png_bytes())
        clock.now += 2
        assert record(first, task_id)["state"] == "queuing"
    finally:
        first.stop()
    assert (tmp_path / "sandbox_state.json").exists()
    second = start_sandbox(data_dir=tmp_path, progress="immediate", clock=clock)
    try:
        assert record(second, task_id)["state"] == "queuing", "progress settings belong to the task"
        clock.now += 4
        assert record(second, task_id)["state"] == "success"
        assert api(second, "GET", "/api/v1/chat/credit").json()["data"] == float(DEFAULT_CREDITS) - 70
        path = info["downloadUrl"].split("/files/", 1)[1]
        assert requests.get(f"{second.base_url}/files/{path}", timeout=10).content == png_bytes()
    finally:
        second.stop()


class _BrokenUpload(io.RawIOBase):
    """An upload body whose sender disappears after the first chunk."""

    def __init__(self) -> None:
        self.calls = 0

    def read(self, size: int = -1) -> bytes:
        self.calls += 1
        if self.calls > 2:
            raise ConnectionResetError("client went away")
        return b"\x89PNG\r\n\x1a\n" + b"x" * 100


def test_an_interrupted_upload_leaves_no_temporary_file(tmp_path: Path) -> None:
    from lib.sandbox.backend import SandboxBackend

    backend = SandboxBackend(tmp_path)
    with pytest.raises(ConnectionResetError):
        backend.store_upload(_BrokenUpload(), "elements", "a.png")
    assert [p.name for p in backend.files_root.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("state", ['{"credits": "12"', '{"tasks": {}}', '{"credits": "x"}', '[1, 2]',
                                   '{"credits": "5", "tasks": {"t": {"task_id": "t"}}}'])
def test_a_damaged_state_file_is_set_aside_and_the_sandbox_starts_clean(tmp_path: Path, state: str) -> None:
    from lib.sandbox.backend import STATE_FILE, SandboxBackend

    (tmp_path / STATE_FILE).write_text(state)
    backend = SandboxBackend(tmp_path)
    assert backend.tasks == {} and backend.credits == DEFAULT_CREDITS
    assert (tmp_path / STATE_FILE).with_suffix(".corrupt").read_text() == state
