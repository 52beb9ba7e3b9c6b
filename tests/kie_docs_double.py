"""A stand-in for KIE written from KIE's public documentation only — deliberately NOT the app's sandbox.

It answers with the documented examples' shapes where they differ from the sandbox's live-observed quirks:
`message` (not `msg`) on recordInfo, `failCode`/`failMsg` as "" (not null), `updateTime` present, `costTime` in ms,
an integer credit balance, no `recordId`. Live mode must work against it unchanged.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


def _tiny_mp4() -> bytes:
    from lib.sandbox.animatic import render_animatic  # only to get playable bytes to serve

    return render_animatic([("docs double", 3)], "16:9")


class DocsKie:
    """State of the double: tasks advance one documented state per recordInfo query."""

    STATES = ("waiting", "queuing", "generating", "success")

    def __init__(self, api_key: str, credits: int = 100) -> None:
        self.api_key, self.credits = api_key, credits
        self.tasks: dict[str, dict[str, Any]] = {}
        self.files: dict[str, tuple[bytes, str]] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.fail_next: tuple[str, str] | None = None  # (failCode, failMsg) for the next task created
        self.refuse_creates = 0  # GS: over 20 new tasks per 10 s "will be rejected with HTTP 429" (no Retry-After)
        self.lock = threading.Lock()
        self.base_url = ""

    def start(self) -> DocsKie:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                double.handle(self, "GET")

            def do_POST(self) -> None:  # noqa: N802
                double.handle(self, "POST")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # ---- wire --------------------------------------------------------------------------------
    def handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        url = urlparse(h.path)
        self.requests.append((method, url.path, dict(h.headers)))
        if url.path.startswith("/files/"):
            data, mime = self.files.get(url.path, (b"", ""))
            return self._send(h, 200 if data else 404, data or b"not found", mime or "text/plain")
        if h.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._json(h, {"code": 401, "msg": "You do not have access permissions"})
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length) if length else b""
        route = (method, url.path)
        if route == ("POST", "/api/v1/jobs/createTask"):
            if self.refuse_creates > 0:
                self.refuse_creates -= 1
                return self._json(h, {"code": 429, "msg": "Rate limited", "data": None}, status=429)
            return self._json(h, self.create(json.loads(raw or b"{}")))
        if route == ("GET", "/api/v1/jobs/recordInfo"):
            return self._json(h, self.record(parse_qs(url.query).get("taskId", [""])[0]))
        if route == ("GET", "/api/v1/chat/credit"):
            return self._json(h, {"code": 200, "msg": "success", "data": self.credits})
        if route == ("POST", "/api/file-stream-upload"):
            return self._json(h, self.store_multipart(h.headers.get("Content-Type", ""), raw))
        return self._json(h, {"code": 404, "msg": "Not Found"}, status=404)

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("model") != "kling-3.0/video":
            return {"code": 422, "msg": "model is not supported", "data": None}
        task_id = f"task_kling-3.0_{int(time.time() * 1000)}{uuid.uuid4().hex[:4]}"
        with self.lock:
            self.tasks[task_id] = {"body": body, "queries": 0, "created": int(time.time() * 1000),
                                   "fail": self.fail_next}
            self.fail_next = None
        return {"code": 200, "msg": "success", "data": {"taskId": task_id}}

    def record(self, task_id: str) -> dict[str, Any]:
        with self.lock:
            task = self.tasks.get(task_id)
            if task is None:
                return {"code": 422, "message": "recordInfo is null", "data": None}
            task["queries"] += 1
            state = self.STATES[min(task["queries"] - 1, len(self.STATES) - 1)]
        fail_code, fail_msg = task["fail"] or ("", "")
        if fail_code and state == "success":
            state = "fail"  # documented: no creditsConsumed on recordInfo, failCode/failMsg as strings
        result = ""
        if state == "success":
            path = f"/files/{task_id}.mp4"
            if path not in self.files:
                self.files[path] = (_tiny_mp4(), "video/mp4")
            result = json.dumps({"resultUrls": [self.base_url + path]})
        now = int(time.time() * 1000)
        return {"code": 200, "message": "success", "data": {
            "taskId": task_id, "model": "kling-3.0/video", "state": state, "param": json.dumps(task["body"]),
            "resultJson": result, "failCode": fail_code if state == "fail" else "",
            "failMsg": fail_msg if state == "fail" else "", "costTime": 15000 if result else 0,
            "completeTime": now if result else None, "createTime": task["created"], "updateTime": now}}

    def store_multipart(self, content_type: str, raw: bytes) -> dict[str, Any]:
        boundary = content_type.split("boundary=", 1)[-1].strip('"').encode()
        fields: dict[str, tuple[bytes, str | None, str]] = {}
        for part in raw.split(b"--" + boundary)[1:-1]:
            head, _, body = part[2:].partition(b"\r\n\r\n")
            text = head.decode("utf-8", "replace")
            name = text.split('name="', 1)[1].split('"', 1)[0]
            filename = text.split('filename="', 1)[1].split('"', 1)[0] if 'filename="' in text else None
            mime = text.split("Content-Type:", 1)[1].strip() if "Content-Type:" in text else "application/octet-stream"
            fields[name] = (body[:-2], filename, mime)
        if "uploadPath" not in fields:
            return {"success": False, "code": 400, "msg": "Missing required parameter: uploadPath"}
        data, name, mime = fields["file"]
        path = f"/files/{fields['uploadPath'][0].decode()}/{name or 'upload.bin'}"
        self.files[path] = (data, mime)
        return {"success": True, "code": 200, "msg": "File uploaded successfully", "data": {
            "fileName": name, "filePath": path[7:], "downloadUrl": self.base_url + path, "fileSize": len(data),
            "mimeType": mime, "uploadedAt": "2026-02-17T22:03:24.601Z"}}

    @staticmethod
    def _json(h: BaseHTTPRequestHandler, body: dict[str, Any], status: int = 200) -> None:
        DocsKie._send(h, status, json.dumps(body).encode(), "application/json")

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, data: bytes, mime: str) -> None:
        h.send_response(status)
        h.send_header("Content-Type", mime)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)
