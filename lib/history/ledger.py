"""Crash-safe job ledger: one versioned CSV (`<data_dir>/history.csv`) under a file lock, with atomic rewrites.

Rows and schema live in lib.history.row, the file's record framing in lib.history.csvfile, and export/import and
recipes in lib.history.transfer; their public names are re-exported here so callers keep importing from lib.history.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from lib.history.csvfile import (
    Snapshot,
    encode_records,
    parse_record,
)
from lib.history.errors import DuplicateTaskError, UnknownTaskError
from lib.history.ledger_file import LedgerFile
from lib.history.query import FileQueries
from lib.history.row import (
    COLUMNS,
    OPTIONAL_COLUMNS,
    HistoryRow,
    editable_fields,
)
from lib.history.transfer import ImportReport

logger = logging.getLogger(__name__)

HISTORY_FILE = "history.csv"
COMPACT_MIN = 1_000  # superseded lines kept before an update compacts the file


class MergeResult(NamedTuple):
    """Task ids added to and skipped from (already in) the history by Ledger.merge."""

    added: tuple[str, ...]
    skipped: tuple[str, ...]


class Ledger(FileQueries, LedgerFile):
    """The job ledger in one CSV file: append-only inserts, atomic rewrites, all under a file lock."""


    @classmethod
    def in_dir(cls, data_dir: Path | str, **options: Any) -> Ledger:
        """The ledger at `<data_dir>/history.csv`."""
        return cls(Path(data_dir) / HISTORY_FILE, **options)


    def rows(self) -> list[HistoryRow]:
        """Every readable row, oldest first (unreadable lines are kept in the file and listed by unreadable())."""
        return self._read(lambda snap, typed: [row for index in snap.ids.values()
                                               if (row := typed[index]) is not None])

    def unreadable(self) -> list[tuple[int, str]]:
        """(line number, reason) of every line that cannot be read as a run; such lines are never changed."""
        return self._read(lambda snap, typed: [(snap.line_of(i), snap.problems.get(i, "unreadable"))
                                               for i, r in enumerate(typed) if r is None and i not in snap.superseded])

    def get(self, task_id: str) -> HistoryRow | None:
        """The row for `task_id`, or None."""
        if not self.path.exists():
            return None
        with self._locked():
            snap = self._load()
            index = snap.ids.get(task_id) if snap else None
            return None if snap is None or index is None else self._row_at(snap, index)

    def unfinished(self) -> list[HistoryRow]:
        """Rows still queued, running or unknown (createTask outcome unknown): the ones to resume."""
        return self._read(lambda snap, typed: [typed[snap.ids[task_id]] for task_id in snap.unfinished_ids()])

    # -- writing -------------------------------------------------------------------------------------
    def append(self, row: HistoryRow) -> HistoryRow:
        """Add a new task as one appended line; raise DuplicateTaskError if its id is already recorded."""
        with self._locked():
            snap = self._load()
            if snap is not None and row.task_id in snap.ids:
                raise DuplicateTaskError(f"Task {row.task_id} is already in the history.")
            if snap is None or snap.torn:
                header = snap.header if snap else list(COLUMNS)
                body = snap.data if snap else encode_records([header])
                typed = self._typed(snap) + [row] if snap else [row]
                self._rewrite(bytes(body) + encode_records([self._cells(row, header)]), snap, typed)
            else:
                self._append_line(snap, row)
            return row

    def update(self, task_id: str, /, **fields: Any) -> HistoryRow:
        """Change fields of one row (updated_at defaults to now) by appending its new version; return the new row."""
        return self.update_many({task_id: fields})[0]

    def update_many(self, changes: Mapping[str, Mapping[str, Any]]) -> list[HistoryRow]:
        """Change several rows at once (a follower tick's answers): their new versions are appended in one write and
        one fsync. Same rules as update(); an unknown id raises UnknownTaskError and changes nothing."""
        checked = {task_id: editable_fields(dict(fields)) for task_id, fields in changes.items()}
        if not checked:
            return []
        with self._locked():
            snap = self._load()
            found = []
            for task_id in checked:
                index = snap.ids.get(task_id) if snap else None
                old_row = None if snap is None or index is None else self._row_at(snap, index)
                if snap is None or index is None or old_row is None:
                    raise UnknownTaskError(
                        f"Task {task_id} is not in the history ({self.path}), or its line is unreadable.")
                found.append((index, old_row))
            assert snap is not None
            new_rows = [dataclasses.replace(old, **fields) for (_, old), fields in zip(found, checked.values(),
                                                                                      strict=True)]
            if snap.torn:  # repair the torn tail first: rewrite with these rows' lines replaced
                self._rewrite(self._replaced(snap, dict(zip((i for i, _ in found), new_rows, strict=True))), snap,
                              None)
                return new_rows
            # Append the rows' new versions (one short write, whatever the file's size); the old lines are
            # superseded and dropped at the next compaction.
            bases = [parse_record(snap.raw(index)) for index, _ in found]
            self._append_lines(snap, list(zip(new_rows, bases, strict=True)))
            if len(snap.superseded) > max(COMPACT_MIN, len(snap.offsets) // 4):
                self._compact(snap)
            return new_rows

    def _replaced(self, snap: Snapshot, rows: Mapping[int, HistoryRow]) -> bytes:
        """The file's bytes with the lines at these indexes replaced by these rows."""
        parts = [bytes(snap.data[:snap.offsets[0]])]
        for i in range(len(snap.offsets)):
            row = rows.get(i)
            raw = snap.raw(i)
            parts.append(raw if row is None else encode_records([self._cells(row, snap.header, parse_record(raw))]))
        return b"".join(parts)

    def _compact(self, snap: Snapshot) -> None:
        """Rewrite the file without superseded lines (atomically). Each run keeps the place its first line had
        (`ids` is in first-seen order), so rows() stays oldest first: an updated row's newest line sits at the end
        of the file until a compaction puts it back."""
        keep = list(snap.ids.values())  # the lines no other line supersedes, in the order their ids first appeared
        typed = [snap.typed[i] for i in keep] if snap.typed is not None and len(snap.typed) == len(snap.offsets) \
            else None
        self._rewrite(bytes(snap.data[:snap.offsets[0]]) + b"".join(snap.raw(i) for i in keep), snap, typed)

    def delete(self, task_ids: Collection[str]) -> int:
        """Remove the rows with these ids; return how many were removed."""
        doomed = set(task_ids)
        if not doomed or not self.path.exists():
            return 0
        with self._locked():
            snap = self._load()
            if not snap:
                return 0
            drop = {i for i, t in enumerate(snap.task_ids) if t in doomed}
            indexes = [i for t, i in snap.ids.items() if t in doomed]
            if not indexes:
                return 0
            keep = [i for i in range(len(snap.offsets)) if i not in drop]
            parts = [bytes(snap.data[:snap.offsets[0]])] + [snap.raw(i) for i in keep]
            typed = [snap.typed[i] for i in keep] if snap.typed is not None else None
            self._rewrite(b"".join(parts), snap, typed)
            return len(indexes)

    def merge(self, report: ImportReport) -> MergeResult:
        """Add imported rows whose task id is not yet recorded; never changes existing rows."""
        with self._locked():
            snap = self._load()
            if snap is not None and any(c not in snap.header for c in OPTIONAL_COLUMNS):
                snap = self._upgrade_header(snap)
            header = snap.header if snap else list(COLUMNS)
            known = set(snap.ids) if snap else set()
            added: list[str] = []
            skipped: list[str] = []
            records: list[list[str]] = []
            for row in report.rows_ok:
                if row.task_id in known:
                    skipped.append(row.task_id)
                    continue
                known.add(row.task_id)
                added.append(row.task_id)
                records.append(self._cells(row, header))
            if records:
                body = bytes(snap.data) if snap else encode_records([header])
                self._rewrite(body + encode_records(records), snap, None)
            return MergeResult(tuple(added), tuple(skipped))


    def _upgrade_header(self, snap: Snapshot) -> Snapshot:
        """Add the columns newer than the file (as empty cells at the end of every line), byte for byte otherwise,
        so rows that need them (imported ones) keep them. Unreadable lines stay as they were, plus one cell."""
        extra = [c for c in COLUMNS if c not in snap.header]
        tail = b"," * len(extra)
        bounds = [0, *snap.offsets] if snap.offsets else [0]
        parts = []
        for i, start in enumerate(bounds):
            end = bounds[i + 1] if i + 1 < len(bounds) else len(snap.data)
            raw = bytes(snap.data[start:end])
            body = raw.rstrip(b"\r\n")
            ending = raw[len(body):] or b"\r\n"
            parts.append(body + (encode_records([extra]).rstrip(b"\r\n") if i == 0 else tail) + ending)
        content = b"".join(parts)
        self._rewrite(content, snap, None)
        logger.info("Added column(s) %s to %s", ", ".join(extra), self.path)
        assert self._snap is not None
        return self._snap


