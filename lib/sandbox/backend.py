"""The offline KIE's state and rules (tasks, files, credits, clock, progress, faults); no HTTP here."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hmac
import json
import logging
import mimetypes
import os
import secrets
import shutil
import string
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import parse_qs, unquote, urlsplit

logger = logging.getLogger(__name__)

STAGES = ("waiting", "queuing", "generating", "success")
SEED_STATES = {"waiting": "pending", "queuing": "pending", "generating": "processing",
               "success": "completed", "fail": "failed"}
UPLOAD_TTL_S = 3 * 24 * 3600  # kie-api.md §4: uploads are deleted after 3 days
DOWNLOAD_LINK_TTL_S = 20 * 60  # kie-api.md §8: temporary links last 20 minutes
UPLOAD_ROOT = "kieai/sandbox"
STATE_FILE = "sandbox_state.json"
FILES_DIR = "sandbox_files"
CENT = Decimal("0.01")
MAGIC = ((b"\x89PNG", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF8", "image/gif"))
EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/gif": ".gif", "image/webp": ".webp",
              "video/mp4": ".mp4", "video/quicktime": ".mov"}


class SandboxError(Exception):
    """An API-host failure: body `code` + `msg`, sent with `http_status` (200 unless the quirk says otherwise)."""

    def __init__(self, code: int, msg: str, http_status: int = 200) -> None:
        super().__init__(msg)
        self.code, self.msg, self.http_status = code, msg, http_status


class UploadError(Exception):
    """An upload-host failure: the upload host answers with the real HTTP status."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code, self.msg = code, msg


@dataclasses.dataclass
class SandboxConfig:
    """Progress mode and injectable faults; `*_once` and `fail_next_task` count down, the rest persist."""

    progress: str = "wall"
    every_n: int = 1
    seconds: float = 6.0
    fail_next_task: int = 0
    fail_all_tasks: bool = False
    rate_limit_once: int = 0
    retry_after: int = 2
    maintenance: bool = False
    server_error: bool = False
    drop_connection_once: int = 0
    html_error_once: int = 0
    malformed_json_once: int = 0  # the request is handled, then the JSON answer arrives cut off
    slow_seconds: float = 0.0
    message_key: str = "msg"
    disable_recordinfo: bool = False
    required_key: str | None = None
    max_upload_bytes: int = 100 * 1024 * 1024

    def update(self, options: dict[str, Any]) -> None:
        """Set options by name, coercing to each field's type; raises ValueError on a bad one."""
        fields = {field.name: field for field in dataclasses.fields(self)}
        for name, value in options.items():
            if name not in fields:
                raise ValueError(f"unknown sandbox option {name!r}")
            setattr(self, name, _coerce(name, value, getattr(self, name)))
        if self.progress not in ("immediate", "queries", "wall"):
            raise ValueError("progress must be immediate, queries or wall")
        if self.message_key not in ("msg", "message"):
            raise ValueError("message_key must be msg or message")
        if self.every_n < 1 or self.seconds < 0 or self.slow_seconds < 0:
            raise ValueError("every_n must be >= 1; seconds and slow_seconds >= 0")

    def public(self) -> dict[str, Any]:
        """The options as JSON, with the required key masked."""
        data = dataclasses.asdict(self)
        data["required_key"] = "***" if self.required_key else None
        return data


def _coerce(name: str, value: Any, current: Any) -> Any:
    """Convert a JSON option value to the type of the option's current value."""
    if name == "required_key":
        return str(value) if value else None
    if isinstance(current, bool):
        return bool(value)
    if isinstance(current, int):
        return int(value)  # True → 1, so {"rate_limit_once": true} means "once"
    if isinstance(current, float):
        return float(value)
    return str(value)


@dataclasses.dataclass
class SandboxTask:
    """One createTask call, with the progress settings it was created under."""

    task_id: str
    model: str
    payload: dict[str, Any]
    create_ms: int
    cost: int
    progress: str
    every_n: int
    seconds: float
    fail: bool
    queries: int = 0
    state: str = "waiting"
    complete_ms: int | None = None


class SandboxBackend:
    """Thread-safe in-memory KIE with optional JSON persistence under `data_dir`."""

    def __init__(
        self,
        data_dir: Path | None = None,
        clock: Callable[[], float] = time.time,
        credits: Decimal = Decimal("1000.00"),
        **config: Any,
    ) -> None:
        self._lock = threading.RLock()
        self._render_lock = threading.Lock()
        self._clock = clock
        self._owned_tmp = None if data_dir else tempfile.mkdtemp(prefix="kie-sandbox-")
        self.data_dir = Path(data_dir) if data_dir else None
        self.files_root = Path(data_dir or self._owned_tmp) / FILES_DIR
        self.files_root.mkdir(parents=True, exist_ok=True)
        self.base_url = "http://127.0.0.1"
        self._initial_credits = Decimal(credits).quantize(CENT)
        self._initial_config = dict(config)
        self.config = SandboxConfig()
        self.config.update(config)
        self.credits = self._initial_credits
        self.clock_offset = 0.0
        self.tasks: dict[str, SandboxTask] = {}
        self.files: dict[str, dict[str, Any]] = {}
        self._load()

    # ---- clock, config, persistence -------------------------------------------------------
    def now(self) -> float:
        """Backend time in seconds: the injected clock plus any `advance()`."""
        return self._clock() + self.clock_offset

    def advance(self, seconds: float) -> float:
        """Move the backend clock forward without sleeping; returns the new offset."""
        with self._lock:
            self.clock_offset += float(seconds)
            self._save()
            return self.clock_offset

    def configure(self, **options: Any) -> dict[str, Any]:
        """Change progress/fault options (and `credits`, the balance); returns the public config."""
        with self._lock:
            if "credits" in options:
                self.credits = Decimal(str(options.pop("credits"))).quantize(CENT)
                self._save()
            self.config.update(options)
            return self.config.public()

    def state(self) -> dict[str, Any]:
        """A summary for tests and demos."""
        with self._lock:
            return {"tasks": len(self.tasks), "files": len(self.files), "credits": float(self.credits),
                    "clock_offset": self.clock_offset, "config": self.config.public()}

    def reset(self) -> None:
        """Forget every task and file; restore the starting credits, clock and config."""
        with self._lock:
            self.tasks.clear()
            self.files.clear()
            shutil.rmtree(self.files_root, ignore_errors=True)
            self.files_root.mkdir(parents=True, exist_ok=True)
            self.credits, self.clock_offset = self._initial_credits, 0.0
            self.config = SandboxConfig()
            self.config.update(self._initial_config)
            self._save()

    def close(self) -> None:
        """Remove the temporary directory the backend created (if any)."""
        if self._owned_tmp:
            shutil.rmtree(self._owned_tmp, ignore_errors=True)

    def _state_path(self) -> Path | None:
        return self.data_dir / STATE_FILE if self.data_dir else None

    def _load(self) -> None:
        path = self._state_path()
        if not path or not path.exists():
            return
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:  # keep the bad file for inspection, start clean
            logger.warning("Sandbox state %s is unreadable (%s); starting fresh", path, exc)
            os.replace(path, path.with_suffix(".corrupt"))
            return
        self.credits = Decimal(data["credits"])
        self.clock_offset = float(data.get("clock_offset", 0.0))
        self.tasks = {key: SandboxTask(**value) for key, value in data.get("tasks", {}).items()}
        self.files = dict(data.get("files", {}))
        logger.info("Sandbox restored %d tasks and %d files from %s", len(self.tasks), len(self.files), path)

    def _save(self) -> None:
        """Write the state atomically (temp file + rename) so a crash never leaves half a file."""
        path = self._state_path()
        if not path:
            return
        data = {"version": 1, "credits": str(self.credits), "clock_offset": self.clock_offset,
                "tasks": {key: dataclasses.asdict(task) for key, task in self.tasks.items()},
                "files": self.files}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".sandbox_state-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
        os.replace(tmp, path)

    # ---- auth and faults ------------------------------------------------------------------
    def authorize(self, header: str | None) -> bool:
        """Accept any non-empty Bearer token, or only `required_key` when one is configured."""
        scheme, _, token = (header or "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return False
        required = self.config.required_key
        return required is None or hmac.compare_digest(token.encode(), required.encode())

    def take_fault(self) -> str | None:
        """The fault to inject into this request (one-shot faults are used up), or None."""
        with self._lock:
            config = self.config
            for name in ("drop_connection_once", "html_error_once", "rate_limit_once", "malformed_json_once"):
                if getattr(config, name) > 0:
                    setattr(config, name, getattr(config, name) - 1)
                    return name.removesuffix("_once")
            if config.maintenance:
                return "maintenance"
            return "server_error" if config.server_error else None

    # ---- tasks ----------------------------------------------------------------------------
    def create_task(self, payload: Any) -> dict[str, str]:
        """Validate, price and debit a createTask request; returns {taskId, recordId}."""
        from lib.pricing import estimate_credits
        from lib.validation import validate_payload

        if not isinstance(payload, dict):
            raise SandboxError(422, "Request body must be a JSON object")
        errors = [problem for problem in validate_payload(payload) if problem.level == "error"]
        if errors:
            raise SandboxError(422, errors[0].message)
        try:
            cost = int(estimate_credits(payload))
        except ValueError as exc:  # validation should have caught it; answer as KIE would
            raise SandboxError(422, str(exc)) from exc
        with self._lock:
            if Decimal(cost) > self.credits:
                raise SandboxError(402, "Insufficient Credits")
            task = self._new_task(payload, cost)
            self.credits -= Decimal(cost)
            self.tasks[task.task_id] = task
            self._save()
        logger.info("Sandbox created %s (%d credits)", task.task_id, cost)
        return {"taskId": task.task_id, "recordId": task.task_id}

    def _new_task(self, payload: dict[str, Any], cost: int) -> SandboxTask:
        config = self.config
        fail = config.fail_all_tasks or config.fail_next_task > 0
        config.fail_next_task = max(0, config.fail_next_task - 1)
        model = str(payload.get("model", ""))
        now_ms = int(self.now() * 1000)
        while True:
            task_id = f"task_{model.split('/')[0] or 'model'}_{now_ms}{secrets.randbelow(10**4):04d}"
            if task_id not in self.tasks:
                break
        return SandboxTask(task_id=task_id, model=model, payload=payload, create_ms=now_ms, cost=cost,
                           progress=config.progress, every_n=config.every_n, seconds=config.seconds,
                           fail=fail)

    def record_info(self, task_id: str | None, seed_vocabulary: bool = False) -> dict[str, Any]:
        """Count a status query, advance the task and return recordInfo's `data`."""
        if not task_id:
            raise SandboxError(400, "taskId parameter is required")
        with self._lock:
            task = self.tasks.get(task_id)
            if task is None:
                if seed_vocabulary:
                    raise SandboxError(404, "Task not found")
                raise SandboxError(422, "recordInfo is null")
            task.queries += 1
            self._progress(task)
            self._save()
            record = self._record(task)
        if seed_vocabulary:
            record["state"] = SEED_STATES[record["state"]]
        return record

    def _progress(self, task: SandboxTask) -> None:
        """Move a task along waiting→queuing→generating→success (or fail), deterministically."""
        if task.state in ("success", "fail"):
            return
        now_ms = int(self.now() * 1000)
        if task.progress == "immediate":
            stage = 3
        elif task.progress == "queries":
            stage = min(3, task.queries // task.every_n)
        else:  # wall: from the stored create time, so progress survives a restart
            elapsed = (now_ms - task.create_ms) / 1000
            stage = 3 if elapsed >= task.seconds else min(2, int(elapsed * 4 / max(task.seconds, 1e-9)))
            now_ms = min(now_ms, task.create_ms + int(task.seconds * 1000))
        if stage < 3:
            task.state = STAGES[stage]
            return
        task.complete_ms = now_ms
        task.state = "fail" if task.fail else "success"
        if task.fail:
            self.credits += Decimal(task.cost)  # failed tasks are not charged (kie-api.md §6)

    def _record(self, task: SandboxTask) -> dict[str, Any]:
        """recordInfo's `data` with KIE's quirks: JSON strings, nulls until done, no updateTime."""
        done = task.state in ("success", "fail")
        result = ""
        if task.state == "success":
            result = json.dumps({"resultUrls": [f"{self.base_url}/files/results/{task.task_id}.mp4"]})
        return {
            "taskId": task.task_id,
            "model": task.model,
            "state": task.state,
            "param": _param_string(task.payload),
            "resultJson": result,
            "failCode": "501" if task.state == "fail" else None,
            "failMsg": "Generation failed (sandbox fault injection)" if task.state == "fail" else None,
            "costTime": round((task.complete_ms - task.create_ms) / 1000) if done else None,
            "completeTime": task.complete_ms if done else None,
            "createTime": task.create_ms,
            "creditsConsumed": task.cost if task.state == "success" else 0,
        }

    def balance(self) -> Decimal:
        """The remaining credits (2 decimals)."""
        with self._lock:
            return self.credits

    # ---- files ----------------------------------------------------------------------------
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
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(head)
            rest = _copy_capped(source, handle, self.config.max_upload_bytes - len(head))
        size = len(head) + rest
        if rest < 0 or size > self.config.max_upload_bytes:
            os.unlink(tmp)
            raise UploadError(413, f"File size exceeds the {self.config.max_upload_bytes} byte limit")
        os.replace(tmp, target)
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
        """The task's animatic, rendered on first request and cached on disk."""
        with self._lock:
            task = self.tasks.get(task_id)
            if task is None or task.state != "success":
                return None
            payload = task.payload
        path = self.files_root / "results" / f"{task_id}.mp4"
        with self._render_lock:
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                video = self._render(payload)
                tmp = path.with_suffix(".tmp")
                tmp.write_bytes(video)
                os.replace(tmp, path)
        return path

    def _render(self, payload: dict[str, Any]) -> bytes:
        """Render the job's shots, blending in the first frame when it is a sandbox file."""
        from lib.sandbox.animatic import FRAME_SIZES, render_animatic

        data = payload.get("input") if isinstance(payload.get("input"), dict) else {}
        first = self._first_frame(data.get("image_urls"))
        aspect = data.get("aspect_ratio")
        if aspect not in FRAME_SIZES:
            aspect = _closest_aspect(first) if first else "16:9"
        return render_animatic(_shots(data), aspect, first)

    def _first_frame(self, image_urls: Any) -> bytes | None:
        if not isinstance(image_urls, list) or not image_urls or not isinstance(image_urls[0], str):
            return None
        found = self.resolve_file(image_urls[0]) if self.is_own_file_url(image_urls[0]) else None
        return found[0].read_bytes() if isinstance(found, tuple) else None


class _BytesReader:
    """A minimal binary reader over bytes (avoids a second copy in BytesIO)."""

    def __init__(self, data: bytes) -> None:
        self._view, self._pos = memoryview(data), 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._view) if size < 0 else self._pos + size
        chunk = bytes(self._view[self._pos:end])
        self._pos += len(chunk)
        return chunk


def _param_string(payload: dict[str, Any]) -> str:
    """The create request as a JSON string with `input` JSON-encoded again inside it (live quirk)."""
    request = dict(payload)
    if "input" in request:
        request["input"] = json.dumps(request["input"], ensure_ascii=False, separators=(",", ":"))
    return json.dumps(request, ensure_ascii=False, separators=(",", ":"))


def _shots(data: dict[str, Any]) -> list[tuple[str, int]]:
    """The (prompt, seconds) list the animatic shows: multi_prompt's shots or the single prompt."""
    shots = data.get("multi_prompt") if data.get("multi_shots") else None
    if isinstance(shots, list) and shots:
        return [(str(shot.get("prompt", "")), max(1, _int(shot.get("duration"), 1)))
                for shot in shots if isinstance(shot, dict)] or [("", 5)]
    return [(str(data.get("prompt", "")), max(1, _int(data.get("duration"), 5)))]


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _closest_aspect(image_bytes: bytes) -> str:
    """The supported aspect ratio nearest the image's (the output follows the first frame)."""
    from io import BytesIO

    from PIL import Image

    try:
        with Image.open(BytesIO(image_bytes)) as image:
            ratio = image.width / image.height
    except (OSError, ValueError, ZeroDivisionError):
        return "16:9"
    return min({"16:9": 16 / 9, "9:16": 9 / 16, "1:1": 1.0}.items(), key=lambda item: abs(item[1] - ratio))[0]


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


def _copy_capped(source: BinaryIO, target: BinaryIO, limit: int) -> int:
    """Copy in 1 MiB chunks; returns bytes copied, or -1 once more than `limit` bytes arrive."""
    copied = 0
    while chunk := source.read(1 << 20):
        copied += len(chunk)
        if copied > limit:
            return -1
        target.write(chunk)
    return copied


def _iso_z(seconds: float) -> str:
    """UTC ISO-8601 with milliseconds and a Z, like KIE's uploadedAt."""
    stamp = datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")
