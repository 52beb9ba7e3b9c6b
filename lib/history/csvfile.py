"""The history file's bytes: CSV record framing, torn-tail detection and the indexed in-memory snapshot."""

from __future__ import annotations

import csv
import io
import logging
import mmap
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from lib.history.row import UNFINISHED_STATES, CsvLayout, HistoryRow, csv_layout

logger = logging.getLogger(__name__)

_CSV_FIELD_LIMIT = 64 * 2**20
_CSV_OPTS: dict[str, Any] = {"lineterminator": "\r\n"}  # "\r\n" makes csv quote cells holding a bare "\r"


def encode_records(records: Iterable[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, **_CSV_OPTS).writerows(records)
    return buffer.getvalue().encode("utf-8")


def _ensure_field_limit() -> None:
    # csv's default 128 KB cell limit is lower than the cells we must read or report on.
    if csv.field_size_limit() < _CSV_FIELD_LIMIT:
        csv.field_size_limit(_CSV_FIELD_LIMIT)


def iter_records(text: str, first_line: int = 1) -> Iterator[tuple[int, list[str]]]:
    """Yield (starting line number, cells) for each non-blank CSV record."""
    _ensure_field_limit()
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    previous = 0
    for cells in reader:
        start, previous = previous + first_line, reader.line_num
        if cells:
            yield start, cells


class FileSignature(NamedTuple):
    """Identity of one version of the file: any write changes it."""

    mtime_ns: int
    size: int
    inode: int



Buffer = bytes | bytearray | mmap.mmap


def map_file(handle: io.BufferedReader, size: int) -> bytearray | mmap.mmap:
    """The file's first `size` bytes mapped read-only (an empty bytearray for an empty file): the kernel's page
    cache holds them, not this process's heap. Read only while the file is known to be at least that long."""
    if size == 0:
        return bytearray()
    return mmap.mmap(handle.fileno(), size, access=mmap.ACCESS_READ)


def record_spans(data: Buffer, start: int) -> tuple[array[int], int]:
    """Start offsets of the complete records in data[start:], and where the complete part ends."""
    offsets: array[int] = array("q")  # 8 bytes an offset, not a 36-byte int object
    pos = begin = start
    quotes = 0
    while (newline := data.find(b"\n", pos)) >= 0:
        quotes += data[pos:newline + 1].count(b'"')
        pos = newline + 1
        if not quotes & 1:  # a newline outside quotes ends a record
            if pos - begin > 2 or data[begin:pos].strip():
                offsets.append(begin)
            begin = pos
    return offsets, begin


def parse_record(raw: bytes) -> list[str]:
    """The cells of one raw CSV record."""
    return next(csv.reader([raw.decode("utf-8")], strict=True), [])


@dataclass
class Snapshot:
    """The file as last read or written: raw bytes, record offsets and an id index; rows parsed lazily."""

    sig: FileSignature
    header: list[str]
    data: bytearray | mmap.mmap  # the file mapped (or, after a torn tail, the complete part in memory)
    offsets: array[int] = field(default_factory=lambda: array("q"))
    ids: dict[str, int] = field(default_factory=dict)
    torn: bytes = b""
    typed: list[HistoryRow | None] | None = None  # None marks an unreadable line (reason in `problems`)
    problems: dict[int, str] = field(default_factory=dict)
    # an update appends the row's new version: the older lines of that task id are superseded (kept until the
    # next compaction); `ids` maps each task id to its newest line, in the order the ids first appeared
    superseded: set[int] = field(default_factory=set)
    task_ids: list[str] = field(default_factory=list)
    _layout: CsvLayout | None = field(default=None, repr=False)
    # the unfinished index: task id -> its place in `ids` order, for ids whose newest row is unfinished (None: not
    # built yet); `new_ids` holds the places of ids first seen since it was last brought up to date
    open_ids: dict[str, int] | None = None
    new_ids: dict[str, int] = field(default_factory=dict)

    @property
    def layout(self) -> CsvLayout:
        """Where each column sits in this file's header (built on first use)."""
        if self._layout is None or self._layout.header != tuple(self.header):
            self._layout = csv_layout(self.header)
        return self._layout

    def span(self, index: int) -> tuple[int, int]:
        end = self.offsets[index + 1] if index + 1 < len(self.offsets) else len(self.data)
        return self.offsets[index], end

    def raw(self, index: int) -> bytes:
        start, end = self.span(index)
        return bytes(self.data[start:end])

    def line_of(self, index: int) -> int:
        return self.data[:self.offsets[index]].count(b"\n") + 1

    def index_records(self, offsets: Iterable[int], task_col: int) -> None:
        """Add records (by offset) to the id index; the fast path reads an unquoted task id in place."""
        data, first = self.data, len(self.offsets)
        self.offsets.extend(offsets)
        for number, start in enumerate(offsets, first):
            comma = data.find(b",", start)
            if task_col == 1 and comma > 0 and data[start] != 34 and data[comma + 1] != 34:  # 34 is '"'
                task_id = data[comma + 1:data.find(b",", comma + 1)].decode("utf-8", "replace")
            else:
                cells = parse_record(self.raw(number))
                task_id = cells[task_col] if len(cells) > task_col else ""
            task_id = task_id.strip()
            self.task_ids.append(task_id)
            previous = self.ids.get(task_id)
            if previous is not None:
                self.superseded.add(previous)
            elif self.open_ids is not None:
                self.new_ids[task_id] = len(self.ids)
            self.ids[task_id] = number

    def unfinished_ids(self) -> list[str]:
        """Task ids whose newest row is unfinished, in `ids` order (rows must be typed): built once per snapshot,
        then kept up to date by note_lines, so following tasks never walks the finished rows."""
        if self.open_ids is None:
            typed = self.typed or []
            self.open_ids = {task_id: place for place, (task_id, index) in enumerate(self.ids.items())
                             if (row := typed[index]) is not None and row.state in UNFINISHED_STATES}
            self.new_ids.clear()
        return sorted(self.open_ids, key=self.open_ids.__getitem__)

    def note_lines(self, first: int) -> None:
        """Bring the unfinished index up to date with typed lines `first`.. (newly read or written)."""
        index, typed = self.open_ids, self.typed
        if index is None or typed is None:
            return
        for line in range(first, len(typed)):
            task_id, row = self.task_ids[line], typed[line]
            if self.ids.get(task_id) != line:
                continue  # a later line supersedes it
            if row is None or row.state not in UNFINISHED_STATES:
                index.pop(task_id, None)
            elif task_id not in index:
                place = self.new_ids.get(task_id)
                if place is None:  # a finished run became unfinished again: rebuild to keep the order exact
                    self.open_ids = None
                    break
                index[task_id] = place
        self.new_ids.clear()
