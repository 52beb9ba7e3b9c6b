"""Following tasks: one query per due task, the ledger updated, the result archived (plain Python, no Streamlit)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from lib.common.clock import utc_now
from lib.kie.client import KieClient
from lib.kie.errors import (
    KieError,
)
from lib.kie.models import TaskRecord, TaskState

log = logging.getLogger(__name__)


def _fields_from_record(record: TaskRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {"state": record.state.value, "updated_at": utc_now(), "last_checked_at": utc_now()}
    if record.result_urls:
        fields["result_url"] = record.result_urls[0]
    if record.state is TaskState.FAILED:
        fields["fail_code"] = record.fail_code or ""
        fields["fail_msg"] = record.fail_msg or ""
    if record.credits_consumed is not None and record.state.finished:  # not final while running
        fields["credits_consumed"] = float(record.credits_consumed)
    return fields


def refresh_task(client: KieClient, ledger: Any, row: Any, *, data_dir: Path, allow_private: bool,
                 deadline_s: float | None = None) -> tuple[Any, KieError | None]:
    """Query one task once, record what changed, and archive its video on success."""
    from lib.kie.schedule import DEFAULT_DEADLINE_S, is_stale

    if str(row.task_id).startswith("unknown-"):
        return row, None
    stale = is_stale(row.created_at.timestamp(), time.time(), deadline_s or DEFAULT_DEADLINE_S)
    try:
        record = client.get_task(row.task_id)
    except KieError as exc:
        return ledger.update(row.task_id, last_checked_at=utc_now(), stale=stale), exc
    row = ledger.update(row.task_id, **_fields_from_record(record), stale=stale and not record.state.finished)
    if record.state is TaskState.SUCCEEDED and not row.local_video and record.result_urls:
        return archive_row(ledger, row, record.result_urls, data_dir=data_dir, allow_private=allow_private)
    return row, None


def archive_row(ledger: Any, row: Any, result_urls: tuple[str, ...], *, data_dir: Path,
                allow_private: bool) -> tuple[Any, KieError | None]:
    """Download the result into the data folder so the history never depends on KIE's expiring links."""
    from lib.tasks.archive import ArchiveError, archive_result

    try:
        path = archive_result(result_urls[0], data_dir / "videos", row.task_id, allowed_urls=result_urls,
                              allow_private=allow_private)
    except ArchiveError as exc:
        log.warning("archive of %s failed: %s", row.task_id, exc)
        return row, KieError(f"The video could not be saved locally: {exc}",
                             "It still plays from KIE's link for now; History retries the download.")
    return ledger.update(row.task_id, local_video=str(path), updated_at=utc_now()), None
