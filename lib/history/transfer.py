"""History export/import: spreadsheet-safe CSV out, a tolerant CSV reader with a plain-words report, run recipes."""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lib.common.clock import format_time, utc_now
from lib.history.csvfile import encode_records, iter_records
from lib.history.row import COLUMNS, MAX_CELL_BYTES, REQUIRED_FIELDS, HistoryRow, scrub_secrets
from lib.kling.rules import ASPECT_RATIOS, MODES
from lib.trust.limits import MAX_HISTORY_IMPORT_BYTES, MAX_HISTORY_IMPORT_ROWS, InputTooLarge, check_size, loads_bounded
from lib.trust.urls import link_target

logger = logging.getLogger(__name__)

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")


def recipe_json(row: HistoryRow) -> str:
    """A JSON recipe of one run (payload, settings, result) to reproduce or share it; holds no secret."""
    recipe = {
        "kling_studio_recipe": 1,
        "task_id": row.task_id,
        "batch_id": row.batch_id,
        "created_at": format_time(row.created_at),
        "origin": row.origin,
        "model": row.model,
        "payload": scrub_secrets(row.payload),
        "settings": {
            "prompt": row.prompt, "shots": row.shots, "duration": row.duration, "mode": row.mode,
            "sound": row.sound, "multi_shots": row.multi_shots, "elements": list(row.elements),
            "aspect_ratio": row.aspect_ratio,
        },
        "result": {
            "state": row.state, "result_url": row.result_url,
            "estimated_credits": row.estimated_credits, "credits_consumed": row.credits_consumed,
            "fail_code": row.fail_code, "fail_msg": row.fail_msg,
        },
        "rating": row.rating,
        "notes": row.notes,
    }
    return json.dumps(recipe, ensure_ascii=False, indent=2)


def read_recipe(data: bytes) -> tuple[dict[str, Any], str]:
    """The createTask payload of a recipe file (or a bare payload) and the task id it came from ('' when none).

    Bounded (size, depth) like every import; secrets are dropped; raises ValueError with a plain reason."""
    try:
        recipe = loads_bounded(data, what="The recipe")
    except UnicodeDecodeError as exc:
        raise ValueError("The recipe is not UTF-8 text: open a .json recipe exported from History.") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"The recipe is not valid JSON (line {exc.lineno}): open a .json recipe exported "
                         "from History.") from exc
    if not isinstance(recipe, dict):
        raise ValueError("The recipe is not a JSON object: open a .json recipe exported from History.")
    payload = recipe.get("payload") if "kling_studio_recipe" in recipe else recipe
    if not isinstance(payload, dict) or not isinstance(payload.get("input"), dict):
        raise ValueError("The file holds no createTask payload (no 'input' object): open a recipe exported "
                         "from History.")
    task_id = recipe.get("task_id") if isinstance(recipe.get("task_id"), str) else ""
    return scrub_secrets(payload), task_id[:80]


def neutralise_cell(text: str) -> str:
    """Make a cell inert in spreadsheets: prefix "'" to formula-like starts and to a leading "'" (reversible)."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def restore_cell(text: str) -> str:
    """Undo neutralise_cell."""
    return text[1:] if text.startswith("'") else text


def export_csv(rows: Iterable[HistoryRow]) -> bytes:
    """History rows as UTF-8 CSV (with BOM, for spreadsheets), formula cells neutralised; import_csv restores it."""
    records = [list(COLUMNS)]
    records += [[neutralise_cell(v) for v in row.to_csv_dict().values()] for row in rows]
    return b"\xef\xbb\xbf" + encode_records(records)


@dataclass(frozen=True)
class ImportReport:
    """What import_csv found: rows ready to merge and every problem, each in plain words."""

    rows_ok: list[HistoryRow] = field(default_factory=list)
    bad_rows: list[tuple[int, str]] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    missing_columns: list[str] = field(default_factory=list)
    extra_columns: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the file could be read (individual rows may still be bad)."""
        return self.error is None

    def summary(self) -> str:
        """One paragraph for the user."""
        if self.error:
            return self.error
        parts = [f"{len(self.rows_ok)} row(s) ready to import."]
        if self.bad_rows:
            shown = "; ".join(f"line {line}: {why}" for line, why in self.bad_rows[:5])
            more = f" (and {len(self.bad_rows) - 5} more)" if len(self.bad_rows) > 5 else ""
            parts.append(f"{len(self.bad_rows)} bad row(s) skipped: {shown}{more}.")
        if self.duplicates:
            parts.append(f"{len(self.duplicates)} repeated task id(s) skipped: {', '.join(self.duplicates[:5])}.")
        if self.extra_columns:
            parts.append(f"Ignored unknown column(s): {', '.join(self.extra_columns)}.")
        return " ".join(parts)


def _decode_import(data: bytes) -> str:
    if b"\x00" in data[:65536]:
        raise ValueError("This is a binary file, not a CSV. Choose a history CSV exported by Kling Studio.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"The file is not UTF-8 text (byte 0x{data[exc.start]:02x} at position {exc.start}). Fix: save it "
            "as 'CSV UTF-8' (in Excel: File > Save As > CSV UTF-8) and import it again."
        ) from None


def _import_row(header: list[str], cells: list[str], max_cell_bytes: int, now: datetime) -> HistoryRow:
    if len(cells) != len(header):
        raise ValueError(f"has {len(cells)} cells, expected {len(header)}")
    for name, cell in zip(header, cells, strict=True):
        if len(cell) * 4 > max_cell_bytes and len(cell.encode("utf-8")) > max_cell_bytes:
            size = len(cell.encode("utf-8")) / 1e6
            raise ValueError(f"cell {name!r} is {size:.1f} MB; the limit is {max_cell_bytes / 1e6:g} MB")
    row = HistoryRow.from_csv_dict(
        {name: restore_cell(cell) for name, cell in zip(header, cells, strict=True) if name in COLUMNS}
    )
    return as_imported(row, now)


def as_imported(row: HistoryRow, now: datetime) -> HistoryRow:
    """An imported row made safe to keep: a record of a run, never an instruction (docs/SECURITY.md §7).

    Its file location is dropped (a local copy is made only by the app's own fetch), hidden request fields
    (callBackUrl, keys) leave its payload, a result link that is not http(s) is dropped, unknown modes and
    ratios are refused, and it is marked imported so nothing follows it by itself."""
    if row.mode not in ("", *MODES):
        raise ValueError(f"mode: {row.mode[:20]!r} is not one of {', '.join(MODES)}")
    if row.aspect_ratio not in ("", *ASPECT_RATIOS):
        raise ValueError(f"aspect_ratio: {row.aspect_ratio[:20]!r} is not one of {', '.join(ASPECT_RATIOS)}")
    for name in ("payload_json", "shots_json"):  # a hostile cell is refused by name, not silently emptied
        cell = getattr(row, name)
        if cell.strip():
            try:
                loads_bounded(cell, max_bytes=MAX_CELL_BYTES, what=name)
            except InputTooLarge as exc:
                raise ValueError(f"{exc} The run was not imported") from None
            except ValueError as exc:
                raise ValueError(f"{name} is not valid JSON ({exc}); the run was not imported") from None
    payload, clean = row.payload, row.payload_json
    if payload != scrub_secrets(payload) or (clean.strip() and not payload):
        clean = json.dumps(scrub_secrets(payload), ensure_ascii=False, sort_keys=True) if payload else ""
    return dataclasses.replace(
        row, local_video="", result_url=row.result_url if link_target(row.result_url) else "",
        payload_json=clean, imported_at=row.imported_at or now, callback_key="")


def _bounded_records(data: bytes, max_bytes: int, max_rows: int) -> list[tuple[int, list[str]]]:
    """The file's (line, cells) records; raises ValueError (sizes) or csv.Error before reading past the bounds."""
    check_size(len(data), max_bytes, "This history file")
    records = []
    for record in iter_records(_decode_import(data)):
        records.append(record)
        if len(records) > max_rows + 1:
            raise InputTooLarge(f"This history file has more than {max_rows:,} rows; the limit is {max_rows:,}. "
                                "Split it into smaller files and import them one by one.")
    return records


def _header_problem(first: list[str], header: list[str]) -> ImportReport | None:
    """A report naming the missing columns when `header` is not a history export's, else None."""
    missing = [name for name in REQUIRED_FIELDS if name not in header]
    if not missing:
        return None
    extra = [name for name in header if name not in COLUMNS]
    return ImportReport(missing_columns=missing, extra_columns=extra, error=(
        f"This is not a Kling Studio history export: missing column(s) {', '.join(missing)} "
        f"(its first line reads {', '.join(first)[:80]!r}). Export the history again, or add those columns."))


def import_csv(data: bytes, *, max_cell_bytes: int = MAX_CELL_BYTES, max_bytes: int = MAX_HISTORY_IMPORT_BYTES,
               max_rows: int = MAX_HISTORY_IMPORT_ROWS, now: datetime | None = None) -> ImportReport:
    """Read an exported history CSV; never raises for bad input, the report says what was wrong."""
    now = now or utc_now()
    try:
        records = _bounded_records(data, max_bytes, max_rows)
    except ValueError as exc:
        return ImportReport(error=str(exc))
    except csv.Error as exc:
        return ImportReport(error=f"This file is not a readable CSV ({exc}). Choose a history CSV exported by "
                                  "Kling Studio.")
    if not records:
        return ImportReport(error="The file is empty: there is nothing to import.")
    header = [restore_cell(name.strip()) for name in records[0][1]]
    problem = _header_problem(records[0][1], header)
    if problem is not None:
        return problem
    rows: dict[str, HistoryRow] = {}
    bad: list[tuple[int, str]] = []
    duplicates: list[str] = []
    for line, cells in records[1:]:
        try:
            row = _import_row(header, cells, max_cell_bytes, now)
        except ValueError as exc:
            bad.append((line, str(exc)))
            continue
        if row.task_id in rows:
            duplicates.append(row.task_id)
        else:
            rows[row.task_id] = row
    return ImportReport(list(rows.values()), bad, duplicates, [], [name for name in header if name not in COLUMNS])
