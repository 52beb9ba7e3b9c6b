"""Crash-safe job ledger: one versioned CSV (`<data_dir>/history.csv`), safe export/import and run recipes."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from filelock import FileLock, Timeout

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
COLUMNS: tuple[str, ...] = (
    "schema_version", "task_id", "batch_id", "created_at", "updated_at", "origin", "model", "state",
    "prompt", "shots_json", "duration", "mode", "sound", "multi_shots", "elements", "aspect_ratio",
    "estimated_credits", "credits_consumed", "result_url", "local_video", "fail_code", "fail_msg",
    "payload_json", "rating", "notes", "last_checked_at", "stale",
)
FIELDS: tuple[str, ...] = COLUMNS[1:]
STATES: tuple[str, ...] = ("queued", "running", "succeeded", "failed", "unknown")
UNFINISHED_STATES = frozenset({"queued", "running", "unknown"})
ORIGINS: tuple[str, ...] = ("live", "sandbox")
_STATE_SET = frozenset(STATES)
_ORIGIN_SET = frozenset(ORIGINS)
DEFAULT_MODEL = "kling-3.0/video"
HISTORY_FILE = "history.csv"
MAX_CELL_BYTES = 1_000_000
_CSV_FIELD_LIMIT = 64 * 2**20
_DATETIMES = frozenset({"created_at", "updated_at", "last_checked_at"})
_INTS = frozenset({"duration", "estimated_credits", "rating"})
_BOOLS = frozenset({"sound", "multi_shots", "stale"})
_TRUE = frozenset({"true", "1", "yes", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "f", ""})
_BOOL_WORDS = {"true": True, "false": False, "": False}
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")
_SECRET_KEY = re.compile(r"api[-_]?key|authori[sz]ation|secret|token|password|bearer|callback", re.I)
_CSV_OPTS: dict[str, Any] = {"lineterminator": "\r\n"}  # "\r\n" makes csv quote cells holding a bare "\r"


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


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def format_time(value: datetime | None) -> str:
    """ISO 8601 UTC with a Z suffix ('' for None)."""
    return "" if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """Parse an ISO 8601 time (naive means UTC) or epoch seconds; raise ValueError otherwise."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        try:
            value = datetime.fromisoformat(text.strip())
        except ValueError:
            try:
                return datetime.fromtimestamp(float(text), UTC)
            except (ValueError, OverflowError, OSError):
                raise ValueError(f"{text.strip()[:40]!r} is not a date and time") from None
    if value.tzinfo is UTC:
        return value
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _parse_int(text: str) -> int | None:
    if text.isdigit():
        return int(text)
    text = text.strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{text[:40]!r} is not a number") from None
    if not number.is_integer():
        raise ValueError(f"{text[:40]!r} is not a whole number")
    return int(number)


def _parse_float(text: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{text[:40]!r} is not a number") from None


def _parse_bool(text: str) -> bool:
    if text in _BOOL_WORDS:
        return _BOOL_WORDS[text]
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"{text[:40]!r} is not true/false")


def _parse_time_or_none(text: str) -> datetime | None:
    return None if not text or text.isspace() else parse_time(text)


def _parse_elements(text: str) -> tuple[str, ...]:
    return tuple(filter(None, map(str.strip, text.split(",")))) if text else ()


def _parse_word(text: str) -> str:
    return text if text.islower() and text.isalpha() else text.strip().lower()


def _parse_rating(text: str) -> int:
    return _parse_int(text) or 0


_PARSERS: dict[str, Any] = {
    "task_id": str.strip, "created_at": _parse_time_or_none, "updated_at": _parse_time_or_none,
    "last_checked_at": _parse_time_or_none, "origin": _parse_word, "state": _parse_word,
    "duration": _parse_int, "estimated_credits": _parse_int, "rating": _parse_rating,
    "credits_consumed": _parse_float, "sound": _parse_bool, "multi_shots": _parse_bool, "stale": _parse_bool,
    "elements": _parse_elements,
}
_TEXT_FIELDS: tuple[str, ...] = tuple(name for name in FIELDS if name not in _PARSERS)


def _format_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return format_time(value)
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


def scrub_secrets(value: Any) -> Any:
    """Return a copy of JSON-like data without keys that may hold a secret (API keys, tokens, callbacks)."""
    if isinstance(value, Mapping):
        return {k: scrub_secrets(v) for k, v in value.items() if not _SECRET_KEY.search(str(k))}
    if isinstance(value, list | tuple):
        return [scrub_secrets(v) for v in value]
    if isinstance(value, str) and value.lower().startswith("bearer "):
        return "[removed]"
    return value


def _loads(text: str, default: Any) -> Any:
    try:
        return json.loads(text) if text.strip() else default
    except ValueError:
        return default


@dataclass(frozen=True, kw_only=True)
class HistoryRow:
    """One task in the ledger. Times are UTC; `updated_at` defaults to `created_at`."""

    task_id: str
    batch_id: str = ""
    created_at: datetime = field(default_factory=utc_now)
    updated_at: datetime | None = None
    origin: str
    model: str = DEFAULT_MODEL
    state: str = "queued"
    prompt: str = ""
    shots_json: str = ""
    duration: int | None = None
    mode: str = ""
    sound: bool = False
    multi_shots: bool = False
    elements: tuple[str, ...] = ()
    aspect_ratio: str = ""
    estimated_credits: int | None = None
    credits_consumed: float | None = None
    result_url: str = ""
    local_video: str = ""
    fail_code: str = ""
    fail_msg: str = ""
    payload_json: str = ""
    rating: int = 0
    notes: str = ""
    last_checked_at: datetime | None = None
    stale: bool = False

    def __post_init__(self) -> None:
        fix = object.__setattr__
        if not isinstance(self.state, str):  # a TaskState enum from lib.client
            fix(self, "state", str(getattr(self.state, "value", self.state)))
        for name in ("created_at", "updated_at", "last_checked_at"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is not UTC:
                fix(self, name, value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC))
        if self.updated_at is None:
            fix(self, "updated_at", self.created_at)
        if type(self.elements) is not tuple:
            fix(self, "elements", tuple(self.elements))
        problem = self._problem()
        if problem:
            raise ValueError(problem)

    def _problem(self) -> str:
        if self.state not in _STATE_SET:
            return f"state: {self.state!r} is not one of {', '.join(STATES)}"
        if self.origin not in _ORIGIN_SET:
            return f"origin: {self.origin!r} is not one of {', '.join(ORIGINS)}"
        if not self.task_id or not self.task_id.strip():
            return "task_id: must not be empty"
        if not 0 <= self.rating <= 5:
            return f"rating: {self.rating} is not between 0 and 5"
        if not isinstance(self.created_at, datetime):
            return "created_at: must be a date and time"
        if self.elements and any("," in name for name in self.elements):
            return "elements: an element name cannot contain a comma"
        return ""

    @property
    def finished(self) -> bool:
        """True once the task succeeded or failed."""
        return self.state in ("succeeded", "failed")

    @property
    def payload(self) -> dict[str, Any]:
        """The createTask payload that was sent ({} if none or unreadable)."""
        value = _loads(self.payload_json, {})
        return value if isinstance(value, dict) else {}

    @property
    def shots(self) -> list[dict[str, Any]]:
        """The multi-shot list ([] for single-shot)."""
        value = _loads(self.shots_json, [])
        return value if isinstance(value, list) else []

    def to_csv_dict(self) -> dict[str, str]:
        """All COLUMNS as strings, ready for csv.DictWriter."""
        out = {"schema_version": str(SCHEMA_VERSION)}
        out.update((name, _format_cell(getattr(self, name))) for name in FIELDS)
        return out

    @classmethod
    def from_csv_dict(cls, data: Mapping[str, str | None]) -> HistoryRow:
        """Parse a CSV row tolerantly (case, whitespace, 1/0/yes/no, 5.0); raise ValueError naming the column."""
        version = _parse_int(data.get("schema_version") or "") or SCHEMA_VERSION
        if version > SCHEMA_VERSION:
            raise ValueError(f"schema_version: {version} is newer than this app understands ({SCHEMA_VERSION})")
        if not (data.get("created_at") or "").strip():
            raise ValueError("created_at: must not be empty")
        kwargs: dict[str, Any] = {name: data[name] for name in _TEXT_FIELDS if data.get(name) is not None}
        for name, parse in _PARSERS.items():
            text = data.get(name)
            if text is not None:
                try:
                    kwargs[name] = parse(text)
                except ValueError as exc:
                    raise ValueError(f"{name}: {exc}") from None
        # Frozen-dataclass __init__ costs ~5 µs a row; pages load 10k rows, so fill the fields directly
        # (as pickle does) and run the same normalisation and checks.
        row = cls.__new__(cls)
        values = row.__dict__
        values.update(_ROW_DEFAULTS)
        values.update(kwargs)
        row.__post_init__()
        return row

    @classmethod
    def from_payload(
        cls, task_id: str, payload: Mapping[str, Any], *, origin: str, state: str = "queued",
        batch_id: str = "", estimated_credits: int | None = None, created_at: datetime | None = None,
    ) -> HistoryRow:
        """Build the row recorded right after createTask, from the payload that was sent."""
        clean = scrub_secrets(payload)
        inp = clean.get("input") or {}
        shots = inp.get("multi_prompt") or []
        names = tuple(str(e.get("name", "")) for e in inp.get("kling_elements") or [] if e.get("name"))
        return cls(
            task_id=task_id, batch_id=batch_id, created_at=created_at or utc_now(), origin=origin,
            model=str(clean.get("model") or DEFAULT_MODEL), state=state, prompt=str(inp.get("prompt") or ""),
            shots_json=json.dumps(shots, ensure_ascii=False) if shots else "",
            duration=_parse_int(str(inp.get("duration") or "")), mode=str(inp.get("mode") or ""),
            sound=bool(inp.get("sound")), multi_shots=bool(inp.get("multi_shots")), elements=names,
            aspect_ratio=str(inp.get("aspect_ratio") or ""), estimated_credits=estimated_credits,
            payload_json=json.dumps(clean, ensure_ascii=False, sort_keys=True),
        )


_ROW_DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in dataclasses.fields(HistoryRow) if f.default is not dataclasses.MISSING
} | {"task_id": "", "origin": ""}


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
            "state": row.state, "result_url": row.result_url, "local_video": row.local_video,
            "estimated_credits": row.estimated_credits, "credits_consumed": row.credits_consumed,
            "fail_code": row.fail_code, "fail_msg": row.fail_msg,
        },
        "rating": row.rating,
        "notes": row.notes,
    }
    return json.dumps(recipe, ensure_ascii=False, indent=2)


def _encode_records(records: Iterable[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, **_CSV_OPTS).writerows(records)
    return buffer.getvalue().encode("utf-8")


def _ensure_field_limit() -> None:
    # csv's default 128 KB cell limit is lower than the cells we must read or report on.
    if csv.field_size_limit() < _CSV_FIELD_LIMIT:
        csv.field_size_limit(_CSV_FIELD_LIMIT)


def _iter_records(text: str, first_line: int = 1) -> Iterator[tuple[int, list[str]]]:
    """Yield (starting line number, cells) for each non-blank CSV record."""
    _ensure_field_limit()
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    previous = 0
    for cells in reader:
        start, previous = previous + first_line, reader.line_num
        if cells:
            yield start, cells


def split_torn_tail(data: bytes) -> tuple[bytes, bytes]:
    """Split bytes into complete CSV records and an unfinished final record left by an interrupted write."""
    if not data or (data.endswith(b"\n") and data.count(b'"') % 2 == 0):
        return data, b""
    end = pos = quotes = 0
    while (newline := data.find(b"\n", pos)) >= 0:
        quotes += data.count(b'"', pos, newline + 1)
        pos = newline + 1
        if quotes % 2 == 0:  # a newline outside quotes ends a record
            end = pos
    return data[:end], data[end:]


class FileSignature(NamedTuple):
    """Identity of one version of the file: any write changes it."""

    mtime_ns: int
    size: int
    inode: int


class MergeResult(NamedTuple):
    """Task ids added to and skipped from (already in) the history by Ledger.merge."""

    added: tuple[str, ...]
    skipped: tuple[str, ...]


def _record_spans(data: bytes | bytearray, start: int) -> tuple[list[int], int]:
    """Start offsets of the complete records in data[start:], and where the complete part ends."""
    offsets: list[int] = []
    pos = begin = start
    quotes = 0
    while (newline := data.find(b"\n", pos)) >= 0:
        quotes += data.count(b'"', pos, newline + 1)
        pos = newline + 1
        if not quotes & 1:  # a newline outside quotes ends a record
            if pos - begin > 2 or data[begin:pos].strip():
                offsets.append(begin)
            begin = pos
    return offsets, begin


def _parse_record(raw: bytes) -> list[str]:
    return next(csv.reader([raw.decode("utf-8")], strict=True), [])


@dataclass
class _Snapshot:
    """The file as last read or written: raw bytes, record offsets and an id index; rows parsed lazily."""

    sig: FileSignature
    header: list[str]
    data: bytearray
    offsets: list[int] = field(default_factory=list)
    ids: dict[str, int] = field(default_factory=dict)
    torn: bytes = b""
    typed: list[HistoryRow] | None = None

    def span(self, index: int) -> tuple[int, int]:
        end = self.offsets[index + 1] if index + 1 < len(self.offsets) else len(self.data)
        return self.offsets[index], end

    def raw(self, index: int) -> bytes:
        start, end = self.span(index)
        return bytes(self.data[start:end])

    def line_of(self, index: int) -> int:
        return self.data.count(b"\n", 0, self.offsets[index]) + 1

    def index_records(self, offsets: list[int], task_col: int) -> None:
        """Add records (by offset) to the id index; the fast path reads an unquoted task id in place."""
        data, first = self.data, len(self.offsets)
        self.offsets.extend(offsets)
        for number, start in enumerate(offsets, first):
            comma = data.find(b",", start)
            if task_col == 1 and comma > 0 and data[start] != 34 and data[comma + 1] != 34:  # 34 is '"'
                task_id = data[comma + 1:data.find(b",", comma + 1)].decode("utf-8", "replace")
            else:
                cells = _parse_record(self.raw(number))
                task_id = cells[task_col] if len(cells) > task_col else ""
            self.ids.setdefault(task_id.strip(), number)


class Ledger:
    """The job ledger in one CSV file: append-only inserts, atomic rewrites, all under a file lock."""

    def __init__(self, path: Path | str, *, lock_timeout: float = 30.0, fsync: bool = True) -> None:
        self.path = Path(path)
        self._fsync = fsync
        self._flock = FileLock(f"{self.path}.lock", timeout=lock_timeout, thread_local=False)
        self._mutex = threading.RLock()  # one thread at a time per Ledger; the file lock handles processes
        self._snap: _Snapshot | None = None
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

    def rows(self) -> list[HistoryRow]:
        """Every row, oldest first."""
        if not self.path.exists():
            return []
        with self._locked():
            snap = self._load()
            return list(self._typed(snap)) if snap else []

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

    def frame(self) -> pd.DataFrame:
        """All rows as a pandas DataFrame (one column per HistoryRow field; times as UTC datetimes)."""
        import pandas as pd

        rows = self.rows()
        frame = pd.DataFrame({name: pd.Series([getattr(r, name) for r in rows], dtype=object) for name in FIELDS})
        for name in _DATETIMES:
            frame[name] = pd.to_datetime(frame[name], utc=True)
        for name in _BOOLS:
            frame[name] = frame[name].astype(bool)
        for name in _INTS:
            frame[name] = frame[name].astype("Int64")
        frame["credits_consumed"] = frame["credits_consumed"].astype("Float64")
        return frame

    # -- writing -------------------------------------------------------------------------------------
    def append(self, row: HistoryRow) -> HistoryRow:
        """Add a new task as one appended line; raise DuplicateTaskError if its id is already recorded."""
        with self._locked():
            snap = self._load()
            if snap is not None and row.task_id in snap.ids:
                raise DuplicateTaskError(f"Task {row.task_id} is already in the history.")
            if snap is None or snap.torn:
                header = snap.header if snap else list(COLUMNS)
                body = snap.data if snap else _encode_records([header])
                typed = self._typed(snap) + [row] if snap else [row]
                self._rewrite(bytes(body) + _encode_records([self._cells(row, header)]), snap, typed)
            else:
                self._append_line(snap, row)
            return row

    def update(self, task_id: str, /, **fields: Any) -> HistoryRow:
        """Change fields of one row (updated_at defaults to now) with an atomic rewrite; return the new row."""
        unknown = sorted(set(fields) - set(FIELDS) | ({"task_id"} & set(fields)))
        if unknown:
            raise ValueError(f"Cannot update {', '.join(unknown)}: not an editable history column.")
        fields.setdefault("updated_at", utc_now())
        with self._locked():
            snap = self._load()
            index = snap.ids.get(task_id) if snap else None
            if snap is None or index is None:
                raise UnknownTaskError(f"Task {task_id} is not in the history ({self.path}).")
            new_row = dataclasses.replace(self._row_at(snap, index), **fields)
            start, end = snap.span(index)
            line = _encode_records([self._cells(new_row, snap.header, _parse_record(snap.raw(index)))])
            self._write_replacing(bytes(snap.data[:start]) + line + bytes(snap.data[end:]), snap)
            shift = len(line) - (end - start)
            snap.data[start:end] = line
            snap.offsets[index + 1:] = [offset + shift for offset in snap.offsets[index + 1:]]
            snap.torn = b""
            if snap.typed is not None:
                snap.typed[index] = new_row
            snap.sig = self._pin_current()
            return new_row

    def delete(self, task_ids: Collection[str]) -> int:
        """Remove the rows with these ids; return how many were removed."""
        doomed = set(task_ids)
        if not doomed or not self.path.exists():
            return 0
        with self._locked():
            snap = self._load()
            indexes = sorted(i for t, i in snap.ids.items() if t in doomed) if snap else []
            if not snap or not indexes:
                return 0
            drop = set(indexes)
            keep = [i for i in range(len(snap.offsets)) if i not in drop]
            parts = [bytes(snap.data[:snap.offsets[0]])] + [snap.raw(i) for i in keep]
            typed = [snap.typed[i] for i in keep] if snap.typed is not None else None
            self._rewrite(b"".join(parts), snap, typed)
            return len(indexes)

    def merge(self, report: ImportReport) -> MergeResult:
        """Add imported rows whose task id is not yet recorded; never changes existing rows."""
        with self._locked():
            snap = self._load()
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
                body = bytes(snap.data) if snap else _encode_records([header])
                self._rewrite(body + _encode_records(records), snap, None)
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

    @staticmethod
    def _cells(row: HistoryRow, header: list[str], base: list[str] | None = None) -> list[str]:
        values = row.to_csv_dict()
        return [values.get(name, base[i] if base else "") for i, name in enumerate(header)]

    def _row_at(self, snap: _Snapshot, index: int) -> HistoryRow:
        if snap.typed is not None:
            return snap.typed[index]
        try:
            cells = _parse_record(snap.raw(index))
        except UnicodeDecodeError:
            raise self._broken(f"line {snap.line_of(index)} is not UTF-8 text") from None
        except csv.Error as exc:
            raise self._broken(f"line {snap.line_of(index)} is not valid CSV ({exc})") from None
        return self._to_row(snap, index, cells)

    def _to_row(self, snap: _Snapshot, index: int, cells: list[str]) -> HistoryRow:
        if len(cells) != len(snap.header):
            raise self._broken(f"line {snap.line_of(index)} has {len(cells)} cells instead of {len(snap.header)}")
        try:
            return HistoryRow.from_csv_dict(dict(zip(snap.header, cells, strict=True)))
        except ValueError as exc:
            raise self._broken(f"line {snap.line_of(index)}: {exc}") from None

    def _typed(self, snap: _Snapshot) -> list[HistoryRow]:
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

    def _load(self) -> _Snapshot | None:
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

    def _index(self, snap: _Snapshot | None, sig: FileSignature, start: int, data: bytes = b"") -> _Snapshot | None:
        """Scan complete records from `start`; a cut-off final record is set aside as `torn`."""
        buffer = snap.data if snap is not None else bytearray(data)
        offsets, end = _record_spans(buffer, start)
        torn = bytes(buffer[end:])
        del buffer[end:]
        if torn:
            logger.warning("%s ends with an unfinished line (%d bytes, an interrupted write); skipping it. It is "
                           "backed up and removed at the next save.", self.path, len(torn))
        if snap is None:
            if not offsets:
                return _Snapshot(sig, list(COLUMNS), buffer, torn=torn) if torn or buffer.strip() else None
            try:
                header = _parse_record(bytes(buffer[offsets[0]:offsets[1] if len(offsets) > 1 else end]))
            except UnicodeDecodeError:
                raise self._broken("the first line is not UTF-8 text") from None
            except csv.Error as exc:
                raise self._broken(f"the first line is not a CSV header ({exc})") from None
            snap = _Snapshot(sig, self._check_header(header), buffer)
            offsets = offsets[1:]
        snap.sig, snap.torn = sig, torn
        snap.index_records(offsets, snap.header.index("task_id"))
        return snap

    def _check_header(self, header: list[str]) -> list[str]:
        header = [name.strip().lstrip("\ufeff") for name in header]
        missing = [name for name in COLUMNS if name not in header]
        if missing:
            raise self._broken(f"the header lacks the columns {', '.join(missing)}")
        return header

    def _broken(self, why: str) -> HistoryFileError:
        return HistoryFileError(
            f"The history file {self.path} cannot be read: {why}. Nothing was changed. Fix: restore a backup "
            f"(history.csv.bak-* beside it), repair the file in a text editor, or move it aside to start a new "
            "history (then bring old rows back with Import)."
        )

    def _append_line(self, snap: _Snapshot, row: HistoryRow) -> None:
        line = _encode_records([self._cells(row, snap.header)])
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
        if snap.typed is not None:
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

    def _write_replacing(self, content: bytes, old: _Snapshot | None) -> None:
        """Replace the file atomically (temp file, fsync, os.replace); back it up first if it had a torn tail."""
        if old is not None and old.torn:
            self._backup()
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(content)
                fh.flush()
                if self._fsync:
                    os.fsync(fh.fileno())
            if old is not None:
                os.chmod(tmp, os.stat(self.path).st_mode & 0o777)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _rewrite(self, content: bytes, old: _Snapshot | None, typed: list[HistoryRow] | None) -> None:
        self._write_replacing(content, old)
        snap = self._index(None, self._pin_current(), 0, content)
        if snap is not None and typed is not None and len(typed) == len(snap.offsets):
            snap.typed = typed
        self._snap = snap


# -- export / import -----------------------------------------------------------------------------------
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
    return b"\xef\xbb\xbf" + _encode_records(records)


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


def _import_row(header: list[str], cells: list[str], max_cell_bytes: int) -> HistoryRow:
    if len(cells) != len(header):
        raise ValueError(f"has {len(cells)} cells, expected {len(header)}")
    for name, cell in zip(header, cells, strict=True):
        if len(cell) * 4 > max_cell_bytes and len(cell.encode("utf-8")) > max_cell_bytes:
            size = len(cell.encode("utf-8")) / 1e6
            raise ValueError(f"cell {name!r} is {size:.1f} MB; the limit is {max_cell_bytes / 1e6:g} MB")
    return HistoryRow.from_csv_dict(
        {name: restore_cell(cell) for name, cell in zip(header, cells, strict=True) if name in COLUMNS}
    )


def import_csv(data: bytes, *, max_cell_bytes: int = MAX_CELL_BYTES) -> ImportReport:
    """Read an exported history CSV; never raises for bad input, the report says what was wrong."""
    try:
        records = list(_iter_records(_decode_import(data)))
    except ValueError as exc:
        return ImportReport(error=str(exc))
    except csv.Error as exc:
        return ImportReport(error=f"This file is not a readable CSV ({exc}). Choose a history CSV exported by "
                                  "Kling Studio.")
    if not records:
        return ImportReport(error="The file is empty: there is nothing to import.")
    header = [restore_cell(name.strip()) for name in records[0][1]]
    missing = [name for name in FIELDS if name not in header]
    extra = [name for name in header if name not in COLUMNS]
    if missing:
        first = ", ".join(records[0][1])[:80]
        return ImportReport(missing_columns=missing, extra_columns=extra, error=(
            f"This is not a Kling Studio history export: missing column(s) {', '.join(missing)} "
            f"(its first line reads {first!r}). Export the history again, or add those columns."))
    rows: list[HistoryRow] = []
    bad: list[tuple[int, str]] = []
    duplicates: list[str] = []
    seen: set[str] = set()
    for line, cells in records[1:]:
        try:
            row = _import_row(header, cells, max_cell_bytes)
        except ValueError as exc:
            bad.append((line, str(exc)))
            continue
        if row.task_id in seen:
            duplicates.append(row.task_id)
            continue
        seen.add(row.task_id)
        rows.append(row)
    return ImportReport(rows, bad, duplicates, [], extra)
