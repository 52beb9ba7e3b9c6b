"""A batch's manifest: one spreadsheet-safe CSV line per task (row, take, variables, task id, state, cost, link)."""

from __future__ import annotations

import csv
import io
import logging

from lib.batch.runner import Batch
from lib.history.transfer import neutralise_cell
from lib.storage.base import LedgerStore
from lib.trust.urls import link_target

log = logging.getLogger(__name__)

FIXED_COLUMNS = ("row", "take")
TAIL_COLUMNS = ("prompt", "task_id", "state", "batch_state", "credits", "video_link", "message")


def manifest_rows(batch: Batch, ledger: LedgerStore) -> list[dict[str, str]]:
    """The manifest as dicts: a sent task's state and link come from the ledger (the follower keeps it current)."""
    out = []
    for job in batch.jobs:
        row = ledger.get(job.task_id) if job.task_id else None
        link = link_target(row.result_url) if row is not None and row.result_url else None
        out.append({"row": str(job.row), "take": str(job.take), **{v: job.values.get(v, "") for v in batch.variables},
                    "prompt": job.prompt, "task_id": job.task_id,
                    "state": row.state if row is not None else job.state, "batch_state": job.state,
                    "credits": str(job.credits) if job.state != "skipped" else "",
                    "video_link": link[0] if link else "", "message": job.message})
    return out


def manifest_csv(batch: Batch, ledger: LedgerStore) -> bytes:
    """The manifest as UTF-8 CSV (with BOM for spreadsheets); every cell neutralised against formulas."""
    columns = [*FIXED_COLUMNS, *[v for v in batch.variables if v not in FIXED_COLUMNS + TAIL_COLUMNS],
               *TAIL_COLUMNS]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for record in manifest_rows(batch, ledger):
        writer.writerow([neutralise_cell(record.get(c, "")) for c in columns])
    return b"\xef\xbb\xbf" + buffer.getvalue().encode("utf-8")
