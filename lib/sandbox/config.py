"""The offline KIE's settings (progress mode, the faults a test or demo injects through
/sandbox/configure) and its record of one task."""

from __future__ import annotations

import dataclasses
from typing import Any


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
    callback_mode: str = "send"       # send | none | twice | bad_signature | late (lib.sandbox.callbacks)
    callback_delay_s: float = 0.0     # how late a "late" callback is
    webhook_key: str = ""             # signs callbacks like KIE's webhookHmacKey ("" = unsigned)
    callback_origins: str = ""        # comma-separated origins callbacks may go to ("" = none: no SSRF from here)

    def update(self, options: dict[str, Any]) -> None:
        """Set options by name, coercing to each field's type; raises ValueError on a bad one."""
        fields = {field.name: field for field in dataclasses.fields(self)}
        for name, value in options.items():
            if name not in fields:
                raise ValueError(f"unknown sandbox option {name!r}")
            setattr(self, name, _coerce(name, value, getattr(self, name)))
        if self.progress not in ("immediate", "queries", "wall"):
            raise ValueError("progress must be immediate, queries or wall")
        if self.callback_mode not in ("send", "none", "twice", "bad_signature", "late"):
            raise ValueError("callback_mode must be send, none, twice, bad_signature or late")
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
