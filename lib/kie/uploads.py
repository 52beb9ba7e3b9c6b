"""Uploads to KIE's file host: stream (multipart), base64 (JSON) and URL upload, with a typed result."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import mimetypes
import os
import re
import secrets
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import IO, TYPE_CHECKING, Any, Literal

import requests

from lib.common.clock import parse_time
from lib.kie.errors import KieError
from lib.kie.models import UploadedFile
from lib.kling.problems import url_problem
from lib.trust.fetch import Allowance, FetchRefused, check_url, guarded_session

if TYPE_CHECKING:  # lib.kie.client does not import this module, but uploads take a client only as a parameter
    from lib.kie.client import KieClient

log = logging.getLogger(__name__)

STREAM_PATH = "/api/file-stream-upload"
BASE64_PATH = "/api/file-base64-upload"
URL_PATH = "/api/file-url-upload"
BASE64_MAX_BYTES = 10 * 1024 * 1024
# One KIE doc copy deletes uploads after 24 h, another after 3 days: check after 24 h, always re-upload after 72 h.
CHECK_AFTER = timedelta(hours=24)
REUPLOAD_AFTER = timedelta(hours=72)
LIVENESS_TIMEOUT = (3.0, 5.0)
UPLOAD_TIMEOUT = (10.0, 300.0)
METHODS = ("auto", "stream", "base64", "url")
METHOD_HELP = ("Auto: local files are streamed (multipart, no extra copy in memory); web addresses use URL "
               "upload so KIE fetches them itself. Base64 is only used when you pick it (files up to 10 MB).")


def upload_check_needed(uploaded_at: datetime | str | None,
                        now: datetime | None = None) -> Literal["fresh", "check", "reupload"]:
    """The age policy for an upload KIE may have deleted: <24 h fresh, 24–72 h check it, ≥72 h (or unknown) re-upload."""
    when = uploaded_at
    if isinstance(when, str):
        try:
            when = parse_time(when)
        except ValueError:
            when = None
    if not isinstance(when, datetime):
        return "reupload"
    when = when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    age = (now or datetime.now(timezone.utc)) - when
    if age >= REUPLOAD_AFTER:
        return "reupload"
    return "check" if age >= CHECK_AFTER else "fresh"


def is_upload_alive(session_or_client: requests.Session | KieClient, url: str,
                    timeout: float | tuple[float, float] = LIVENESS_TIMEOUT) -> bool:
    """Whether KIE's file host still serves `url`: a HEAD, else a 1-byte ranged GET. Never sends the API key.

    Any doubt (gone, expired, unreachable, e.g. a sandbox URL on an old port) is False: re-uploading is free."""
    session = getattr(session_or_client, "session", session_or_client)
    try:
        head = session.request("HEAD", url, timeout=timeout, allow_redirects=True)
        if head.status_code in (200, 204, 206):
            return True
        if head.status_code in (403, 404, 410):  # deleted, or a signed link that expired
            return False
        # HEAD refused or unclear (405, 501, 5xx): one tiny GET decides
        with session.request("GET", url, headers={"Range": "bytes=0-0"}, timeout=timeout, stream=True,
                             allow_redirects=True) as resp:
            return resp.status_code in (200, 206)
    except requests.RequestException as exc:
        log.info("liveness check of an upload failed: %s", type(exc).__name__)
        return False


def liveness_checker(allow_private: Allowance = False) -> Callable[[str], bool]:
    """is_upload_alive under the server-side fetch rule (lib.trust.fetch): public hosts only, plus the origins
    `allow_private` names (the sandbox's own file host). A URL the rule refuses counts as gone: it is re-uploaded."""
    session = guarded_session(allow_private)

    def alive(url: str) -> bool:
        try:
            check_url(url, allow_private)
            return is_upload_alive(session, url)
        except FetchRefused as exc:
            log.info("liveness check refused by the fetch rule: %s", exc)
            return False

    return alive


def content_digest(source: IO[bytes] | bytes | str) -> str:
    """SHA-256 (hex) of bytes, of a file object from its position (which is restored), or of a URL's text."""
    digest = hashlib.sha256()
    if isinstance(source, str):
        digest.update(b"url:" + source.encode("utf-8"))
    elif isinstance(source, bytes | bytearray | memoryview):
        digest.update(source)
    else:
        start = source.tell()
        while chunk := source.read(1 << 20):
            digest.update(chunk)
        source.seek(start)
    return digest.hexdigest()


def unique_upload_name(original_name: str, digest: str, token: str | None = None) -> str:
    """`<first 16 hex of the content hash>-<8 random hex>.<ext>`: a name no other upload ever gets.

    KIE overwrites an upload with the same uploadPath + fileName (and its CDN may serve either copy), so the
    original name is kept only for display. The random part keeps even identical bytes from replacing a file
    that an earlier task still points at."""
    ext = os.path.splitext(original_name or "")[1].lower()
    ext = ext if re.fullmatch(r"\.[a-z0-9]{1,5}", ext) else ""
    return f"{digest[:16]}-{token or secrets.token_hex(4)}{ext}"


def clean_upload_path(path: str) -> str:
    """KIE wants uploadPath without leading/trailing slashes."""
    cleaned = re.sub(r"[^A-Za-z0-9_\-/]", "-", path).strip("/")
    return re.sub(r"/+", "/", cleaned) or "kling-studio"


def choose_method(source: object, method: str = "auto") -> str:
    """Auto: URL upload for http(s) strings, stream for file objects; a forced method wins."""
    if method not in METHODS:
        raise ValueError(f"Unknown upload method {method!r}: use one of {', '.join(METHODS)}")
    is_url = isinstance(source, str)
    if method == "auto":
        return "url" if is_url else "stream"
    if is_url and method != "url":
        raise KieError("A web address can only be sent by URL upload", "Choose Auto or URL as the upload method.")
    if not is_url and method == "url":
        raise KieError("A local file cannot be sent by URL upload", "Choose Auto, Stream or Base64.")
    return method


def _size_of(fileobj: IO[bytes]) -> int:
    pos = fileobj.tell()
    fileobj.seek(0, os.SEEK_END)
    size = fileobj.tell()
    fileobj.seek(pos)
    return size - pos


def upload_file(client: KieClient, source: IO[bytes] | str, *, file_name: str, upload_path: str,
                method: str = "auto") -> UploadedFile:
    """Upload a binary file object or an http(s) URL to KIE's file host, under a name that never collides.

    `file_name` is the person's name for the file (kept as `original_name`); KIE gets `unique_upload_name`."""
    chosen = choose_method(source, method)
    path = clean_upload_path(upload_path)
    if chosen == "url":
        url = str(source)
        if url_problem(url):
            raise KieError(f"{url[:60]!r} is not an http(s) address", "Use a web address starting with https://.")
        body = {"fileUrl": url, "uploadPath": path, "fileName": unique_upload_name(file_name, content_digest(url))}
        resp = client.request("POST", client.upload_base + URL_PATH, json=body, timeout=UPLOAD_TIMEOUT)
    else:
        wire_name = unique_upload_name(file_name, content_digest(source))
        send = _upload_base64 if chosen == "base64" else _upload_stream
        resp = send(client, source, wire_name, path)  # type: ignore[arg-type]
    data = resp.get("data") if isinstance(resp.get("data"), dict) else {}
    result = UploadedFile.from_json(data, chosen, original_name=file_name)
    log.info("uploaded %s as %s by %s (%d bytes)", file_name, result.file_name, chosen, result.size)
    return result


def _upload_base64(client: KieClient, fileobj: IO[bytes], file_name: str, path: str) -> dict[str, Any]:
    size = _size_of(fileobj)
    if size > BASE64_MAX_BYTES:
        raise KieError(f"{file_name} is {size / 1048576:.1f} MB; base64 upload takes at most 10 MB",
                       "Use Auto or Stream for this file.")
    body = _Base64JsonStream(fileobj, size, file_name, {"uploadPath": path, "fileName": file_name})
    return client.request("POST", client.upload_base + BASE64_PATH, data=body,
                          headers={"Content-Type": "application/json"}, timeout=UPLOAD_TIMEOUT)


class _Base64JsonStream:
    """The base64 upload's JSON body, encoded chunk by chunk (no whole-file copies) with a known length."""

    CHUNK = 3 * 64 * 1024  # a multiple of 3 keeps every chunk's base64 free of padding but the last

    def __init__(self, fileobj: IO[bytes], size: int, file_name: str, fields: dict[str, str]) -> None:
        mime = mimetypes.guess_type(file_name)[0] or "application/octet-stream"
        self._head = f'{{"base64Data": "data:{mime};base64,'.encode("ascii")
        self._tail = ('", ' + json.dumps(fields)[1:]).encode("utf-8")
        self._file, self._start = fileobj, fileobj.tell()
        self.length = len(self._head) + 4 * ((size + 2) // 3) + len(self._tail)

    def __len__(self) -> int:  # requests frames the body by this length (never chunked)
        return self.length

    def __iter__(self) -> Iterator[bytes]:
        self._file.seek(self._start)  # a retried request re-reads the file from where it began
        yield self._head
        carry = b""
        while chunk := self._file.read(self.CHUNK):
            chunk = carry + chunk
            cut = len(chunk) - len(chunk) % 3  # short reads must not put padding mid-stream
            carry = chunk[cut:]
            yield base64.b64encode(chunk[:cut])
        yield base64.b64encode(carry) + self._tail


class _MultipartStream:
    """A multipart/form-data body read straight from the file object, with a known length."""

    def __init__(self, fileobj: IO[bytes], file_name: str, fields: dict[str, str]) -> None:
        self.boundary = "kling-studio-" + os.urandom(12).hex()
        mime = mimetypes.guess_type(file_name)[0] or "application/octet-stream"
        head = "".join(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
            for k, v in fields.items())
        safe_name = file_name.replace('"', "_").replace("\r", "_").replace("\n", "_")
        head += (f'--{self.boundary}\r\nContent-Disposition: form-data; name="file"; filename="{safe_name}"\r\n'
                 f"Content-Type: {mime}\r\n\r\n")
        self._head = head.encode("utf-8")
        self._tail = f"\r\n--{self.boundary}--\r\n".encode("ascii")
        self._file, self._start = fileobj, fileobj.tell()
        self.length = len(self._head) + _size_of(fileobj) + len(self._tail)

    def __len__(self) -> int:  # requests frames the body by this length (never chunked)
        return self.length

    def __iter__(self) -> Iterator[bytes]:
        self._file.seek(self._start)  # a retried request re-reads the file from where it began
        yield self._head
        while chunk := self._file.read(256 * 1024):
            yield chunk
        yield self._tail


def _upload_stream(client: KieClient, fileobj: IO[bytes], file_name: str, path: str) -> dict[str, Any]:
    body = _MultipartStream(fileobj, file_name, {"uploadPath": path, "fileName": file_name})
    headers = {"Content-Type": f"multipart/form-data; boundary={body.boundary}"}
    return client.request("POST", client.upload_base + STREAM_PATH, data=body, headers=headers,
                          timeout=UPLOAD_TIMEOUT)
