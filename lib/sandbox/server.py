"""The sandbox's thin HTTP layer: KIE's wire format on a loopback ThreadingHTTPServer (routes: lib.sandbox.wire)."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from lib.sandbox import wire
from lib.sandbox.backend import SandboxBackend
from lib.sandbox.callbacks import CallbackSender
from lib.sandbox.errors import SandboxError, UploadError

logger = logging.getLogger(__name__)

NGINX_502 = (b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
             b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n")


class SandboxServer:
    """A running sandbox: `base_url`, `backend`, and `stop()`."""

    def __init__(self, httpd: ThreadingHTTPServer, backend: SandboxBackend) -> None:
        self.httpd = httpd
        self.backend = backend
        self.stopping = threading.Event()
        host, port = httpd.server_address[:2]
        self.base_url = f"http://{host}:{port}"
        self.callbacks = CallbackSender(backend)
        # a short poll interval keeps stop() fast (tests start and stop many sandboxes)
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="kie-sandbox", daemon=True)

    def start(self) -> SandboxServer:
        self._thread.start()
        self.callbacks.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the socket and remove any temporary storage."""
        self.stopping.set()
        self.callbacks.stop()
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
    """Finds each request's route (lib.sandbox.wire), runs its area's shared checks, and writes KIE's wire format."""

    protocol_version = "HTTP/1.1"
    server_version = "KieSandbox/1.0"
    disable_nagle_algorithm = True  # headers and body go out separately: without this each answer stalls ~40 ms
    body_read = False
    garble = False

    @property
    def sandbox(self) -> SandboxServer:
        """The running sandbox this handler serves."""
        return self.server.sandbox  # type: ignore[attr-defined]

    @property
    def backend(self) -> SandboxBackend:
        """The sandbox's state and rules."""
        return self.sandbox.backend

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        logger.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch("GET")

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch("HEAD")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    # ---- routing: area first (files, control, API), then the area's route table ----------------
    def _dispatch(self, method: str) -> None:
        self.body_read = int(self.headers.get("Content-Length") or 0) == 0
        self.garble = False
        url = urlsplit(self.path)
        try:
            if url.path.startswith("/files/") and method in ("GET", "HEAD"):
                self._serve_file(url.path, url.query, head=method == "HEAD")
            elif url.path.startswith("/sandbox/"):
                self._control(method, url.path)
            elif url.path.startswith("/api/"):
                self._api(method, url.path, parse_qs(url.query))
            else:
                self.send_json(404, wire.NOT_FOUND)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:  # a sandbox bug must still answer, like KIE's 500
            logger.exception("Sandbox failed on %s %s", method, url.path)
            self.send_json(500, {"code": 500, "msg": "Server Error", "data": None})

    def _api(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        if self.backend.config.slow_seconds:
            self.sandbox.stopping.wait(self.backend.config.slow_seconds)
        fault = self.backend.take_fault()
        self.garble = fault == "malformed_json"  # handled normally; only the answer is corrupted
        if fault and not self.garble:
            self._fault(fault)
        elif wire.knows_path(wire.UPLOAD_ROUTES, path):
            self._upload(method, path, query)
        elif not self.backend.authorize(self.headers.get("Authorization")):
            self.envelope(401, "You do not have access permissions")
        elif found := wire.find(wire.API_ROUTES, method, path):
            route, match = found
            try:
                route.endpoint(self, match, query)
            except SandboxError as exc:
                self.envelope(exc.code, exc.msg, http_status=exc.http_status)
        else:
            self.send_json(404, wire.NOT_FOUND)

    def _upload(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        """The upload host answers with real HTTP statuses, checked in KIE's order: method, key, body."""
        try:
            found = wire.find(wire.UPLOAD_ROUTES, method, path)
            if found is None:
                raise UploadError(405, "Method not allowed")
            if not self.backend.authorize(self.headers.get("Authorization")):
                raise UploadError(401, "Authentication failed: Invalid API Key")
            route, match = found
            route.endpoint(self, match, query)
        except UploadError as exc:
            self.send_json(exc.code, {"success": False, "code": exc.code, "msg": exc.msg})

    def _control(self, method: str, path: str) -> None:
        if self.client_address[0] not in ("127.0.0.1", "::1"):
            self.send_json(403, {"error": "sandbox control is loopback-only"})
            return
        found = wire.find(wire.CONTROL_ROUTES, method, path)
        if found is None:
            self.send_json(404, {"error": f"no control endpoint {method} {path}"})
            return
        route, match = found
        try:
            route.endpoint(self, match, {})
        except (ValueError, TypeError, AttributeError) as exc:
            self.send_json(400, {"error": str(exc)})

    def _fault(self, fault: str) -> None:
        """Answer (or not) the way a struggling KIE does."""
        if fault == "drop_connection":
            self.close_connection = True  # the handler returns without writing a byte
        elif fault == "html_error":
            self.send(502, NGINX_502, "text/html")
        elif fault == "rate_limit":
            retry_after = self.backend.config.retry_after  # negative: no Retry-After header at all
            self.send_json(429, {"code": 429, "msg": "Rate limited", "data": None},
                           {"Retry-After": str(retry_after)} if retry_after >= 0 else None)
        elif fault == "maintenance":
            self.envelope(455, "Service Unavailable: system under maintenance")
        else:
            self.send_json(500, {"code": 500, "msg": "Server Error", "data": None})

    # ---- files ------------------------------------------------------------------------------
    def _serve_file(self, path: str, query: str, head: bool) -> None:
        found = self.backend.resolve_file(path + (f"?{query}" if query else ""))
        if found == "expired":
            self.send(403, b"Request has expired\n", "text/plain")
            return
        if not isinstance(found, tuple):
            self.send(404, b"Not Found\n", "text/plain")
            return
        file_path, mime = found
        size = file_path.stat().st_size
        start, end, status = 0, size - 1, 200
        spec = self.headers.get("Range")
        if spec:
            parsed = wire.parse_range(spec, size)
            if parsed is None:
                self.send(416, b"", "text/plain", {"Content-Range": f"bytes */{size}"})
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

    # ---- reading and writing the wire (the endpoints in lib.sandbox.wire use these) -------------
    def content_length(self, error: type[Exception]) -> int:
        """The request's Content-Length, raising `error` (411) when it is missing or not a number."""
        raw = self.headers.get("Content-Length")
        if raw is None or not raw.isdigit():
            self.close_connection = True
            raise wire.make_error(error, 411, "Content-Length header is required")
        return int(raw)

    def json_body(self, error: type[Exception]) -> Any:
        """Read and decode the JSON body (capped), raising `error` with a KIE-style message."""
        length = self.content_length(error) if self.headers.get("Content-Length") else 0
        cap = self.backend.config.max_upload_bytes * 4 // 3 + wire.MULTIPART_SLACK
        if length > cap:
            self.close_connection = True
            raise wire.make_error(error, 413, "Request body too large")
        raw = self.rfile.read(length) if length else b""
        self.body_read = True
        try:
            return json.loads(raw or b"{}")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            code = 400 if error is UploadError else 422
            raise wire.make_error(error, code, "Invalid JSON in request body") from exc

    def envelope(self, code: int, msg: str, data: Any = None, http_status: int = 200) -> None:
        """KIE's {code, msg|message, data} envelope; errors ride on HTTP 200 (kie-api.md §6)."""
        self.send_json(http_status, {"code": code, self.backend.config.message_key: msg, "data": data})

    def send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        """A JSON answer (cut in half when the malformed_json fault is on)."""
        raw = json.dumps(body).encode()
        if self.garble:
            raw = raw[: len(raw) // 2]  # a truncated body, as a flaky proxy delivers it
        self.send(status, raw, "application/json", headers)

    def send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        """A whole answer: status, headers and (except for HEAD) the body."""
        self._send_head(status, content_type, len(body), headers)
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_head(self, status: int, content_type: str, length: int, headers: dict[str, str] | None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if not self.body_read:
            self.close_connection = True  # an unread body would poison the next keep-alive request
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
