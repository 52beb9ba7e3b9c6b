"""The sandbox's file store: uploads (stream, base64, URL), their 3-day expiry, /files/ paths and result videos."""

from __future__ import annotations

import base64
import binascii
import logging
import mimetypes
import secrets
import string
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import parse_qs, unquote, urlsplit

from lib.common.atomic import write_atomically
from lib.sandbox.animatic import render_video
from lib.sandbox.errors import SandboxError, UploadError
from lib.sandbox.jobspec import spec_from_payload

if TYPE_CHECKING:  # the backend mixes this store in, so importing it at run time would be a cycle
    from lib.sandbox.config import SandboxConfig, SandboxTask

logger = logging.getLogger(__name__)

UPLOAD_TTL_S = 3 * 24 * 3600  # kie-api.md §4: uploads are deleted after 3 days
DOWNLOAD_LINK_TTL_S = 20 * 60  # kie-api.md §8: temporary links last 20 minutes
UPLOAD_ROOT = "kieai/sandbox"
MAGIC = ((b"\x89PNG", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"))
EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/webp": ".webp",
              "video/mp4": ".mp4", "video/quicktime": ".mov"}


class SandboxFileStore:
    """The upload host's files, mixed into SandboxBackend, which owns the state, lock, clock and persistence used here."""

    _lock: threading.RLock
    _render_lock: threading.Lock
    base_url: str
    config: SandboxConfig
    files: dict[str, dict[str, Any]]
    files_root: Path
    tasks: dict[str, SandboxTask]
    now: Callable[[], float]
    _save: Callable[[], None]

    def store_upload(self, source: BinaryIO, upload_path: str | None, file_name: str | None,
                     mime_hint: str | None = None) -> dict[str, Any]:
        """Save an uploaded file under kieai/sandbox/<uploadPath>/<fileName>; returns the upload `data`."""
        folder = _clean_upload_path(upload_path)
        head = source.read(16)
        mime = _guess_mime(file_name, head, mime_hint)
        name = _clean_file_name(file_name) if file_name else _random_name(mime, self.now())
        file_path = f"{UPLOAD_ROOT}/{folder}/{name}"
        target = self.files_root / file_path
        target.parent.mkdir(parents=True, exist_ok=True)
        capped = _CappedReader(source, head, self.config.max_upload_bytes)
        write_atomically(target, capped, fsync=False)  # a refused or broken-off upload leaves nothing behind
        size = capped.count
        with self._lock:
            uploaded = self.now()
            self.files[file_path] = {"size": size, "mime_type": mime, "uploaded_at": uploaded}
            self._save()
        return {"success": True, "fileName": name, "filePath": file_path,
                "downloadUrl": f"{self.base_url}/files/{file_path}", "fileSize": size, "mimeType": mime,
                "uploadedAt": _iso_z(uploaded)}

    def store_base64(self, data: Any, upload_path: str | None, file_name: str | None) -> dict[str, Any]:
        """Decode plain base64 or a data: URL and store it."""
        if not isinstance(data, str) or not data:
            raise UploadError(400, "Missing required parameter: base64Data")
        _clean_upload_path(upload_path)
        mime_hint = None
        if data.startswith("data:"):
            header, _, data = data.partition(",")
            mime_hint = header[5:].split(";")[0] or None
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise UploadError(400, "Base64 decoding failed: Invalid Base64 format") from exc
        if len(raw) > self.config.max_upload_bytes:
            raise UploadError(413, f"File size exceeds the {self.config.max_upload_bytes} byte limit")
        return self.store_upload(_BytesReader(raw), upload_path, file_name, mime_hint)

    def store_from_url(self, file_url: Any, upload_path: str | None, file_name: str | None) -> dict[str, Any]:
        """Copy a file the sandbox itself serves; it is offline, so any other URL fails."""
        if not isinstance(file_url, str) or not file_url:
            raise UploadError(400, "Missing required parameter: fileUrl")
        _clean_upload_path(upload_path)
        found = self.resolve_file(file_url) if self.is_own_file_url(file_url) else None
        if found is None or isinstance(found, str):
            raise UploadError(400, "Failed to download file from URL")
        path, mime = found
        with path.open("rb") as handle:
            return self.store_upload(handle, upload_path, file_name or path.name, mime)

    def is_own_file_url(self, url: str) -> bool:
        """True for http URLs on this sandbox's host and port under /files/."""
        own, parts = urlsplit(self.base_url), urlsplit(url)
        return (parts.scheme, parts.netloc) == (own.scheme, own.netloc) and parts.path.startswith("/files/")

    def download_url(self, url: Any) -> str:
        """A 20-minute link for a sandbox-generated file; 422 for anything else."""
        if not isinstance(url, str) or not url:
            raise SandboxError(422, "url parameter is required")
        found = self.resolve_file(url) if self.is_own_file_url(url) else None
        if found is None or isinstance(found, str):
            raise SandboxError(422, "Only KIE-generated file URLs are supported")
        plain = urlsplit(url)._replace(query="", fragment="").geturl()
        return f"{plain}?expires={int(self.now() + DOWNLOAD_LINK_TTL_S)}"

    def resolve_file(self, url_or_path: str) -> tuple[Path, str] | str | None:
        """Map a /files/ URL to (disk path, mime); "expired" for a stale temporary link; None if absent."""
        parts = urlsplit(url_or_path)
        relative = unquote(parts.path).removeprefix("/files/").strip("/")
        if not relative or any(segment in ("", ".", "..") for segment in relative.split("/")):
            return None
        expires = parse_qs(parts.query).get("expires")
        if expires and (not expires[0].isdigit() or int(expires[0]) < self.now()):
            return "expired"
        if relative.startswith("results/"):
            path = self._result_video(relative.removeprefix("results/").removesuffix(".mp4"))
            return (path, "video/mp4") if path else None
        with self._lock:
            meta = self.files.get(relative)
            if meta is None:
                return None
            if self.now() >= meta["uploaded_at"] + UPLOAD_TTL_S:
                del self.files[relative]  # expired uploads are deleted, as KIE does after 3 days
                (self.files_root / relative).unlink(missing_ok=True)
                self._save()
                return None
        path = self.files_root / relative
        return (path, meta["mime_type"]) if path.is_file() else None

    def _result_video(self, task_id: str) -> Path | None:
        """The task's video, rendered on first request (or earlier by prerender) and cached on disk."""
        with self._lock:
            task = self.tasks.get(task_id)
            if task is None or task.state != "success":
                return None
        return self._rendered(task_id)

    def prerender(self, task_id: str) -> None:
        """Render a new task's video in the background while its generation is simulated.

        A 15 s pro job renders in ~3 s on two shared cores (bench/bench_animatic.py), inside the default 8 s
        (KLING_SANDBOX_SECONDS), so the simulated time does not need to grow with duration or mode."""
        threading.Thread(target=self._prerender, args=(task_id,), name=f"render-{task_id}", daemon=True).start()

    def _prerender(self, task_id: str) -> None:
        try:
            self._rendered(task_id)
        except Exception:  # a background render must never take the server down; the GET renders again
            logger.exception("Background render of %s failed", task_id)

    def _rendered(self, task_id: str) -> Path | None:
        with self._lock:
            task = self.tasks.get(task_id)
            payload = task.payload if task else None
        if payload is None:
            return None
        path = self.files_root / "results" / f"{task_id}.mp4"
        with self._render_lock:
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                write_atomically(path, self._render(payload), fsync=False)
        return path

    def _render(self, payload: dict[str, Any]) -> bytes:
        """Render the job: its shots, the @element pictures and frames the sandbox holds, mode, ratio and sound."""
        return render_video(spec_from_payload(payload, self._own_file))

    def _own_file(self, url: str) -> Path | None:
        """The disk file behind one of this sandbox's /files/ URLs (never anything fetched from elsewhere)."""
        found = self.resolve_file(url) if self.is_own_file_url(url) else None
        return found[0] if isinstance(found, tuple) else None


class _BytesReader:
    """A minimal binary reader over bytes (avoids a second copy in BytesIO)."""

    def __init__(self, data: bytes) -> None:
        self._view, self._pos = memoryview(data), 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._view) if size < 0 else self._pos + size
        chunk = bytes(self._view[self._pos:end])
        self._pos += len(chunk)
        return chunk


def _clean_upload_path(upload_path: Any) -> str:
    """uploadPath without outer slashes; required, and never allowed to climb out of the store."""
    if not isinstance(upload_path, str) or not upload_path.strip("/ "):
        raise UploadError(400, "Missing required parameter: uploadPath")
    segments = upload_path.strip("/").split("/")
    if any(segment in ("", ".", "..") or "\\" in segment for segment in segments):
        raise UploadError(400, "Invalid parameter: uploadPath")
    return "/".join(segments)


def _clean_file_name(name: str) -> str:
    if "/" in name or "\\" in name or name in (".", "..") or name.startswith("."):
        raise UploadError(400, "Invalid parameter: fileName")
    return name


def _random_name(mime: str, now: float) -> str:
    """KIE-style random name: <ms>-<11 base36 chars><ext>."""
    alphabet = string.ascii_lowercase + string.digits
    suffix = "".join(secrets.choice(alphabet) for _ in range(11))
    return f"{int(now * 1000)}-{suffix}{EXTENSIONS.get(mime, mimetypes.guess_extension(mime) or '')}"


def _guess_mime(file_name: str | None, head: bytes, hint: str | None) -> str:
    """MIME type from the file name, else the content's magic bytes, else the hint."""
    guessed = mimetypes.guess_type(file_name)[0] if file_name else None
    if guessed:
        return guessed
    for magic, mime in MAGIC:
        if head.startswith(magic):
            return mime
    if head[4:8] == b"ftyp":
        return "video/quicktime" if head[8:10] == b"qt" else "video/mp4"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return hint or "application/octet-stream"


class _CappedReader:
    """`head`, then the rest of `source`; refuses the upload (413) once more than `limit` bytes came through."""

    def __init__(self, source: BinaryIO, head: bytes, limit: int) -> None:
        self._source, self._head, self._limit = source, head, limit
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        chunk, self._head = (self._head, b"") if self._head else (self._source.read(size), b"")
        self.count += len(chunk)
        if self.count > self._limit:
            raise UploadError(413, f"File size exceeds the {self._limit} byte limit")
        return chunk


def _iso_z(seconds: float) -> str:
    """UTC ISO-8601 with milliseconds and a Z, like KIE's uploadedAt."""
    stamp = datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")
