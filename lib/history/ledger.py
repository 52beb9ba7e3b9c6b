"""Crash-safe job ledger: one versioned CSV (`<data_dir>/history.csv`) under a file lock, with atomic rewrites.

Rows and schema live in lib.history.row, the file's record framing in lib.history.csvfile, and export/import and
recipes in lib.history.transfer; their public names are re-exported here so callers keep importing from lib.history.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import logging
import os
import shutil
import threading
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from filelock import FileLock, Timeout

from lib.common.atomic import write_atomically
from lib.common.clock import utc_now
from lib.history.csvfile import (
    FileSignature,
    Snapshot,
    encode_records,
    parse_record,
    record_spans,
)
from lib.history.row import (
    COLUMNS,
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    UNFINISHED_STATES,
    HistoryRow,
    editable_fields,
)
from lib.history.transfer import ImportReport

logger = logging.getLogger(__name__)
T = TypeVar("T")

HISTORY_FILE = "history.csv"
COMPACT_MIN = 1_000  # superseded lines kept before an update compacts the file


class HistoryError(Exception):
    """Base class for history problems."""


class HistoryFileError(HistoryError):
    """The history file is unreadable or busy; the message names the file and the fix."""


class UnknownTaskError(HistoryError, KeyError):
    """No history row has this task id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown task"


class DuplicateTaskError(HistoryError, ValueError):
    """A row with this task id is already in the history."""



class MergeResult(NamedTuple):
    """Task ids added to and skipped from (already in) the history by Ledger.merge."""

    added: tuple[str, ...]
    skipped: tuple[str, ...]


class Ledger:
    """The job ledger in one CSV file: append-only inserts, atomic rewrites, all under a file lock."""

    def __init__(self, path: Path | str, *, lock_timeout: float = 30.0, fsync: bool = True) -> None:
        self.path = Path(path)
        self._fsync = fsync
        self._flock = FileLock(f"{self.path}.lock", timeout=lock_timeout, thread_local=False)
        self._mutex = threading.RLock()  # one thread at a time per Ledger; the file lock handles processes
        self._snap: Snapshot | None = None
        self._pinned: io.BufferedReader | None = None

    @classmethod
    def in_dir(cls, data_dir: Path | str, **options: Any) -> Ledger:
        """The ledger at `<data_dir>/history.csv`."""
        return cls(Path(data_dir) / HISTORY_FILE, **options)

    # -- reading -------------------------------------------------------------------------------------
    def mtime_signature(self) -> FileSignature:
        """(mtime_ns, size, inode) of the file, (0, 0, 0) if absent: cache reads keyed on it."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return FileSignature(0, 0, 0)
        return FileSignature(st.st_mtime_ns, st.st_size, st.st_ino)

    def version(self) -> tuple[int, ...]:
        """(mtime_ns, size, inode) of the file: changes with every write (the LedgerStore cache key)."""
        return tuple(self.mtime_signature())

    def _read(self, view: Callable[[Snapshot, list[HistoryRow | None]], list[T]]) -> list[T]:
        """`view(snapshot, typed rows)` computed under the lock ([] when there is no file)."""
        if not self.path.exists():
            return []
        with self._locked():
            snap = self._load()
            return view(snap, self._typed(snap)) if snap else []

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
        return [row for row in self.rows() if row.state in UNFINISHED_STATES]

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
        fields = editable_fields(fields)
        with self._locked():
            snap = self._load()
            index = snap.ids.get(task_id) if snap else None
            old_row = None if snap is None or index is None else self._row_at(snap, index)
            if snap is None or index is None or old_row is None:
                raise UnknownTaskError(f"Task {task_id} is not in the history ({self.path}), or its line is unreadable.")
            new_row = dataclasses.replace(old_row, **fields)
            if snap.torn:  # repair the torn tail first: rewrite with this row's line replaced
                start, end = snap.span(index)
                line = encode_records([self._cells(new_row, snap.header, parse_record(snap.raw(index)))])
                self._rewrite(bytes(snap.data[:start]) + line + bytes(snap.data[end:]), snap, None)
                return new_row
            # Append the row's new version (one short write, whatever the file's size); the old line is
            # superseded and dropped at the next compaction.
            self._append_line(snap, new_row, base=parse_record(snap.raw(index)))
            if len(snap.superseded) > max(COMPACT_MIN, len(snap.offsets) // 4):
                self._compact(snap)
            return new_row

    def _compact(self, snap: Snapshot) -> None:
        """Rewrite the file without superseded lines (atomically)."""
        keep = [i for i in range(len(snap.offsets)) if i not in snap.superseded]
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

    # -- internals -----------------------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._mutex:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._flock.acquire()
            except Timeout:
                raise HistoryFileError(
                    f"{self.path} is locked by another process. Fix: wait for it to finish; if nothing else is "
                    f"running, delete {self._flock.lock_file}."
                ) from None
            except OSError as exc:
                raise HistoryFileError(f"Cannot lock {self.path}: {exc}. Fix: make its folder writable.") from exc
            try:
                yield
            finally:
                self._flock.release()

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

    @staticmethod
    def _cells(row: HistoryRow, header: list[str], base: list[str] | None = None) -> list[str]:
        values = row.to_csv_dict()
        return [values.get(name, base[i] if base else "") for i, name in enumerate(header)]

    def _row_at(self, snap: Snapshot, index: int) -> HistoryRow | None:
        if snap.typed is not None and index < len(snap.typed):
            return snap.typed[index]
        try:
            cells = parse_record(snap.raw(index))
        except UnicodeDecodeError:
            return self._unreadable(snap, index, "it is not UTF-8 text")
        except csv.Error as exc:
            return self._unreadable(snap, index, f"it is not valid CSV ({exc})")
        return self._to_row(snap, index, cells)

    def _to_row(self, snap: Snapshot, index: int, cells: list[str]) -> HistoryRow | None:
        """The row of one line, or None (reason kept) when the line is unreadable: one bad line never breaks a page."""
        if len(cells) != len(snap.header):
            return self._unreadable(snap, index, f"it has {len(cells)} cells instead of {len(snap.header)}")
        try:
            return HistoryRow.from_csv_dict(dict(zip(snap.header, cells, strict=True)))
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            return self._unreadable(snap, index, str(exc))

    def _unreadable(self, snap: Snapshot, index: int, why: str) -> None:
        if index not in snap.problems:
            logger.warning("%s line %d is unreadable (%s); it is left as it is.", self.path, snap.line_of(index), why)
        snap.problems[index] = why[:200]
        return None

    def _typed(self, snap: Snapshot) -> list[HistoryRow | None]:
        done = snap.typed or []
        if len(done) < len(snap.offsets):
            try:
                texts = [snap.raw(i).decode("utf-8") for i in range(len(done), len(snap.offsets))]
                reader = csv.reader(texts, strict=True)
                new = [self._to_row(snap, i, cells) for i, cells in enumerate(reader, len(done))]
            except (csv.Error, UnicodeDecodeError):
                new = [self._row_at(snap, i) for i in range(len(done), len(snap.offsets))]  # names the line
            snap.typed = done + new
        return snap.typed if snap.typed is not None else []

    def _load(self) -> Snapshot | None:
        """Current snapshot of the file (caller holds the lock); reads only the new bytes after appends."""
        try:
            st = os.stat(self.path)
            snap, pinned = self._snap, self._pinned
            # The pinned descriptor keeps the old inode alive, so a matching inode is this very file
            # (not a new file that reused a freed inode number); writers only ever append to it.
            if snap is not None and pinned is not None and os.path.samestat(st, os.fstat(pinned.fileno())):
                sig = FileSignature(st.st_mtime_ns, st.st_size, st.st_ino)
                if sig == snap.sig:
                    return snap
                start = len(snap.data)
                if not snap.torn and st.st_size > start and self._tail_matches(pinned, snap.data):
                    pinned.seek(start)
                    snap.data += pinned.read()
                    self._snap = self._index(snap, sig, start)
                    return self._snap
            fh = open(self.path, "rb")  # noqa: SIM115 - kept open as the pin
            st = os.fstat(fh.fileno())
            self._pin(fh)
            self._snap = self._index(None, FileSignature(st.st_mtime_ns, st.st_size, st.st_ino), 0, fh.read())
        except FileNotFoundError:
            self._pin(None)
            self._snap = None
        except OSError as exc:
            raise HistoryFileError(f"Cannot read {self.path}: {exc}. Fix: check the file's permissions.") from exc
        return self._snap

    @staticmethod
    def _tail_matches(pinned: io.BufferedReader, data: bytearray) -> bool:
        size = min(64, len(data))
        pinned.seek(len(data) - size)
        return pinned.read(size) == data[len(data) - size:]

    def _pin(self, handle: io.BufferedReader | None) -> None:
        if self._pinned is not None and self._pinned is not handle:
            self._pinned.close()
        self._pinned = handle

    def _pin_current(self) -> FileSignature:
        """Pin the file just written (caller holds the lock) and return its signature."""
        fh = open(self.path, "rb")  # noqa: SIM115 - kept open as the pin
        self._pin(fh)
        st = os.fstat(fh.fileno())
        return FileSignature(st.st_mtime_ns, st.st_size, st.st_ino)

    def close(self) -> None:
        """Release the open file handle kept for change detection (the Ledger stays usable)."""
        with self._mutex:
            self._pin(None)
            self._snap = None

    def _index(self, snap: Snapshot | None, sig: FileSignature, start: int, data: bytes = b"") -> Snapshot | None:
        """Scan complete records from `start`; a cut-off final record is set aside as `torn`."""
        buffer = snap.data if snap is not None else bytearray(data)
        offsets, end = record_spans(buffer, start)
        torn = bytes(buffer[end:])
        del buffer[end:]
        if torn:
            logger.warning("%s ends with an unfinished line (%d bytes, an interrupted write); skipping it. It is "
                           "backed up and removed at the next save.", self.path, len(torn))
        if snap is None:
            if not offsets:
                return Snapshot(sig, list(COLUMNS), buffer, torn=torn) if torn or buffer.strip() else None
            try:
                header = parse_record(bytes(buffer[offsets[0]:offsets[1] if len(offsets) > 1 else end]))
            except UnicodeDecodeError:
                raise self._broken("the first line is not UTF-8 text") from None
            except csv.Error as exc:
                raise self._broken(f"the first line is not a CSV header ({exc})") from None
            snap = Snapshot(sig, self._check_header(header), buffer)
            offsets = offsets[1:]
        snap.sig, snap.torn = sig, torn
        snap.index_records(offsets, snap.header.index("task_id"))
        return snap

    def _check_header(self, header: list[str]) -> list[str]:
        header = [name.strip().lstrip("\ufeff") for name in header]
        missing = [name for name in REQUIRED_COLUMNS if name not in header]
        if missing:
            raise self._broken(f"the header lacks the columns {', '.join(missing)}")
        return header

    def _broken(self, why: str) -> HistoryFileError:
        return HistoryFileError(
            f"The history file {self.path} cannot be read: {why}. Nothing was changed. Fix: restore a backup "
            f"(history.csv.bak-* beside it), repair the file in a text editor, or move it aside to start a new "
            "history (then bring old rows back with Import)."
        )

    def _append_line(self, snap: Snapshot, row: HistoryRow, base: list[str] | None = None) -> None:
        line = encode_records([self._cells(row, snap.header, base)])
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view):]
            if self._fsync:
                os.fsync(fd)
            st = os.fstat(fd)
        finally:
            os.close(fd)
        if snap.typed is not None and len(snap.typed) == len(snap.offsets):
            snap.typed.append(row)
        start = len(snap.data)
        snap.data += line
        snap.index_records([start], snap.header.index("task_id"))
        snap.sig = FileSignature(st.st_mtime_ns, st.st_size, st.st_ino)

    def _backup(self) -> Path:
        stamp = utc_now().strftime("%Y%m%dT%H%M%S%fZ")
        target = self.path.with_name(f"{self.path.name}.bak-{stamp}")
        shutil.copy2(self.path, target)
        logger.warning("Backed up %s to %s before repairing it.", self.path, target)
        return target

    def _write_replacing(self, content: bytes, old: Snapshot | None) -> None:
        """Replace the file atomically; back it up first if it had a torn tail."""
        if old is not None and old.torn:
            self._backup()
        write_atomically(self.path, content, fsync=self._fsync, keep_mode=old is not None)

    def _rewrite(self, content: bytes, old: Snapshot | None, typed: list[HistoryRow | None] | None) -> None:
        self._write_replacing(content, old)
        snap = self._index(None, self._pin_current(), 0, content)
        if snap is not None and typed is not None and len(typed) == len(snap.offsets) and None not in typed:
            snap.typed = typed
        self._snap = snap

