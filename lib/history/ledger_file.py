"""The ledger's file: a CSV under a file lock, read incrementally into an indexed snapshot, written by
appends and atomic rewrites. lib.history.ledger.Ledger adds the row operations on top."""

from __future__ import annotations

import csv
import gc
import io
import logging
import mmap
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import accumulate, chain, islice
from pathlib import Path
from typing import TypeVar

from filelock import FileLock, Timeout

from lib.common.atomic import write_atomically
from lib.common.clock import utc_now
from lib.history.csvfile import (
    FileSignature,
    Snapshot,
    encode_records,
    map_file,
    parse_record,
    record_spans,
)
from lib.history.errors import HistoryFileError
from lib.history.row import (
    COLUMNS,
    REQUIRED_COLUMNS,
    HistoryRow,
)

logger = logging.getLogger(__name__)
T = TypeVar("T")
BULK_ROWS = 10_000  # parsing at least this many lines at once pauses the cyclic garbage collector


@contextmanager
def _collector_paused(lines: int) -> Iterator[None]:
    """Pause the cyclic GC while a bulk of long-lived rows is built: its passes over the growing heap find nothing
    to free and cost ~10 % of a 100,000-row load."""
    if lines < BULK_ROWS or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
    _settle_long_lived()


def _settle_long_lived() -> None:
    """After a bulk of rows that live as long as the ledger, freeze what is tracked now, so later full collections
    (on any click) no longer walk 100,000 rows (~140 ms each at 100,000). Frozen objects are still freed by reference
    counting when the ledger drops them; a young-generation pass first keeps fresh garbage cycles out of the freeze."""
    gc.collect(1)
    gc.freeze()


class LedgerFile:
    """One CSV ledger file: its lock, its pinned snapshot, and the low-level reads and writes."""

    def __init__(self, path: Path | str, *, lock_timeout: float = 30.0, fsync: bool = True) -> None:
        self.path = Path(path)
        self._fsync = fsync
        self._flock = FileLock(f"{self.path}.lock", timeout=lock_timeout, thread_local=False)
        self._mutex = threading.RLock()  # one thread at a time per Ledger; the file lock handles processes
        self._snap: Snapshot | None = None
        self._pinned: io.BufferedReader | None = None

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
            row = HistoryRow.from_csv_cells(snap.layout, cells)
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            return self._unreadable(snap, index, str(exc))
        known = snap.task_ids[index] if index < len(snap.task_ids) else None
        if known == row.task_id:  # one string for the index and the row (100,000 rows: ~6 MB)
            object.__setattr__(row, "task_id", known)
        return row

    def _unreadable(self, snap: Snapshot, index: int, why: str) -> None:
        if index not in snap.problems:
            logger.warning("%s line %d is unreadable (%s); it is left as it is.", self.path, snap.line_of(index), why)
        snap.problems[index] = why[:200]
        return None

    def _typed(self, snap: Snapshot) -> list[HistoryRow | None]:
        done = snap.typed or []
        if len(done) < len(snap.offsets):
            with _collector_paused(len(snap.offsets) - len(done)):
                snap.typed = done + self._parse_lines(snap, len(done))
            snap.note_lines(len(done))
            if isinstance(snap.data, mmap.mmap) and len(snap.offsets) - len(done) >= BULK_ROWS:
                snap.data.madvise(mmap.MADV_DONTNEED)  # parsed: the rows are what we keep, the pages stay cached
        return snap.typed if snap.typed is not None else []

    def _parse_lines(self, snap: Snapshot, first: int) -> list[HistoryRow | None]:
        """The rows of lines `first`.. (None for an unreadable line, its reason kept in `problems`)."""
        try:
            data, starts = snap.data, snap.offsets[first:]
            ends = chain(islice(starts, 1, None), (len(data),))
            # one record's text at a time: 100,000 decoded lines and their cells never exist together
            texts = (data[start:end].decode("utf-8") for start, end in zip(starts, ends, strict=True))
            return [self._to_row(snap, i, cells) for i, cells in enumerate(csv.reader(texts, strict=True), first)]
        except (csv.Error, UnicodeDecodeError):
            return [self._row_at(snap, i) for i in range(first, len(snap.offsets))]  # names the line

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
                    snap.data = self._grown(snap.data, pinned, st.st_size)
                    self._snap = self._index(snap, sig, start)
                    return self._snap
            fh = open(self.path, "rb")  # noqa: SIM115 - kept open as the pin
            st = os.fstat(fh.fileno())
            self._pin(fh)
            self._snap = self._index(None, FileSignature(st.st_mtime_ns, st.st_size, st.st_ino), 0,
                                     map_file(fh, st.st_size))
        except FileNotFoundError:
            self._pin(None)
            self._snap = None
        except OSError as exc:
            raise HistoryFileError(f"Cannot read {self.path}: {exc}. Fix: check the file's permissions.") from exc
        return self._snap

    @staticmethod
    def _grown(data: bytearray | mmap.mmap, pinned: io.BufferedReader, size: int) -> bytearray | mmap.mmap:
        """The indexed bytes after the (pinned) file grew to `size` by appends."""
        if isinstance(data, mmap.mmap):
            return map_file(pinned, size)
        pinned.seek(len(data))
        return data + pinned.read(size - len(data))

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

    def _index(self, snap: Snapshot | None, sig: FileSignature, start: int,
               data: bytearray | mmap.mmap | None = None) -> Snapshot | None:
        """Scan complete records from `start`; a cut-off final record is set aside as `torn`."""
        buffer = snap.data if snap is not None else data if data is not None else bytearray()
        offsets, end = record_spans(buffer, start)
        torn = bytes(buffer[end:])
        if torn:  # keep the complete part only (in memory: the map would still show the torn bytes)
            buffer = bytearray(buffer[:end])
            if snap is not None:
                snap.data = buffer
            logger.warning("%s ends with an unfinished line (%d bytes, an interrupted write); skipping it. It is "
                           "backed up and removed at the next save.", self.path, len(torn))
        if snap is None:
            if not offsets:
                return Snapshot(sig, list(COLUMNS), buffer, torn=torn) if torn or bytes(buffer).strip() else None
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
        self._append_lines(snap, [(row, base)])

    def _append_lines(self, snap: Snapshot, rows: list[tuple[HistoryRow, list[str] | None]]) -> None:
        """Append one line per row (each over its base cells, for columns it does not know) in one write and
        one fsync, and index them."""
        lines = [encode_records([self._cells(row, snap.header, base)]) for row, base in rows]
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        try:
            view = memoryview(b"".join(lines))
            while view:
                view = view[os.write(fd, view):]
            if self._fsync:
                os.fsync(fd)
            st = os.fstat(fd)
        finally:
            os.close(fd)
        first = len(snap.offsets)
        typed = snap.typed is not None and len(snap.typed) == first
        starts = list(accumulate(map(len, lines[:-1]), initial=len(snap.data)))
        assert self._pinned is not None  # _load pinned this very file; the lock kept other writers out
        snap.data = self._grown(snap.data, self._pinned, len(snap.data) + sum(map(len, lines)))
        if typed:
            snap.typed.extend(row for row, _ in rows)
        snap.index_records(starts, snap.header.index("task_id"))
        snap.sig = FileSignature(st.st_mtime_ns, st.st_size, st.st_ino)
        if typed:
            snap.note_lines(first)

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
        sig = self._pin_current()
        assert self._pinned is not None
        snap = self._index(None, sig, 0, map_file(self._pinned, sig.size))
        if snap is not None and typed is not None and len(typed) == len(snap.offsets) and None not in typed:
            snap.typed = typed
        self._snap = snap
