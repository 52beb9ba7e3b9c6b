"""History rows: the ledger's schema, one typed row, and tolerant cell parsing and formatting."""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, NamedTuple

from lib.common.clock import format_time, utc_now
from lib.history.cells import (
    canonical_reader,
    parse_bool,
    parse_elements,
    parse_float,
    parse_int,
    parse_rating,
    parse_time_or_none,
    parse_word,
)
from lib.kie.models import FINISHED_STATES, TaskState
from lib.kling.job import parse_duration
from lib.trust.limits import loads_bounded

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
COLUMNS: tuple[str, ...] = (
    "schema_version", "task_id", "batch_id", "created_at", "updated_at", "origin", "model", "state",
    "prompt", "shots_json", "duration", "mode", "sound", "multi_shots", "elements", "aspect_ratio",
    "estimated_credits", "credits_consumed", "result_url", "local_video", "fail_code", "fail_msg",
    "payload_json", "rating", "notes", "last_checked_at", "stale", "account", "imported_at",
    "callback_key", "kie_cost_time",
)
FIELDS: tuple[str, ...] = COLUMNS[1:]
# Columns added after schema 1 shipped: a file (or an export) without them still loads, the value defaults.
OPTIONAL_COLUMNS = frozenset({"imported_at", "callback_key", "kie_cost_time"})
REQUIRED_COLUMNS: tuple[str, ...] = tuple(c for c in COLUMNS if c not in OPTIONAL_COLUMNS)
REQUIRED_FIELDS: tuple[str, ...] = REQUIRED_COLUMNS[1:]
STATES: tuple[str, ...] = tuple(state.value for state in TaskState)  # queued, running, succeeded, failed, unknown
UNFINISHED_STATES = frozenset(STATES) - FINISHED_STATES
ORIGINS: tuple[str, ...] = ("live", "sandbox")
_STATE_SET = frozenset(STATES)
_ORIGIN_SET = frozenset(ORIGINS)
DEFAULT_MODEL = "kling-3.0/video"
HISTORY_FILE = "history.csv"
MAX_CELL_BYTES = 1_000_000
MAX_DURATION_S = 3_600          # far above Kling's 15 s: only absurd values are refused
MAX_CREDITS = 10_000_000
_SECRET_KEY = re.compile(r"api[-_]?key|authori[sz]ation|secret|token|password|bearer|callback", re.I)


_PARSERS: dict[str, Any] = {
    "task_id": str.strip, "created_at": parse_time_or_none, "updated_at": parse_time_or_none,
    "last_checked_at": parse_time_or_none, "imported_at": parse_time_or_none, "origin": parse_word, "state": parse_word,
    "duration": parse_int, "estimated_credits": parse_int, "rating": parse_rating,
    "credits_consumed": parse_float, "kie_cost_time": parse_float, "sound": parse_bool, "multi_shots": parse_bool, "stale": parse_bool,
    "elements": parse_elements,
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
    """A JSON cell, bounded in size and depth: a hostile cell yields the default, never a crash."""
    if not text.strip():
        return default
    try:
        return loads_bounded(text, max_bytes=MAX_CELL_BYTES, what="The cell")
    except ValueError:
        return default


@dataclass(frozen=True, kw_only=True, slots=True)
class HistoryRow:
    """One task in the ledger. Times are UTC; `updated_at` defaults to `created_at`. Slotted: 100,000 rows
    take ~27 MB of objects, not ~160 MB of per-row dicts."""

    task_id: str
    batch_id: str = ""
    created_at: datetime = field(default_factory=utc_now)
    updated_at: datetime | None = None
    origin: str
    model: str = DEFAULT_MODEL
    state: str = TaskState.QUEUED.value  # a TaskState is accepted too and stored as its value
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
    account: str = ""  # live rows: a one-way fingerprint of the key that created them (never the key)
    imported_at: datetime | None = None  # set on rows that came in through Import: history, never work to follow
    callback_key: str = ""  # a hash of this task's callback token (lib.tasks.callbacks); never the token
    kie_cost_time: float | None = None  # KIE's own costTime for the finished task, as reported (seconds, observed)

    def __post_init__(self) -> None:
        fix = object.__setattr__
        if isinstance(self.state, enum.Enum):  # a TaskState is a str too, but writes as "TaskState.SUCCEEDED"
            fix(self, "state", self.state.value)
        for name in ("created_at", "updated_at", "last_checked_at", "imported_at"):
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
        for name, top in (("duration", MAX_DURATION_S), ("estimated_credits", MAX_CREDITS)):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= top:
                return f"{name}: {value} is outside 0–{top:,}"
        spent = self.credits_consumed
        if spent is not None and not (math.isfinite(spent) and 0 <= spent <= MAX_CREDITS):
            return f"credits_consumed: {spent} is outside 0–{MAX_CREDITS:,}"
        if not isinstance(self.created_at, datetime):
            return "created_at: must be a date and time"
        if self.elements and any("," in name for name in self.elements):
            return "elements: an element name cannot contain a comma"
        return ""

    @property
    def finished(self) -> bool:
        """True once the task succeeded or failed."""
        return self.state in FINISHED_STATES

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
        try:
            cells = list(_BY_NAME(data))
        except KeyError:  # an optional column is absent: the tolerant parser fills its default
            return _tolerant(data)
        return _canonical_row(cells) or _tolerant(data)

    @classmethod
    def from_csv_cells(cls, layout: CsvLayout, cells: list[str]) -> HistoryRow:
        """Parse one record of a file laid out as `layout` (as many cells as its header); same rules and errors as
        from_csv_dict, without building a dict: the ledger's cold load."""
        picked = layout.pick([*cells, ""] if layout.padded else cells)
        return _canonical_row(list(picked)) or _tolerant(dict(zip(layout.header, cells, strict=True)))

    @classmethod
    def from_payload(
        cls, task_id: str, payload: Mapping[str, Any], *, origin: str, state: str = "queued",
        batch_id: str = "", estimated_credits: int | None = None, created_at: datetime | None = None,
        account: str = "",
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
            duration=parse_duration(inp.get("duration")), mode=str(inp.get("mode") or ""),
            sound=bool(inp.get("sound")), multi_shots=bool(inp.get("multi_shots")), elements=names,
            aspect_ratio=str(inp.get("aspect_ratio") or ""), estimated_credits=estimated_credits,
            payload_json=json.dumps(clean, ensure_ascii=False, sort_keys=True), account=account,
        )


def editable_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields of a ledger update, checked (task_id and unknown names refused), `updated_at` defaulting to now:
    the one rule every LedgerStore applies."""
    unknown = sorted(set(fields) - set(FIELDS) | ({"task_id"} & set(fields)))
    if unknown:
        raise ValueError(f"Cannot update {', '.join(unknown)}: not an editable history column.")
    return {"updated_at": utc_now(), **fields}


def visible_to(row: HistoryRow, account: str) -> bool:
    """Sandbox rows are everyone's; a live row only for sessions using the key that created it
    (rows without an account, e.g. imported ones, are shown to every session)."""
    return row.origin != "live" or not row.account or row.account == account


class CsvLayout(NamedTuple):
    """Where each column sits in a file's header: built once per file, used for every record."""

    header: tuple[str, ...]
    pick: Callable[[list[str]], tuple[str, ...]]  # cells -> (schema_version, *FIELDS); "" for an absent column
    padded: bool  # an optional column is absent: records get one "" cell appended for it


def csv_layout(header: Sequence[str]) -> CsvLayout:
    """The layout of a file with this header (which has every required column)."""
    at = {name: i for i, name in enumerate(header)}
    pad = len(header)
    return CsvLayout(tuple(header), itemgetter(*(at.get(name, pad) for name in COLUMNS)),
                     any(name not in at for name in COLUMNS))


# A mutable twin of HistoryRow with the same slots: a row is filled as a draft (plain slot stores, ~0.7 µs for 30
# fields where a frozen __init__ takes ~10 µs) and then becomes a HistoryRow; 100,000 rows are built on a cold load.
_Draft = dataclasses.make_dataclass("_Draft", [(f.name, f.type) for f in dataclasses.fields(HistoryRow)],
                                    slots=True, eq=False, repr=False)


def _built(values: tuple[Any, ...]) -> HistoryRow:
    """A row from its values in FIELDS order, without __init__ or __post_init__ (the caller checks)."""
    row: Any = _Draft(*values)
    row.__class__ = HistoryRow
    return row


def _canonical_row(cells: list[Any]) -> HistoryRow | None:
    """The row when its cells are exactly as this app writes them, else None (then the tolerant parser decides)."""
    values = _canonical(cells)
    return None if values is None else _built(values)


def _tolerant(data: Mapping[str, str | None]) -> HistoryRow:
    version = parse_int(data.get("schema_version") or "") or SCHEMA_VERSION
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
    row = _built(tuple({**_ROW_DEFAULTS, **kwargs}[name] for name in FIELDS))
    row.__post_init__()
    return row


_BY_NAME = itemgetter(*COLUMNS)
_canonical = canonical_reader(FIELDS, states=_STATE_SET, origins=_ORIGIN_SET, max_duration=MAX_DURATION_S,
                              max_credits=MAX_CREDITS)
_ROW_DEFAULTS: dict[str, Any] = {
    f.name: f.default for f in dataclasses.fields(HistoryRow) if f.default is not dataclasses.MISSING
} | {"task_id": "", "origin": ""}
