"""KIE's typed values: task states (one closed set, one parser), task records and uploaded files."""

from __future__ import annotations

import enum
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from lib.common.clock import parse_time
from lib.kie.errors import (
    KieApiError,
    KieProtocolError,
)

log = logging.getLogger(__name__)


class TaskState(str, enum.Enum):
    """The closed set of task states, whatever vocabulary the server speaks (the app's one vocabulary)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    # Never on the wire (parse_state refuses it): the app's own word for a createTask whose answer was lost
    # after the request may have reached KIE, so a paid task may exist.
    UNKNOWN = "unknown"

    @property
    def finished(self) -> bool:
        """True once the task succeeded or failed: nothing about it changes any more."""
        return self.value in FINISHED_STATES


FINISHED_STATES: frozenset[str] = frozenset({TaskState.SUCCEEDED.value, TaskState.FAILED.value})


_WIRE_STATES = {
    "waiting": TaskState.QUEUED, "queuing": TaskState.QUEUED, "pending": TaskState.QUEUED,
    "generating": TaskState.RUNNING, "processing": TaskState.RUNNING,
    "success": TaskState.SUCCEEDED, "completed": TaskState.SUCCEEDED,
    "fail": TaskState.FAILED, "failed": TaskState.FAILED,
}


def parse_state(wire: object) -> TaskState:
    """Map KIE's (or the seed's) state word to TaskState; an unknown word is an error naming it."""
    state = _WIRE_STATES.get(str(wire).strip().lower()) if wire is not None else None
    if state is None:
        raise KieProtocolError(f"KIE reported an unknown task state {wire!r}",
                               "The API may have changed. Check the task at https://kie.ai/logs.")
    return state


def _loads_maybe(value: Any) -> Any:
    """json.loads for KIE's string-encoded fields; '' and None are empty."""
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _result_urls(data: dict[str, Any]) -> tuple[str, ...]:
    result = _loads_maybe(data.get("resultJson"))
    if result is None:
        result = data.get("result") or data.get("output")
    urls: Any = None
    if isinstance(result, dict):
        urls = result.get("resultUrls") or result.get("result_urls") or result.get("urls")
    elif isinstance(result, list):
        urls = result
    urls = urls if urls is not None else data.get("resultUrls")
    if isinstance(urls, str):
        urls = [urls]
    return tuple(str(u) for u in urls or () if u)


def as_decimal(value: Any) -> Decimal | None:
    """A finite number from KIE's loosely typed fields (number or text), or None."""
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None  # int(NaN) would raise deep inside a status query


@dataclass(frozen=True)
class TaskRecord:
    """One task as KIE reports it, normalised."""

    task_id: str
    state: TaskState
    result_urls: tuple[str, ...] = ()
    fail_code: str | None = None
    fail_msg: str | None = None
    credits_consumed: Decimal | None = None
    cost_time: int | None = None
    create_time: int | None = None
    complete_time: int | None = None
    param: dict[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def from_json(cls, data: dict[str, Any], task_id: str = "") -> TaskRecord:
        """Parse recordInfo's `data` (or the seed path's) with every documented quirk."""
        param = _loads_maybe(data.get("param"))
        if isinstance(param, dict):
            param = {**param, "input": _loads_maybe(param.get("input"))}
        fail_code = data.get("failCode")
        credits = data.get("creditsConsumed", data.get("consumeCredits"))
        return cls(
            task_id=str(data.get("taskId") or data.get("task_id") or task_id),
            state=parse_state(data.get("state", data.get("status"))),
            result_urls=_result_urls(data),
            fail_code=str(fail_code) if fail_code not in (None, "") else None,
            fail_msg=(str(data.get("failMsg")) if data.get("failMsg") not in (None, "") else None),
            credits_consumed=as_decimal(credits),
            cost_time=int(as_decimal(data.get("costTime")) or 0) or None,
            create_time=int(as_decimal(data.get("createTime")) or 0) or None,
            complete_time=int(as_decimal(data.get("completeTime")) or 0) or None,
            param=param if isinstance(param, dict) else None,
        )


UPLOAD_LIFETIME = timedelta(days=3)  # KIE deletes uploaded files this long after upload (the one declaration)


@dataclass(frozen=True)
class UploadedFile:
    """A file on KIE's host; KIE deletes it 3 days after `uploaded_at`."""

    download_url: str
    file_name: str
    file_path: str
    size: int
    mime_type: str
    uploaded_at: datetime
    expires_at: datetime
    method: str
    original_name: str = ""  # the person's file name, for display; `file_name` is the unique name on KIE

    @classmethod
    def from_json(cls, data: dict[str, Any], method: str, original_name: str = "") -> UploadedFile:
        """Parse the upload host's `data` object."""
        url = data.get("downloadUrl") or data.get("fileUrl")
        if not url:
            raise KieApiError(500, "The upload host answered without a downloadUrl")
        uploaded = _parse_time(data.get("uploadedAt") or data.get("uploadTime"))
        return cls(
            download_url=str(url),
            file_name=str(data.get("fileName") or data.get("originalName") or ""),
            file_path=str(data.get("filePath") or ""),
            size=int(as_decimal(data.get("fileSize")) or 0),
            mime_type=str(data.get("mimeType") or "application/octet-stream"),
            uploaded_at=uploaded,
            expires_at=uploaded + UPLOAD_LIFETIME,
            method=method,
            original_name=original_name,
        )


def _parse_time(value: object) -> datetime:
    """The host's upload time (naive means UTC); now when it sent none or an unreadable one."""
    if isinstance(value, str) and value.strip():
        try:
            return parse_time(value)
        except ValueError:
            pass
    return datetime.now(UTC)
