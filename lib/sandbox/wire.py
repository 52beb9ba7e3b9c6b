"""The sandbox's routes: one table per area, (method, path pattern) → endpoint, and the endpoints themselves.

Each endpoint is a plain function of the request handler, the path match and the query; the handler
(lib.sandbox.server) finds the route, runs the checks every route of an area shares, and writes the answer.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from python_multipart import parse_form

from lib.sandbox.errors import SandboxError, UploadError

if TYPE_CHECKING:  # the handler imports these tables; the type is only for annotations
    from lib.sandbox.server import SandboxHandler

Query = dict[str, list[str]]
Endpoint = Callable[["SandboxHandler", re.Match[str], Query], None]

RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
MULTIPART_SLACK = 64 * 1024  # room for boundaries and small form fields on top of the file cap
NOT_FOUND = {"code": 404, "msg": "Not Found", "data": None}


@dataclass(frozen=True)
class Route:
    """One endpoint: the methods it answers, the whole path it matches, and the function that answers."""

    methods: frozenset[str]
    pattern: re.Pattern[str]
    endpoint: Endpoint

    def match(self, path: str) -> re.Match[str] | None:
        """The path's match (named groups are the endpoint's arguments), or None."""
        return self.pattern.fullmatch(path)


def route(methods: str, pattern: str, endpoint: Endpoint) -> Route:
    """A Route from 'GET' or 'GET HEAD' and a path regex."""
    return Route(frozenset(methods.split()), re.compile(pattern), endpoint)


def find(table: tuple[Route, ...], method: str, path: str) -> tuple[Route, re.Match[str]] | None:
    """The first route answering `method` at `path`, with its match."""
    for entry in table:
        if method in entry.methods and (found := entry.match(path)):
            return entry, found
    return None


def knows_path(table: tuple[Route, ...], path: str) -> bool:
    """Whether any route of the table matches the path, whatever the method (to tell 405 from 404)."""
    return any(entry.match(path) for entry in table)


# ---- KIE's API (behind the key check) ------------------------------------------------------------
def _create_task(h: SandboxHandler, _: re.Match[str], __: Query) -> None:
    h.envelope(200, "success", h.backend.create_task(h.json_body(SandboxError)))


def _record_info(h: SandboxHandler, _: re.Match[str], query: Query) -> None:
    if h.backend.config.disable_recordinfo:
        h.send_json(404, NOT_FOUND)
        return
    h.envelope(200, "success", h.backend.record_info(query.get("taskId", [""])[0]))


def _credit(h: SandboxHandler, _: re.Match[str], __: Query) -> None:
    h.envelope(200, "success", float(h.backend.balance()))


def _download_url(h: SandboxHandler, _: re.Match[str], __: Query) -> None:
    body = h.json_body(SandboxError)
    h.envelope(200, "success", h.backend.download_url(body.get("url") if isinstance(body, dict) else None))


def _seed_task(h: SandboxHandler, match: re.Match[str], _: Query) -> None:
    h.envelope(200, "success", h.backend.record_info(match["task_id"], seed_vocabulary=True))


API_ROUTES: tuple[Route, ...] = (
    route("POST", r"/api/v1/jobs/createTask", _create_task),
    route("GET", r"/api/v1/jobs/recordInfo", _record_info),
    route("GET", r"/api/v1/chat/credit", _credit),
    route("POST", r"/api/v1/common/download-url", _download_url),
    route("GET", r"/api/v1/jobs/(?P<task_id>[^/]+)", _seed_task),  # the seed's task path, after recordInfo
)


# ---- the upload host (its own statuses, checked before the key) --------------------------------
def _json_object(h: SandboxHandler) -> dict[str, Any]:
    body = h.json_body(UploadError)
    if not isinstance(body, dict):
        raise UploadError(400, "Request body must be a JSON object")
    return body


def _uploaded(h: SandboxHandler, data: dict[str, Any]) -> None:
    h.send_json(200, {"success": True, "code": 200, "msg": "File uploaded successfully", "data": data})


def _stream_upload(h: SandboxHandler, _: re.Match[str], __: Query) -> None:
    """Parse multipart/form-data, spooling the file to disk, then store it."""
    length = h.content_length(UploadError)
    limit = h.backend.config.max_upload_bytes
    if length > limit + MULTIPART_SLACK:
        raise UploadError(413, f"File size exceeds the {limit} byte limit")
    fields: dict[str, str] = {}
    files: list[Any] = []
    headers = {"Content-Type": h.headers.get("Content-Type", ""), "Content-Length": str(length)}
    try:
        parse_form(headers, h.rfile, lambda f: fields.__setitem__(_text(f.field_name), _text(f.value)), files.append)
    except Exception as exc:  # python-multipart raises several types for malformed bodies
        h.close_connection = True
        raise UploadError(400, f"Invalid multipart body: {exc}") from exc
    finally:
        h.body_read = True
    try:
        upload = next((item for item in files if _text(item.field_name) == "file"), None)
        if upload is None:
            raise UploadError(400, "Missing required parameter: file")
        upload.file_object.seek(0)
        original = _text(upload.file_name)
        hint = mimetypes.guess_type(original)[0] if original else None
        data = h.backend.store_upload(upload.file_object, fields.get("uploadPath"), fields.get("fileName") or None,
                                      mime_hint=hint)
    finally:
        for item in files:
            item.close()
    _uploaded(h, data)


def _base64_upload(h: SandboxHandler, _: re.Match[str], __: Query) -> None:
    body = _json_object(h)
    _uploaded(h, h.backend.store_base64(body.get("base64Data"), body.get("uploadPath"), body.get("fileName")))


def _url_upload(h: SandboxHandler, _: re.Match[str], __: Query) -> None:
    body = _json_object(h)
    _uploaded(h, h.backend.store_from_url(body.get("fileUrl"), body.get("uploadPath"), body.get("fileName")))


UPLOAD_ROUTES: tuple[Route, ...] = (
    route("POST", r"/api/file-stream-upload", _stream_upload),
    route("POST", r"/api/file-base64-upload", _base64_upload),
    route("POST", r"/api/file-url-upload", _url_upload),
)


# ---- control (tests and demos; loopback only) --------------------------------------------------
def _state(h: SandboxHandler, _: re.Match[str], __: Query) -> None:
    h.send_json(200, h.backend.state())


def _config(h: SandboxHandler, _: re.Match[str], __: Query) -> None:
    h.send_json(200, {"config": h.backend.configure(**h.json_body(ValueError))})


def _clock(h: SandboxHandler, _: re.Match[str], __: Query) -> None:
    body = h.json_body(ValueError)
    h.send_json(200, {"clock_offset": h.backend.advance(float(body.get("advance", 0)))})


def _reset(h: SandboxHandler, _: re.Match[str], __: Query) -> None:
    h.backend.reset()
    h.send_json(200, h.backend.state())


CONTROL_ROUTES: tuple[Route, ...] = (
    route("GET", r"/sandbox/state", _state),
    route("POST", r"/sandbox/config", _config),
    route("POST", r"/sandbox/clock", _clock),
    route("POST", r"/sandbox/reset", _reset),
)


# ---- small wire helpers ------------------------------------------------------------------------
def make_error(error: type[Exception], code: int, msg: str) -> Exception:
    """The error class's instance: KIE-style (code, msg) for the sandbox's own errors, else just the message."""
    return error(code, msg) if error in (SandboxError, UploadError) else error(msg)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value or "")


def parse_range(spec: str, size: int) -> tuple[int, int] | None:
    """One `bytes=a-b` range (or suffix `bytes=-n`) clipped to the file; None when unsatisfiable."""
    found = RANGE.match(spec.strip())
    if not found or (not found[1] and not found[2]) or size == 0:
        return None
    if not found[1]:
        return max(0, size - int(found[2])), size - 1
    start = int(found[1])
    end = min(int(found[2]), size - 1) if found[2] else size - 1
    return (start, end) if start <= end and start < size else None
