"""The sandbox's thin HTTP layer: KIE's wire format on a loopback ThreadingHTTPServer."""

from __future__ import annotations

import json
import logging
import mimetypes
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from lib.sandbox.backend import SandboxBackend
from lib.sandbox.errors import SandboxError, UploadError

logger = logging.getLogger(__name__)

NGINX_502 = (b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
             b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")
UPLOAD_ROUTES = {"/api/file-stream-upload", "/api/file-base64-upload", "/api/file-url-upload"}
SEED_TASK = re.compile(r"^/api/v1/jobs/(?P<task_id>[^/]+)$")
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
MULTIPART_SLACK = 64 * 1024  # room for boundaries and small form fields on top of the file cap


class SandboxServer:
    """A running sandbox: `base_url`, `backend`, and `stop()`."""

    def __init__(self, httpd: ThreadingHTTPServer, backend: SandboxBackend) -> None:
        self.httpd = httpd
        self.backend = backend
        self.stopping = threading.Event()
        host, port = httpd.server_address[:2]
        self.base_url = f"http://{host}:{port}"
        # a short poll interval keeps stop() fast (tests start and stop many sandboxes)
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="kie-sandbox", daemon=True)

    def start(self) -> SandboxServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the socket and remove any temporary storage."""
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)
        self.backend.close()

    def __enter__(self) -> SandboxServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_sandbox(port: int = 0, data_dir: Path | None = None, **config: Any) -> SandboxServer:
    """Start a sandbox KIE on 127.0.0.1:`port` (0 picks a free port) in a background thread."""
    backend = SandboxBackend(data_dir, **config)  # `clock` and `credits` pass through too
    httpd = ThreadingHTTPServer(("127.0.0.1", port), SandboxHandler)
    httpd.daemon_threads = True
    httpd.block_on_close = False
    server = SandboxServer(httpd, backend)
    httpd.sandbox = server  # type: ignore[attr-defined]
    backend.base_url = server.base_url
    logger.info("KIE sandbox listening on %s", server.base_url)
    return server.start()


class SandboxHandler(BaseHTTPRequestHandler):
    """Routes one request to the backend and writes KIE's wire format."""

    protocol_version = "HTTP/1.1"
    server_version = "KieSandbox/1.0"
    disable_nagle_algorithm = True  # headers and body go out separately: without this each answer stalls ~40 ms

    @property
    def sandbox(self) -> SandboxServer:
        return self.server.sandbox  # type: ignore[attr-defined]

    @property
    def backend(self) -> SandboxBackend:
        return self.sandbox.backend

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    # ---- routing --------------------------------------------------------------------------
    def _dispatch(self, method: str) -> None:
        self._body_read = int(self.headers.get("Content-Length") or 0) == 0
        self._garble = False
        url = urlsplit(self.path)
        try:
            if url.path.startswith("/files/") and method in ("GET", "HEAD"):
                self._serve_file(url.path, url.query, head=method == "HEAD")
            elif url.path.startswith("/sandbox/"):
                self._control(method, url.path)
            elif url.path.startswith("/api/"):
                self._api(method, url.path, parse_qs(url.query))
            else:
                self._send_json(404, {"code": 404, "msg": "Not Found", "data": None})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:  # a sandbox bug must still answer, like KIE's 500
            logger.exception("Sandbox failed on %s %s", method, url.path)
            self._send_json(500, {"code": 500, "msg": "Server Error", "data": None})

    def _api(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        if self.backend.config.slow_seconds:
            self.sandbox.stopping.wait(self.backend.config.slow_seconds)
        fault = self.backend.take_fault()
        self._garble = fault == "malformed_json"  # handled normally; only the answer is corrupted
        if fault and not self._garble:
            self._fault(fault)
        elif path in UPLOAD_ROUTES:
            self._upload(method, path)
        elif not self.backend.authorize(self.headers.get("Authorization")):
            self._envelope(401, "You do not have access permissions")
        else:
            self._api_route(method, path, query)

    def _api_route(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        backend = self.backend
        try:
            if (method, path) == ("POST", "/api/v1/jobs/createTask"):
                self._envelope(200, "success", backend.create_task(self._json_body(SandboxError)))
            elif (method, path) == ("GET", "/api/v1/jobs/recordInfo"):
                if backend.config.disable_recordinfo:
                    self._send_json(404, {"code": 404, "msg": "Not Found", "data": None})
                    return
                self._envelope(200, "success", backend.record_info(query.get("taskId", [""])[0]))
            elif (method, path) == ("GET", "/api/v1/chat/credit"):
                self._envelope(200, "success", float(backend.balance()))
            elif (method, path) == ("POST", "/api/v1/common/download-url"):
                body = self._json_body(SandboxError)
                self._envelope(200, "success", backend.download_url(body.get("url") if isinstance(body, dict) else None))
            elif method == "GET" and (match := SEED_TASK.match(path)):
                self._envelope(200, "success", backend.record_info(match["task_id"], seed_vocabulary=True))
            else:
                self._send_json(404, {"code": 404, "msg": "Not Found", "data": None})
        except SandboxError as exc:
            self._envelope(exc.code, exc.msg, http_status=exc.http_status)

    def _fault(self, fault: str) -> None:
        """Answer (or not) the way a struggling KIE does."""
        if fault == "drop_connection":
            self.close_connection = True  # the handler returns without writing a byte
        elif fault == "html_error":
            self._send(502, NGINX_502, "text/html")
        elif fault == "rate_limit":
            retry_after = self.backend.config.retry_after  # negative: no Retry-After header at all
            self._send_json(429, {"code": 429, "msg": "Rate limited", "data": None},
                            {"Retry-After": str(retry_after)} if retry_after >= 0 else None)
        elif fault == "maintenance":
            self._envelope(455, "Service Unavailable: system under maintenance")
        else:
            self._send_json(500, {"code": 500, "msg": "Server Error", "data": None})

    # ---- uploads (real HTTP statuses on this host) ------------------------------------------
    def _upload(self, method: str, path: str) -> None:
        try:
            if method != "POST":
                raise UploadError(405, "Method not allowed")
            if not self.backend.authorize(self.headers.get("Authorization")):
                raise UploadError(401, "Authentication failed: Invalid API Key")
            if path == "/api/file-stream-upload":
                data = self._stream_upload()
            else:
                body = self._json_body(UploadError)
                if not isinstance(body, dict):
                    raise UploadError(400, "Request body must be a JSON object")
                if path == "/api/file-base64-upload":
                    data = self.backend.store_base64(body.get("base64Data"), body.get("uploadPath"),
                                                     body.get("fileName"))
                else:
                    data = self.backend.store_from_url(body.get("fileUrl"), body.get("uploadPath"),
                                                       body.get("fileName"))
        except UploadError as exc:
            self._send_json(exc.code, {"success": False, "code": exc.code, "msg": exc.msg})
            return
        self._send_json(200, {"success": True, "code": 200, "msg": "File uploaded successfully", "data": data})

    def _stream_upload(self) -> dict[str, Any]:
        """Parse multipart/form-data, spooling the file to disk, then store it."""
        from python_multipart import parse_form

        length = self._content_length(UploadError)
        if length > self.backend.config.max_upload_bytes + MULTIPART_SLACK:
            raise UploadError(413, f"File size exceeds the {self.backend.config.max_upload_bytes} byte limit")
        fields: dict[str, str] = {}
        files: list[Any] = []
        headers = {"Content-Type": self.headers.get("Content-Type", ""), "Content-Length": str(length)}
        try:
            parse_form(headers, self.rfile, lambda f: fields.__setitem__(_text(f.field_name), _text(f.value)),
                       files.append)
        except Exception as exc:  # python-multipart raises several types for malformed bodies
            self.close_connection = True
            raise UploadError(400, f"Invalid multipart body: {exc}") from exc
        finally:
            self._body_read = True
        try:
            upload = next((item for item in files if _text(item.field_name) == "file"), None)
            if upload is None:
                raise UploadError(400, "Missing required parameter: file")
            upload.file_object.seek(0)
            original = _text(upload.file_name)
            hint = mimetypes.guess_type(original)[0] if original else None
            return self.backend.store_upload(upload.file_object, fields.get("uploadPath"),
                                             fields.get("fileName") or None, mime_hint=hint)
        finally:
            for item in files:
                item.close()

    # ---- files ------------------------------------------------------------------------------
    def _serve_file(self, path: str, query: str, head: bool) -> None:
        found = self.backend.resolve_file(path + (f"?{query}" if query else ""))
        if found == "expired":
            self._send(403, b"Request has expired\n", "text/plain")
            return
        if not isinstance(found, tuple):
            self._send(404, b"Not Found\n", "text/plain")
            return
        file_path, mime = found
        size = file_path.stat().st_size
        start, end, status = 0, size - 1, 200
        spec = self.headers.get("Range")
        if spec:
            parsed = _parse_range(spec, size)
            if parsed is None:
                self._send(416, b"", "text/plain", {"Content-Range": f"bytes */{size}"})
                return
            (start, end), status = parsed, 206
        # like a CDN: any page (the app on another port) may play or fetch the file
        headers = {"Accept-Ranges": "bytes", "Cache-Control": "no-store", "Access-Control-Allow-Origin": "*"}
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        self._send_head(status, mime, end - start + 1, headers)
        if head:
            return
        with file_path.open("rb") as handle:
            handle.seek(start)
            remaining = end - start + 1
            while remaining > 0 and (chunk := handle.read(min(remaining, 1 << 16))):
                self.wfile.write(chunk)
                remaining -= len(chunk)

    # ---- control (tests and demos) ------------------------------------------------------------
    def _control(self, method: str, path: str) -> None:
        if self.client_address[0] not in ("127.0.0.1", "::1"):
            self._send_json(403, {"error": "sandbox control is loopback-only"})
            return
        backend = self.backend
        try:
            if (method, path) == ("GET", "/sandbox/state"):
                self._send_json(200, backend.state())
            elif (method, path) == ("POST", "/sandbox/config"):
                body = self._json_body(ValueError)
                self._send_json(200, {"config": backend.configure(**body)})
            elif (method, path) == ("POST", "/sandbox/clock"):
                body = self._json_body(ValueError)
                self._send_json(200, {"clock_offset": backend.advance(float(body.get("advance", 0)))})
            elif (method, path) == ("POST", "/sandbox/reset"):
                backend.reset()
                self._send_json(200, backend.state())
            else:
                self._send_json(404, {"error": f"no control endpoint {method} {path}"})
        except (ValueError, TypeError, AttributeError) as exc:
            self._send_json(400, {"error": str(exc)})

    # ---- wire helpers -------------------------------------------------------------------------
    def _content_length(self, error: type[Exception]) -> int:
        raw = self.headers.get("Content-Length")
        if raw is None or not raw.isdigit():
            self.close_connection = True
            raise _make(error, 411, "Content-Length header is required")
        return int(raw)

    def _json_body(self, error: type[Exception]) -> Any:
        """Read and decode the JSON body (capped), raising `error` with a KIE-style message."""
        length = self._content_length(error) if self.headers.get("Content-Length") else 0
        cap = self.backend.config.max_upload_bytes * 4 // 3 + MULTIPART_SLACK
        if length > cap:
            self.close_connection = True
            raise _make(error, 413, "Request body too large")
        raw = self.rfile.read(length) if length else b""
        self._body_read = True
        try:
            return json.loads(raw or b"{}")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            code = 400 if error is UploadError else 422
            raise _make(error, code, "Invalid JSON in request body") from exc

    def _envelope(self, code: int, msg: str, data: Any = None, http_status: int = 200) -> None:
        """KIE's {code, msg|message, data} envelope; errors ride on HTTP 200 (kie-api.md §6)."""
        self._send_json(http_status, {"code": code, self.backend.config.message_key: msg, "data": data})

    def _send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        raw = json.dumps(body).encode()
        if self._garble:
            raw = raw[: len(raw) // 2]  # a truncated body, as a flaky proxy delivers it
        self._send(status, raw, "application/json", headers)

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self._send_head(status, content_type, len(body), headers)
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_head(self, status: int, content_type: str, length: int, headers: dict[str, str] | None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if not self._body_read:
            self.close_connection = True  # an unread body would poison the next keep-alive request
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()


def _make(error: type[Exception], code: int, msg: str) -> Exception:
    return error(code, msg) if error in (SandboxError, UploadError) else error(msg)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")


def _parse_range(spec: str, size: int) -> tuple[int, int] | None:
    """One `bytes=a-b` range (or suffix `bytes=-n`) clipped to the file; None when unsatisfiable."""
    match = RANGE.match(spec.strip())
    if not match or (not match[1] and not match[2]) or size == 0:
        return None
    if not match[1]:
        return max(0, size - int(match[2])), size - 1
    start = int(match[1])
    end = min(int(match[2]), size - 1) if match[2] else size - 1
    return (start, end) if start <= end and start < size else None
