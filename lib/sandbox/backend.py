"""The offline KIE's state and rules (tasks, credits, clock, progress, faults, persistence); no HTTP here.

The upload host's file store is lib.sandbox.files (mixed into SandboxBackend); errors are in lib.sandbox.errors.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lib.common.atomic import write_atomically
from lib.kling.pricing import estimate_credits
from lib.sandbox.config import SandboxConfig, SandboxTask
from lib.sandbox.errors import SandboxError
from lib.sandbox.files import SandboxFileStore
from lib.sandbox.kie_rules import kie_error

logger = logging.getLogger(__name__)

STAGES = ("waiting", "queuing", "generating", "success")
SEED_STATES = {"waiting": "pending", "queuing": "pending", "generating": "processing",
               "success": "completed", "fail": "failed"}
STATE_FILE = "sandbox_state.json"
FILES_DIR = "sandbox_files"
CENT = Decimal("0.01")
# Play money: enough for a long demo (a 15 s 4K job costs 1,005 credits, a 5 s std one 70), and
# "Reset sandbox credits" in the sidebar (reset_credits) refills it.
DEFAULT_CREDITS = Decimal("10000.00")








class SandboxBackend(SandboxFileStore):
    """Thread-safe in-memory KIE with optional JSON persistence under `data_dir`."""

    def __init__(
        self,
        data_dir: Path | None = None,
        clock: Callable[[], float] = time.time,
        credits: Decimal = DEFAULT_CREDITS,
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

    @property
    def initial_credits(self) -> Decimal:
        """The balance a fresh sandbox (and reset_credits) starts from."""
        return self._initial_credits

    def reset_credits(self) -> Decimal:
        """Refill the play money to the starting balance (tasks and files stay); returns the balance."""
        with self._lock:
            self.credits = self._initial_credits
            self._save()
            logger.info("Sandbox credits reset to %s", self.credits)
            return self.credits

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
            credits = Decimal(data["credits"])
            tasks = {key: SandboxTask(**value) for key, value in data.get("tasks", {}).items()}
            files, offset = dict(data.get("files", {})), float(data.get("clock_offset", 0.0))
        except (OSError, ValueError, KeyError, TypeError, AttributeError, ArithmeticError) as exc:
            logger.warning("Sandbox state %s is unreadable (%s); starting fresh", path, exc)
            os.replace(path, path.with_suffix(".corrupt"))  # kept for inspection
            return
        self.credits, self.clock_offset, self.tasks, self.files = credits, offset, tasks, files
        logger.info("Sandbox restored %d tasks and %d files from %s", len(self.tasks), len(self.files), path)

    def _save(self) -> None:
        """Write the state atomically (temp file + rename) so a crash never leaves half a file."""
        path = self._state_path()
        if not path:
            return
        data = {"version": 1, "credits": str(self.credits), "clock_offset": self.clock_offset,
                "tasks": {key: dataclasses.asdict(task) for key, task in self.tasks.items()},
                "files": self.files}
        write_atomically(path, json.dumps(data).encode("utf-8"), fsync=False)  # a demo store: speed over fsync

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
        if message := kie_error(payload):
            raise SandboxError(422, message)  # KIE's terse words, never lib.kling.validation's explanations
        cost = int(estimate_credits(payload))
        with self._lock:
            if Decimal(cost) > self.credits:
                raise SandboxError(402, "Insufficient Credits")
            task = self._new_task(payload, cost)
            self.credits -= Decimal(cost)
            self.tasks[task.task_id] = task
            self._save()
        logger.info("Sandbox created %s (%d credits)", task.task_id, cost)
        if task.progress == "wall":
            self.prerender(task.task_id)  # the video is ready when the simulated generation ends
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

    def finished_callbacks(self, exclude: set[str]) -> list[tuple[str, str, dict[str, Any]]]:
        """(task id, callBackUrl, record) of ended tasks whose callback is not sent yet; wall-clock tasks are
        advanced without counting a query. Only URLs on an allowed origin (callback_origins) are returned."""
        allowed = {o.strip().rstrip("/") for o in self.config.callback_origins.split(",") if o.strip()}
        out = []
        with self._lock:
            for task in self.tasks.values():
                url = task.payload.get("callBackUrl")
                if task.task_id in exclude or not isinstance(url, str) or not url:
                    continue
                parts = urlsplit(url)
                if f"{parts.scheme}://{parts.netloc}" not in allowed:
                    continue
                self._progress(task)
                if task.state in ("success", "fail"):
                    out.append((task.task_id, url, self._record(task)))
        return out

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


def _param_string(payload: dict[str, Any]) -> str:
    """The create request as a JSON string with `input` JSON-encoded again inside it (live quirk)."""
    request = dict(payload)
    if "input" in request:
        request["input"] = json.dumps(request["input"], ensure_ascii=False, separators=(",", ":"))
    return json.dumps(request, ensure_ascii=False, separators=(",", ":"))
