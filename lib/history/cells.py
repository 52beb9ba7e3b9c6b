"""Reading ledger cells: the tolerant parsers (case, whitespace, 1/0/yes/no, 5.0, naive times), and the cold
load's fast path for rows whose cells are exactly as this app writes them.

`HistoryRow.from_csv_dict` tries the fast path first and falls back to the tolerant parsers for anything else,
so a row read fast is the row the tolerant parsers build. Repeated words (state, origin, model, mode, ratio,
account) share one string object, and updated_at shares created_at's datetime when both cells are equal: 100,000
rows hold one copy of each, not 100,000.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from lib.common.clock import parse_time

_TRUE = frozenset({"true", "1", "yes", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "f", ""})
_BOOL_WORDS = {"true": True, "false": False, "": False}
_MAX_DIGITS = 15  # a whole-number cell longer than this is no duration, credit count or rating


def parse_int(text: str) -> int | None:
    """A whole number ('' is None; 5.0 is 5)."""
    if text.isdigit() and len(text) <= _MAX_DIGITS:
        return int(text)
    text = text.strip()
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{text[:40]!r} is not a number") from None
    if not math.isfinite(number) or abs(number) >= 10**_MAX_DIGITS:  # 1e308, 10**30: refused, never printed whole
        raise ValueError(f"{text[:40]!r} is far too large a number")
    if not number.is_integer():
        raise ValueError(f"{text[:40]!r} is not a whole number")
    return int(number)


def parse_float(text: str) -> float | None:
    """A number ('' is None)."""
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{text[:40]!r} is not a number") from None


def parse_bool(text: str) -> bool:
    """true/false, 1/0, yes/no, in any case."""
    if text in _BOOL_WORDS:
        return _BOOL_WORDS[text]
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"{text[:40]!r} is not true/false")


def parse_time_or_none(text: str) -> datetime | None:
    """An ISO time or epoch seconds ('' is None)."""
    return None if not text or text.isspace() else parse_time(text)


def parse_elements(text: str) -> tuple[str, ...]:
    """Comma-separated element names."""
    return tuple(filter(None, map(str.strip, text.split(",")))) if text else ()


def parse_word(text: str) -> str:
    """A vocabulary word, lower-cased."""
    return text if text.islower() and text.isalpha() else text.strip().lower()


def parse_rating(text: str) -> int:
    """A 0–5 rating ('' is 0)."""
    return parse_int(text) or 0


Values = tuple[Any, ...]

_RATINGS = {"": 0, **{str(n): n for n in range(6)}}
_SHARED_MAX = 1_024  # distinct repeated words kept; beyond it cells are stored as read (still correct)
_WHOLE_MAX_DIGITS = 15
_SHARED_COLUMNS = ("origin", "model", "state", "mode", "aspect_ratio", "fail_code", "fail_msg", "account")
_TYPED_COLUMNS = ("task_id", "created_at", "updated_at", "origin", "state", "duration", "sound", "multi_shots",
                  "elements", "estimated_credits", "credits_consumed", "rating", "last_checked_at", "stale",
                  "imported_at", "kie_cost_time")


def _time(text: str) -> datetime | None:
    """An ISO time with an explicit UTC offset or Z ('' is None); anything else is left to the tolerant parser."""
    if not text:
        return None
    value = datetime.fromisoformat(text)
    if value.tzinfo is not UTC:
        raise ValueError("not a canonical UTC time")
    return value


def _whole(text: str, top: int) -> int | None:
    if not text:
        return None
    if not (text.isascii() and text.isdigit() and len(text) <= _WHOLE_MAX_DIGITS):
        raise ValueError("not a canonical whole number")
    number = int(text)
    if number > top:
        raise ValueError("out of range")
    return number


def _real(text: str) -> float | None:
    return None if not text else float(text)


def canonical_reader(fields: tuple[str, ...], *, states: frozenset[str], origins: frozenset[str],
                     max_duration: int, max_credits: int) -> Callable[[list[Any]], Values | None]:
    """A function from a row's cells ([schema_version, *fields], consumed) to the typed values in `fields` order,
    or None when the row is not in canonical form (the caller then uses the tolerant parser, which decides and
    names any problem)."""
    shared: dict[str, str] = {word: word for word in states | origins}
    amounts: dict[str, float | None] = {}  # credits cells: a few distinct amounts over many rows
    batch = [""]  # the previous row's batch id: a batch's runs sit together, so consecutive rows share it
    share_at = tuple(fields.index(name) for name in _SHARED_COLUMNS)
    i_batch = fields.index("batch_id")
    at = {name: i for i, name in enumerate(fields)}
    (i_task, i_created, i_updated, i_origin, i_state, i_duration, i_sound, i_multi, i_elements, i_estimated,
     i_consumed, i_rating, i_checked, i_stale, i_imported, i_cost) = (at[name] for name in _TYPED_COLUMNS)

    def read(values: list[Any]) -> Values | None:
        if values.pop(0) not in ("1", "") or None in values:
            return None
        try:
            return typed(values)
        except (ValueError, TypeError, AttributeError, KeyError, OverflowError):
            return None

    def typed(v: list[Any]) -> Values | None:
        v[i_task] = v[i_task].strip()
        if not v[i_task] or v[i_origin] not in origins or v[i_state] not in states:
            return None
        keep = shared.setdefault if len(shared) < _SHARED_MAX else shared.get
        for i in share_at:
            v[i] = keep(v[i], v[i])
        if v[i_batch] == batch[0]:
            v[i_batch] = batch[0]
        else:
            batch[0] = v[i_batch]
        created, updated = v[i_created], v[i_updated]
        v[i_created] = created_at = _time(created)
        if created_at is None:
            return None
        v[i_updated] = created_at if updated == created or not updated else _time(updated)
        text = v[i_consumed]
        spent = amounts.get(text)
        if spent is None:
            spent = _real(text)
            if len(amounts) < _SHARED_MAX:
                amounts[text] = spent
        v[i_consumed] = spent
        if spent is not None and not (math.isfinite(spent) and 0 <= spent <= max_credits):
            return None
        elements = v[i_elements]
        v[i_elements] = tuple(filter(None, map(str.strip, elements.split(",")))) if elements else ()
        v[i_duration] = _whole(v[i_duration], max_duration)
        v[i_estimated] = _whole(v[i_estimated], max_credits)
        v[i_sound], v[i_multi], v[i_stale] = _BOOL_WORDS[v[i_sound]], _BOOL_WORDS[v[i_multi]], _BOOL_WORDS[v[i_stale]]
        v[i_rating] = _RATINGS[v[i_rating]]
        v[i_checked], v[i_imported] = _time(v[i_checked]), _time(v[i_imported])
        v[i_cost] = _real(v[i_cost])
        return tuple(v)

    return read
