"""The resumable batch: its plan and every row's state in `<data>/batches/<batch id>.json`, sent row by row.

A row is marked "unknown" (may have reached KIE) and saved BEFORE its createTask, and "sent" (with its task id),
"failed" (refused, nothing created) or back to "planned" (provably not sent: the batch pauses) AFTER it. A row
left "unknown" by a crash is never sent again: on resume it is matched to the ledger row submit_payload wrote
(same batch id and prompt), else it stays unknown with advice to check KIE's logs. Sending is paced by KIE's
RateLimiter (shared per account) and, when KLING_BATCH_RATE="N/S" is set, by N creates per S seconds.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from lib.batch.plan import Plan
from lib.common.atomic import write_atomically
from lib.common.clock import utc_now
from lib.elements.model import ElementError, Uploader, to_element_spec
from lib.kie.client import KieClient
from lib.kie.errors import ValidationError
from lib.kie.uploads import upload_file
from lib.kling.job import build_payload, job_from_payload, referenced_names
from lib.storage.base import LedgerStore, LibraryStore
from lib.tasks.submit import UNKNOWN_MSG, RateLimiter, new_batch_id, submit_payload
from lib.trust.limits import MIB, loads_bounded
from lib.trust.paths import inside

log = logging.getLogger(__name__)

BATCHES_DIR = "batches"
MAX_BATCH_FILE_BYTES = 64 * MIB
STATES = ("planned", "unknown", "sent", "failed", "skipped")
BATCH_ID_RE = re.compile(r"b-[0-9a-f]{10}")
SENDING_MSG = "Being sent. If this stays after a restart, KIE may have the task: check https://kie.ai/logs."
CRASHED_MSG = "The server stopped while this row was being sent; it is never re-sent. " + UNKNOWN_MSG


@dataclass(frozen=True)
class BatchJob:
    """One row (and take) of a saved batch, with its state."""

    row: int
    take: int
    values: dict[str, str]
    prompt: str
    payload: dict[str, Any]
    credits: int
    state: str = "planned"
    task_id: str = ""
    message: str = ""
    updated_at: str = ""


@dataclass(frozen=True)
class Batch:
    """A saved batch: who may send it (origin, account fingerprint — never a key), its jobs and its status."""

    batch_id: str
    created_at: str
    origin: str
    account: str
    variables: tuple[str, ...]
    jobs: tuple[BatchJob, ...]
    status: str = "running"  # running | paused | done
    note: str = ""
    skipped_rows: tuple[int, ...] = field(default=())

    def count(self, state: str) -> int:
        """How many jobs are in one state."""
        return sum(1 for j in self.jobs if j.state == state)

    @property
    def finished(self) -> bool:
        """True when no job is left to send."""
        return self.count("planned") == 0

    def to_json(self) -> bytes:
        """The file's bytes."""
        return json.dumps({"version": 1, **asdict(self)}, ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes) -> Batch:
        """A batch from its file (bounded); raises ValueError when unreadable."""
        raw = loads_bounded(data, max_bytes=MAX_BATCH_FILE_BYTES, what="The batch file")
        if not isinstance(raw, dict) or not isinstance(raw.get("jobs"), list):
            raise ValueError("not a batch file")
        jobs = tuple(BatchJob(**j) for j in raw["jobs"])
        if any(j.state not in STATES for j in jobs):
            raise ValueError("unknown job state")
        return cls(raw["batch_id"], raw["created_at"], raw["origin"], raw["account"], tuple(raw["variables"]), jobs,
                   raw.get("status", "running"), raw.get("note", ""), tuple(raw.get("skipped_rows", ())))


def batches_dir(data_dir: Path) -> Path:
    """Where batches are kept."""
    return Path(data_dir) / BATCHES_DIR


def _path(data_dir: Path, batch_id: str) -> Path:
    if not BATCH_ID_RE.fullmatch(batch_id):
        raise ValueError(f"{batch_id!r} is not a batch id")
    return inside(data_dir, BATCHES_DIR, f"{batch_id}.json")  # the one path-from-data rule, after the id check


def save_batch(data_dir: Path, batch: Batch) -> None:
    """Replace the batch's file atomically (fsync'd: a row's state must survive a crash)."""
    path = _path(data_dir, batch.batch_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, batch.to_json())


def load_batch(data_dir: Path, batch_id: str) -> Batch:
    """The batch saved under `batch_id`; raises ValueError or OSError."""
    return Batch.from_json(_path(data_dir, batch_id).read_bytes())


def list_batches(data_dir: Path) -> list[Batch]:
    """Every readable batch, newest first (an unreadable file is skipped and logged)."""
    found = []
    for path in batches_dir(data_dir).glob("b-*.json"):
        if BATCH_ID_RE.fullmatch(path.stem):
            try:
                found.append(load_batch(data_dir, path.stem))
            except (OSError, ValueError, TypeError, KeyError) as exc:
                log.warning("batch file %s is unreadable: %s", path.name, exc)
    return sorted(found, key=lambda b: b.created_at, reverse=True)


def create_batch(data_dir: Path, plan: Plan, *, origin: str, account: str) -> Batch:
    """Save a confirmed plan: its sendable jobs "planned", the rows with errors listed as skipped."""
    jobs = tuple(BatchJob(j.row, j.take, j.values, j.prompt, j.payload, int(j.credits or 0),
                          "planned" if j.ok else "skipped",
                          message="" if j.ok else "; ".join(p.text() for p in j.errors)[:500])
                 for j in plan.jobs)
    batch = Batch(new_batch_id(), utc_now().isoformat(), origin, account, plan.variables, jobs,
                  skipped_rows=tuple(plan.rows_with_errors))
    save_batch(data_dir, batch)
    log.info("batch %s saved: %d jobs, %d skipped", batch.batch_id, len(jobs), batch.count("skipped"))
    return batch


def _set(batch: Batch, index: int, **changes: Any) -> Batch:
    jobs = list(batch.jobs)
    jobs[index] = replace(jobs[index], updated_at=utc_now().isoformat(), **changes)
    return replace(batch, jobs=tuple(jobs))


class _TurnTaken:
    """The limiter after this row already took its turn (before its "unknown" mark): only resends wait again."""

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter, self.sleep, self._first = limiter, limiter.sleep, True

    def wait_turn(self) -> float:
        if self._first:
            self._first = False
            return 0.0
        return self.limiter.wait_turn()


def batch_pace(environ: dict[str, str] | None = None) -> RateLimiter | None:
    """An extra pace from KLING_BATCH_RATE="N/S" (N creates per S seconds: demos, tests, gentle operators)."""
    spec = (environ if environ is not None else os.environ).get("KLING_BATCH_RATE", "")
    count, _, seconds = spec.partition("/")
    try:
        return RateLimiter(int(count), float(seconds)) if spec else None
    except ValueError:
        log.warning("KLING_BATCH_RATE=%r is not N/S; ignored", spec)
        return None


def reconcile(batch: Batch, ledger: LedgerStore) -> Batch:
    """Match rows left "unknown" without a task id to the ledger rows this batch created (same prompt)."""
    taken = {j.task_id for j in batch.jobs if j.task_id}
    recorded = [r for r in ledger.rows() if r.batch_id == batch.batch_id and r.task_id not in taken]
    for index, job in enumerate(batch.jobs):
        if job.state != "unknown" or job.task_id:
            continue
        texts = job_from_payload(job.payload).prompts()
        match = next((r for r in recorded if [str(s.get("prompt", "")) for s in r.shots] == texts
                      or (r.prompt and [r.prompt] == texts)), None)
        if match is not None:
            recorded.remove(match)
            batch = _set(batch, index, state="unknown" if match.state == "unknown" else "sent",
                         task_id=match.task_id, message="")
        else:
            batch = _set(batch, index, message=CRASHED_MSG)
    return batch


def _fresh_specs(batch: Batch, library: LibraryStore, uploader: Uploader) -> dict[str, Any]:
    names = list(dict.fromkeys(n for j in batch.jobs if j.state == "planned"
                               for t in job_from_payload(j.payload).prompts() for n in referenced_names(t)))
    return {e.name: to_element_spec(e) for e in library.ensure_fresh(names, uploader)} if names else {}


@dataclass(frozen=True)
class Sender:
    """What sending needs: the client (this session's or the server's — never saved), stores and pacing."""

    client: KieClient
    ledger: LedgerStore
    library: LibraryStore
    limiter: RateLimiter
    pace: RateLimiter | None = None
    callbacks_to: str | None = None

    def uploader(self) -> Uploader:
        """upload_file bound to the client (elements are re-uploaded before KIE's 3-day expiry)."""
        def upload(source: Any, file_name: str, upload_path: str, method: str = "auto") -> Any:
            return upload_file(self.client, source, file_name=file_name, upload_path=upload_path, method=method)
        return upload


def _send_one(data_dir: Path, batch: Batch, index: int, sender: Sender, specs: dict[str, Any]) -> tuple[Batch, bool]:
    """Send one planned job: mark, send, record. Returns the batch and whether to go on."""
    job = batch.jobs[index]
    if sender.pace is not None:
        sender.pace.wait_turn()
    sender.limiter.wait_turn()
    payload = build_payload(replace(job_from_payload(job.payload), elements=tuple(specs.values())))
    batch = _set(batch, index, state="unknown", message=SENDING_MSG)
    save_batch(data_dir, batch)  # BEFORE: from here on KIE may have it
    try:
        sub = submit_payload(sender.client, sender.ledger, payload, origin=batch.origin, batch_id=batch.batch_id,
                             limiter=_TurnTaken(sender.limiter), callbacks_to=sender.callbacks_to)  # type: ignore[arg-type]
    except ValidationError as exc:
        batch = _set(batch, index, state="failed", message=f"Not sent: {exc}"[:500])
        return batch, True
    if sub.row is not None:
        state = "unknown" if sub.row.state == "unknown" else "sent"
        note = sub.error.user_message() if sub.error is not None else ""
        return _set(batch, index, state=state, task_id=sub.row.task_id, message=note), True
    message = sub.error.user_message() if sub.error is not None else "not sent"
    batch = _set(batch, index, state="planned", message=f"Not sent: {message}")  # provably not created
    return replace(batch, status="paused", note=f"Paused at row {job.row}: {message}"), False


def run_batch(data_dir: Path, batch_id: str, sender: Sender, stop: threading.Event | None = None) -> Batch:
    """Send every planned job of a saved batch once, saving each state before and after; returns the batch."""
    batch = reconcile(load_batch(data_dir, batch_id), sender.ledger)
    batch = replace(batch, status="running", note="")
    save_batch(data_dir, batch)
    try:
        specs = _fresh_specs(batch, sender.library, sender.uploader())
    except ElementError as exc:
        batch = replace(batch, status="paused", note="Elements not ready: " + "; ".join(exc.problems))
        save_batch(data_dir, batch)
        return batch
    for index, job in enumerate(batch.jobs):
        if stop is not None and stop.is_set():
            break
        if job.state != "planned":
            continue
        batch, go_on = _send_one(data_dir, batch, index, sender, specs)
        save_batch(data_dir, batch)  # AFTER
        if not go_on:
            return batch
    if batch.finished:
        batch = replace(batch, status="done", note="")
    elif stop is not None and stop.is_set():
        batch = replace(batch, status="paused", note="Paused.")
    save_batch(data_dir, batch)
    log.info("batch %s: %d sent, %d unknown, %s", batch_id, batch.count("sent"), batch.count("unknown"), batch.status)
    return batch
