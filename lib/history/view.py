"""What the History page shows: filters, sorting, table rows, payload diffs and comparisons (no Streamlit)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from lib.history.diff import ABSENT
from lib.history.row import STATES, HistoryRow
from lib.trust.urls import link_target

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

IMPORTED_BADGE = "📥 imported, not followed"
# The one icon per state, for every page (History's table and details, Compose's followed tasks).
STATE_ICONS: dict[str, str] = {"queued": "⏳", "running": "🔄", "succeeded": "✅", "failed": "❌", "unknown": "❓"}
STATE_BADGES: dict[str, str] = {state: f"{icon} {state}" for state, icon in STATE_ICONS.items()}
STALE_BADGE = "⌛ stale, still checking"
SOUND_CHOICES = ("any", "on", "off")
UNKNOWN_HELP = (
    "The createTask outcome is unknown: the connection ended after the request was sent, so KIE may have "
    "created (and charged) this task. Check https://kie.ai/logs before submitting it again."
)


def details_link(task_id: str) -> str:
    """The relative deep link to a run's details (the id is URL-encoded: it may come from an import)."""
    return f"History?task={quote(task_id, safe='')}"


def state_icon(state: str) -> str:
    """The emoji for a task state ('❔' for a word outside the vocabulary)."""
    return STATE_ICONS.get(state, "❔")


def state_badge(row: HistoryRow) -> str:
    """The state as emoji + word; an unfinished task past its deadline reads 'stale, still checking';
    an imported unfinished run is history, not work: 'imported, not followed'."""
    if row.imported_at is not None and not row.finished:
        return IMPORTED_BADGE
    if row.stale and not row.finished and row.state != "unknown":
        return STALE_BADGE
    return STATE_BADGES.get(row.state, row.state)


def cost(row: HistoryRow) -> float | None:
    """Credits the run cost: consumed when KIE reported it, else the estimate."""
    if row.credits_consumed is not None:
        return float(row.credits_consumed)
    return None if row.estimated_credits is None else float(row.estimated_credits)


def elapsed_seconds(row: HistoryRow) -> float | None:
    """Seconds from submit to finish for finished runs (None while unfinished)."""
    if not row.finished or row.updated_at is None:
        return None
    return max(0.0, (row.updated_at - row.created_at).total_seconds())


# -- filters ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HistoryFilter:
    """The History page's filters; empty tuples and None mean 'any'."""

    states: tuple[str, ...] = ()
    origins: tuple[str, ...] = ()
    modes: tuple[str, ...] = ()
    sound: str = "any"
    elements: tuple[str, ...] = ()
    date_from: date | None = None
    date_to: date | None = None
    text: str = ""
    min_rating: int = 0

    def __post_init__(self) -> None:
        if self.sound not in SOUND_CHOICES:
            raise ValueError(f"sound must be one of {', '.join(SOUND_CHOICES)}, not {self.sound!r}")
        unknown = set(self.states) - set(STATES)
        if unknown:
            raise ValueError(f"unknown state(s): {', '.join(sorted(unknown))}")


def searchable(row: HistoryRow) -> str:
    """The lowercase text a search looks in: id, batch, prompt, shots, notes, elements, failure, mode and ratio.
    Stored cells as they are (the shots' JSON text, not parsed), so the SQL ledger searches the very same text."""
    parts = (row.task_id, row.batch_id, row.prompt, row.shots_json, row.notes, ",".join(row.elements), row.fail_msg,
             row.mode, row.aspect_ratio)
    return " ".join(parts).lower()


def matches(row: HistoryRow, flt: HistoryFilter) -> bool:
    """Whether one row passes every filter (elements: any of the chosen; text: every word, any case)."""
    if flt.states and row.state not in flt.states:
        return False
    if flt.origins and row.origin not in flt.origins:
        return False
    if flt.modes and row.mode not in flt.modes:
        return False
    if flt.sound != "any" and row.sound != (flt.sound == "on"):
        return False
    if flt.elements and not {e.lower() for e in flt.elements} & {e.lower() for e in row.elements}:
        return False
    day = row.created_at.date()
    if (flt.date_from and day < flt.date_from) or (flt.date_to and day > flt.date_to):
        return False
    if row.rating < flt.min_rating:
        return False
    words = flt.text.lower().split()
    if not words:  # building the search text of 10,000 rows for an empty box is most of a rerun
        return True
    haystack = searchable(row)
    return all(word in haystack for word in words)


def filter_rows(rows: Iterable[HistoryRow], flt: HistoryFilter) -> list[HistoryRow]:
    """The rows that pass the filter, in their original order."""
    if flt == HistoryFilter():
        return list(rows)
    return [row for row in rows if matches(row, flt)]


# -- sorting ----------------------------------------------------------------------------------------
SORT_KEYS: dict[str, Callable[[HistoryRow], Any]] = {
    "Created": lambda r: r.created_at,
    "Rating": lambda r: r.rating,
    "Cost (credits)": cost,
    "Duration (s)": lambda r: r.duration,
    "Generation time": elapsed_seconds,
    "State": lambda r: STATES.index(r.state),
    "Mode": lambda r: r.mode,
}


def sort_rows(rows: Iterable[HistoryRow], by: str = "Created", descending: bool = True) -> list[HistoryRow]:
    """Rows sorted by one SORT_KEYS column; rows without a value always come last; ties newest first."""
    if by not in SORT_KEYS:
        raise ValueError(f"cannot sort by {by!r}; choose one of {', '.join(SORT_KEYS)}")
    key = SORT_KEYS[by]
    ordered = sorted(rows, key=lambda r: r.created_at, reverse=True)  # stable tie-break
    present = [r for r in ordered if key(r) is not None]
    missing = [r for r in ordered if key(r) is None]
    return sorted(present, key=key, reverse=descending) + missing


@dataclass(frozen=True)
class Facets:
    """The values present in the history, to offer as filter choices."""

    modes: tuple[str, ...]
    elements: tuple[str, ...]
    first_day: date | None
    last_day: date | None


def facets(rows: Sequence[HistoryRow]) -> Facets:
    """Modes and element names used, and the date span, across the rows."""
    modes = sorted({r.mode for r in rows if r.mode})
    elements = sorted({e for r in rows for e in r.elements}, key=str.lower)
    days = [r.created_at.date() for r in rows]
    return Facets(tuple(modes), tuple(elements), min(days) if days else None, max(days) if days else None)


# -- table ------------------------------------------------------------------------------------------
# No in-app link column: a table link opens a new tab (an empty session); clicking a row selects it instead.
TABLE_COLUMNS = ("State", "Created", "Prompt", "Mode", "Ratio", "Shots", "Sound", "Seconds", "Rating",
                 "Est. credits", "Credits used", "Took (s)", "Result", "Elements", "Origin", "task_id")


def prompt_text(row: HistoryRow) -> str:
    """The prompt, or the shots joined with ' | ' for multi-shot runs."""
    if row.prompt:
        return row.prompt
    return " | ".join(str(s.get("prompt", "")) for s in row.shots if isinstance(s, dict))


def table_records(rows: Iterable[HistoryRow]) -> list[dict[str, Any]]:
    """One plain dict per row, with the TABLE_COLUMNS the page shows."""
    return [{
        "task_id": r.task_id, "State": state_badge(r), "Created": r.created_at, "Origin": r.origin,
        "Mode": r.mode, "Ratio": r.aspect_ratio or ABSENT, "Shots": shot_count(r), "Sound": r.sound,
        "Seconds": r.duration, "Elements": ", ".join(r.elements),
        "Prompt": prompt_text(r), "Est. credits": r.estimated_credits, "Credits used": r.credits_consumed,
        "Took (s)": elapsed_seconds(r), "Rating": "★" * r.rating,
        "Result": (link_target(r.result_url) or (None,))[0],
    } for r in rows]


def table_frame(rows: Iterable[HistoryRow]) -> pd.DataFrame:
    """The history table as a DataFrame indexed by task id (build once per file version)."""
    import pandas as pd  # here, not at the top: pandas takes ~0.5 s to import and Compose imports this module

    frame = pd.DataFrame(table_records(rows), columns=list(TABLE_COLUMNS))
    frame["Created"] = pd.to_datetime(frame["Created"], utc=True)
    for name in ("Seconds", "Est. credits", "Shots"):
        frame[name] = frame[name].astype("Int64")
    return frame.set_index("task_id", drop=False)


def shot_count(row: HistoryRow) -> int:
    """Shots in the run: its multi-shot list, else 1."""
    return len(row.shots) if row.multi_shots and row.shots else 1


def run_label(row: HistoryRow, prompt_chars: int = 28) -> str:
    """A label that tells variants apart: time, mode, sound, ratio, the prompt's start and the id's end."""
    start = " ".join(prompt_text(row).split())
    start = start if len(start) <= prompt_chars else start[:prompt_chars - 1] + "…"
    sound = "sound on" if row.sound else "sound off"
    return (f"{row.created_at:%m-%d %H:%M:%S} · {row.mode or '?'} · {sound} · {row.aspect_ratio or '?'} · "
            f"{start or '(no prompt)'} · {row.task_id[-6:]}")


def hidden_live_runs(rows: Iterable[HistoryRow], account: str) -> int:
    """Live runs made with another key than this session's (none in sandbox mode, account ''): the count shown
    so a reload that lost a typed key never looks like an empty history."""
    return sum(1 for r in rows if r.origin == "live" and r.account and r.account != account)


def hidden_runs_note(count: int, sandbox: bool) -> str:
    """Where the hidden live runs are and how to see them again ('' when none are hidden)."""
    if not count:
        return ""
    where = "This session is in Sandbox mode" if sandbox else "This session uses a different key"
    return (f"{count:,} live run(s) are hidden: they were made with an API key this session does not use. {where}; "
            "enter the key that made them in the sidebar and they show again (and unfinished ones are followed). "
            "Do not resubmit them: they may already be running or finished on KIE.")


def settings_summary(row: HistoryRow) -> dict[str, str]:
    """The settings shown under each player in Compare."""
    spent = cost(row)
    return {
        "State": state_badge(row),
        "Mode": row.mode or ABSENT,
        "Sound": "on" if row.sound else "off",
        "Duration": f"{row.duration} s" if row.duration else ABSENT,
        "Aspect": row.aspect_ratio or ABSENT,
        "Elements": ", ".join(row.elements) or ABSENT,
        "Credits": ABSENT if spent is None else f"{spent:g}",
        "Rating": "★" * row.rating or "unrated",
    }


# -- detail helpers ---------------------------------------------------------------------------------
def payload_element_names(row: HistoryRow) -> list[str]:
    """Element names the run used: the row's column plus the payload's kling_elements, without repeats."""
    inp = row.payload.get("input") if isinstance(row.payload.get("input"), dict) else {}
    names = list(row.elements)
    for item in inp.get("kling_elements") or []:
        name = str(item.get("name", "")) if isinstance(item, dict) else ""
        if name and name.lower() not in {n.lower() for n in names}:
            names.append(name)
    return names


def missing_elements(row: HistoryRow, library_names: Iterable[str]) -> list[str]:
    """Elements the run used that are no longer in the library (names compare ignoring case)."""
    known = {name.lower() for name in library_names}
    return [name for name in payload_element_names(row) if name.lower() not in known]


def is_checkable(row: HistoryRow) -> bool:
    """Unfinished tasks with a real task id can be queried with 'Check now'."""
    return not row.finished and row.state != "unknown" and not row.task_id.startswith("unknown-")


def credits_text(row: HistoryRow) -> str:
    """'Estimated N credits · consumed M', where M is only what KIE reported (creditsConsumed), never assumed."""
    est = ABSENT if row.estimated_credits is None else f"{row.estimated_credits:g}"
    if not row.finished:
        used = "not final until it finishes"
    elif row.credits_consumed is not None:
        used = f"{row.credits_consumed:g}"
    else:  # KIE sent no creditsConsumed: say so, and never claim a refund it did not state
        used = "not reported"
    return f"Estimated {est} credits · consumed {used}"


def _kie_seconds(cost_time: float) -> float:
    """KIE documents costTime in ms but sends seconds (kie-api.md §12.21): a value over a day is taken as ms."""
    return cost_time / 1000 if cost_time > 86_400 else cost_time


def timing_text(row: HistoryRow, now: datetime) -> str:
    """Submitted time, and how long it took (finished) or has been running (unfinished)."""
    created = f"Submitted {row.created_at:%Y-%m-%d %H:%M:%S} UTC"
    took = elapsed_seconds(row)
    if took is not None:
        kie = "" if row.kie_cost_time is None else f" · KIE's costTime {_kie_seconds(row.kie_cost_time):.0f} s"
        return f"{created} · finished {row.updated_at:%H:%M:%S} UTC · took {took:.0f} s{kie}"
    waited = max(0.0, (now - row.created_at).total_seconds())
    checked = f" · last checked {row.last_checked_at:%H:%M:%S} UTC" if row.last_checked_at else ""
    return f"{created} · waiting {waited:.0f} s{checked}"
