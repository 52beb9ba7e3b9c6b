"""Following tasks: which are due, one query per due task, the ledger updated, the result archived.

Plain Python (no Streamlit): the sidebar fragment (lib.ui.follower) calls `follow_tick` today; a server-side
follower can call the same functions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lib.common.clock import utc_now
from lib.history.row import HistoryRow
from lib.kie.client import KieClient
from lib.kie.errors import KieError
from lib.kie.models import TaskRecord, TaskState
from lib.kie.schedule import DEFAULT_DEADLINE_S, is_due, is_stale
from lib.storage.base import LedgerStore, MediaStore
from lib.tasks.archive import ArchiveError, archive_result
from lib.trust.fetch import Allowance

log = logging.getLogger(__name__)

MAX_PER_TICK = 20


def is_followable(row: HistoryRow, origin: str) -> bool:
    """An unfinished task of this mode that the app itself created: imported runs are history, never work
    (only an explicit Check now queries them), and an unknown createTask outcome has no id to query."""
    return (not row.finished and row.origin == origin and row.imported_at is None
            and not str(row.task_id).startswith("unknown-"))


def due_rows(rows: Iterable[HistoryRow], origin: str, now: float | None = None,
             limit: int = MAX_PER_TICK) -> list[HistoryRow]:
    """The followable rows whose next check is due on KIE's polling schedule (at most `limit`)."""
    now = time.time() if now is None else now
    due = []
    for row in rows:
        last = row.last_checked_at.timestamp() if row.last_checked_at else None
        if is_followable(row, origin) and is_due(row.created_at.timestamp(), last, now):
            due.append(row)
            if len(due) >= limit:
                break
    return due


@dataclass(frozen=True)
class TickResult:
    """What one follow tick did: how many tasks finished, and each failure with its task id."""

    finished: int
    errors: tuple[tuple[str, KieError], ...]


def follow_tick(client: KieClient, ledger: LedgerStore, media: MediaStore, rows: Iterable[HistoryRow], *,
                origin: str, allow_private: Allowance) -> TickResult:
    """Query every due row once and record what changed."""
    finished, errors = 0, []
    due = due_rows(rows, origin)
    for row, (new, err) in zip(due, refresh_tasks([(row, client) for row in due], ledger, media,
                                                  allow_private=allow_private), strict=True):
        if err:
            errors.append((row.task_id, err))
        finished += new.finished
    return TickResult(finished, tuple(errors))


def _fields_from_record(record: TaskRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {"state": record.state.value, "updated_at": utc_now(), "last_checked_at": utc_now()}
    if record.result_urls:
        fields["result_url"] = record.result_urls[0]
    if record.state is TaskState.FAILED:
        fields["fail_code"] = record.fail_code or ""
        fields["fail_msg"] = record.fail_msg or ""
    if record.credits_consumed is not None and record.state.finished:  # not final while running
        fields["credits_consumed"] = float(record.credits_consumed)
    if record.cost_time is not None and record.state.finished:
        fields["kie_cost_time"] = float(record.cost_time)
    return fields


@dataclass(frozen=True)
class _Answer:
    """One task's query: the fields to record, KIE's record (None if the query failed) and the error."""

    fields: dict[str, Any]
    record: TaskRecord | None = None
    error: KieError | None = None


def _ask(client: KieClient, row: HistoryRow, deadline_s: float | None) -> _Answer:
    stale = is_stale(row.created_at.timestamp(), time.time(), deadline_s or DEFAULT_DEADLINE_S)
    try:
        record = client.get_task(row.task_id)
    except KieError as exc:
        return _Answer({"last_checked_at": utc_now(), "stale": stale}, error=exc)
    return _Answer({**_fields_from_record(record), "stale": stale and not record.state.finished}, record)


def _record(ledger: LedgerStore, changes: dict[str, dict[str, Any]]) -> list[HistoryRow]:
    """Record the answers: in one write where the store can (the CSV ledger: one fsync per tick, not per task)."""
    update_many = getattr(ledger, "update_many", None)
    if update_many is not None:
        return update_many(changes)
    return [ledger.update(task_id, **fields) for task_id, fields in changes.items()]


def refresh_tasks(jobs: list[tuple[HistoryRow, KieClient]], ledger: LedgerStore, media: MediaStore, *,
                  allow_private: Allowance, deadline_s: float | None = None,
                  ) -> list[tuple[HistoryRow, KieError | None]]:
    """Query each (row, client) once, record every answer in one ledger write, then archive the successes."""
    asked = {row.task_id: _ask(client, row, deadline_s) for row, client in jobs
             if not str(row.task_id).startswith("unknown-")}
    recorded = _record(ledger, {task_id: answer.fields for task_id, answer in asked.items()}) if asked else []
    answers = dict(zip(asked, zip(asked.values(), recorded, strict=True), strict=True))
    out: list[tuple[HistoryRow, KieError | None]] = []
    for row, _ in jobs:
        if row.task_id not in answers:
            out.append((row, None))
            continue
        answer, new = answers[row.task_id]
        record = answer.record
        if record is not None and record.state is TaskState.SUCCEEDED and media.video(new.task_id) is None \
                and record.result_urls:
            out.append(archive_row(ledger, media, new, record.result_urls, allow_private=allow_private))
        else:
            out.append((new, answer.error))
    return out


def refresh_task(client: KieClient, ledger: LedgerStore, media: MediaStore, row: HistoryRow, *,
                 allow_private: Allowance, deadline_s: float | None = None) -> tuple[HistoryRow, KieError | None]:
    """Query one task once, record what changed, and archive its video on success."""
    return refresh_tasks([(row, client)], ledger, media, allow_private=allow_private, deadline_s=deadline_s)[0]


def archive_row(ledger: LedgerStore, media: MediaStore, row: HistoryRow, result_urls: tuple[str, ...], *,
                allow_private: Allowance) -> tuple[HistoryRow, KieError | None]:
    """Download the result into the app's media store so the history never depends on KIE's expiring links."""
    try:
        path = archive_result(result_urls[0], media.staging_dir(), row.task_id, allowed_urls=result_urls,
                              allow_private=allow_private)
        media.put_video(row.task_id, path)
    except ArchiveError as exc:
        log.warning("archive of %s failed: %s", row.task_id, exc)
        return row, KieError(f"The video could not be saved locally: {exc}",
                             "It still plays from KIE's link for now; History retries the download.")
    # local_video records that (and where) the app archived it; it is never read back as a path
    return ledger.update(row.task_id, local_video=f"videos/{path.name}", updated_at=utc_now()), None


def save_locally(client: KieClient, ledger: LedgerStore, media: MediaStore, row: HistoryRow, *,
                 ask_kie: bool, allow_private: Allowance) -> tuple[HistoryRow, KieError | None]:
    """Archive a finished run on request: a fresh link from KIE when this mode can ask (the stored one may
    have expired), else the stored link; either way through the one fetch rule."""
    urls = tuple(u for u in (row.result_url,) if u)
    if ask_kie:
        try:
            urls = client.get_task(row.task_id).result_urls or urls
        except KieError:
            pass  # fall back to the stored link; archive_row reports if that fails too
    if not urls:
        return row, KieError("No result link is known for this run.", "Check it at https://kie.ai/logs.")
    return archive_row(ledger, media, row, urls, allow_private=allow_private)
