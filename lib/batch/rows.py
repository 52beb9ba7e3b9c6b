"""A batch's rows: from a table typed in the app or an uploaded CSV, bounded, with messages naming row and column.

A file-level problem (too big, over 1,000 rows, a variable column missing, no header) refuses the whole file with
`RowsRefused`; a row-level problem (an empty row, an unknown @name, a bad mode) is a `CellProblem` on that row,
which the plan skips unless it is fixed in place. Reading rows never writes anything.
"""

from __future__ import annotations

import csv
import difflib
import io
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from lib.elements.model import find_by_name, reference_advice
from lib.kling import rules
from lib.kling.job import referenced_names
from lib.trust.limits import MIB, InputTooLarge, check_size

log = logging.getLogger(__name__)

MAX_ROWS = 1_000
MAX_CSV_BYTES = 5 * MIB
MAX_COLUMNS = 40
MAX_CELL_CHARS = rules.PROMPT_MAX_CHARS
MAX_TAKES = 4
MAX_REFUSAL_LINES = 8
# Optional columns: a row may override these template settings. Aliases map to one name.
OPTION_COLUMNS = ("mode", "sound", "ratio", "duration", "takes")
_ALIASES = {"aspect_ratio": "ratio", "aspect": "ratio", "take": "takes", "take_count": "takes"}
_TRUE, _FALSE = ("true", "yes", "on", "1", "y"), ("false", "no", "off", "0", "n")


class RowsRefused(ValueError):
    """The rows were refused as a whole; each message names the row and/or column and the fix."""

    def __init__(self, messages: Sequence[str]) -> None:
        self.messages = list(messages)
        super().__init__(" ".join(self.messages))


@dataclass(frozen=True)
class CellProblem:
    """Something wrong with one row, at one column ('' when it is the whole row)."""

    row: int
    column: str
    message: str
    level: str = rules.ERROR

    def text(self) -> str:
        """'Row 4 · column animal: …' for people."""
        where = f"Row {self.row}" + (f" · column {self.column}" if self.column else "")
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class BatchRow:
    """One row: its number (1-based), the variables' values and the options it overrides (parsed)."""

    number: int
    values: Mapping[str, str]
    options: Mapping[str, object] = field(default_factory=dict)
    line: int | None = None  # the CSV line it came from
    cells: Mapping[str, str] = field(default_factory=dict)  # every cell as read, bad ones included (to fix in place)


@dataclass(frozen=True)
class RowSet:
    """Rows with their problems; `notes` are about the file as a whole (e.g. an ignored column)."""

    rows: tuple[BatchRow, ...]
    problems: tuple[CellProblem, ...] = ()
    notes: tuple[str, ...] = ()

    def problems_of(self, number: int) -> list[CellProblem]:
        """The problems of one row."""
        return [p for p in self.problems if p.row == number]


def option_name(column: str) -> str | None:
    """The option a column sets (mode, sound, ratio, duration, takes), or None."""
    key = column.strip().lower()
    key = _ALIASES.get(key, key)
    return key if key in OPTION_COLUMNS else None


def _parse_option(name: str, raw: str, multi: bool) -> tuple[object | None, str | None]:
    """(value, None) or (None, problem message) for one option cell (an empty cell keeps the template's)."""
    text = raw.strip()
    if name == "mode":
        mode = next((m for m in rules.MODES if m.lower() == text.lower()), None)
        return (mode, None) if mode else (None, f"'{text}' is not a mode: write std, pro or 4K.")
    if name == "sound":
        if text.lower() in _TRUE + _FALSE:
            return text.lower() in _TRUE, None
        return None, f"'{text}' is not on or off: write true or false."
    if name == "ratio":
        return (text, None) if text in rules.ASPECT_RATIOS else (None, f"'{text}' is not an aspect ratio: write "
                                                                      "16:9, 9:16 or 1:1.")
    if not text.isascii() or not text.isdigit():
        return None, f"'{text}' is not a whole number."
    number = int(text)
    if name == "takes":
        return (number, None) if 1 <= number <= MAX_TAKES else (None, f"{number} takes: write 1 to {MAX_TAKES}.")
    if multi:
        return None, "a multi-shot video's length is the sum of its shots: leave duration empty."
    return (number, None) if rules.DURATION_MIN <= number <= rules.DURATION_MAX else (
        None, f"{number} s is out of range: write {rules.DURATION_MIN} to {rules.DURATION_MAX}.")


def _row_problems(number: int, cells: Mapping[str, str], variables: Sequence[str], names: Sequence[str] | None,
                  multi: bool) -> tuple[dict[str, object], list[CellProblem]]:
    options: dict[str, object] = {}
    if not any(str(v).strip() for v in cells.values()):
        return options, [CellProblem(number, "", "the row is empty: fill it in or delete it (it is skipped).")]
    problems = []
    for column, raw in cells.items():
        name = option_name(column)
        if name and str(raw).strip():
            value, message = _parse_option(name, str(raw), multi)
            if message:
                problems.append(CellProblem(number, column, message))
            else:
                options[name] = value
    for variable in variables:
        value = str(cells.get(variable, ""))
        if not value.strip():
            problems.append(CellProblem(number, variable, "empty: the template's {{" + variable + "}} needs a value.",
                                        rules.WARNING))
        for ref in referenced_names(value) if names is not None else ():
            if ref not in names:
                problems.append(CellProblem(number, variable, reference_advice(ref, names)))
    return options, problems


def rows_from_records(records: Iterable[Mapping[str, object]], variables: Sequence[str],
                      library_names: Iterable[str] | None = None, *, multi: bool = False,
                      lines: Sequence[int] | None = None) -> RowSet:
    """Rows from a typed table (one mapping per row; None cells count as empty)."""
    names = list(library_names) if library_names is not None else None
    rows, problems = [], []
    for index, record in enumerate(records):
        cells = {str(k): "" if v is None or v != v else str(v) for k, v in record.items()}  # v != v: NaN
        options, found = _row_problems(index + 1, cells, variables, names, multi)
        values = {v: cells.get(v, "") for v in variables}
        rows.append(BatchRow(index + 1, values, options, lines[index] if lines else None, cells))
        problems.extend(found)
    if len(rows) > MAX_ROWS:
        raise RowsRefused([f"The table has {len(rows):,} rows; a batch may have at most {MAX_ROWS:,}: split it."])
    return RowSet(tuple(rows), tuple(problems))


def _decode(data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RowsRefused([f"The CSV is not UTF-8 text (byte {exc.start + 1}): save it as CSV UTF-8 and upload it "
                           "again."]) from None
    if "\x00" in text:
        raise RowsRefused(["The CSV holds NUL bytes, so it is not a text file: export it as CSV and try again."])
    return text


def _header(raw: list[str], variables: Sequence[str]) -> tuple[list[str], list[str]]:
    """The stripped header and notes; refuses a header that is empty, too wide, duplicated or lacks a variable."""
    header = [h.strip() for h in raw]
    if not any(header):
        raise RowsRefused(["The CSV has no header row: its first line must name the columns, e.g. "
                           + ",".join(variables or ["animal"]) + "."])
    if len(header) > MAX_COLUMNS:
        raise RowsRefused([f"The CSV has {len(header)} columns; at most {MAX_COLUMNS} are read: remove unused ones."])
    messages = [f"Column {i + 1} has no name in the header row: name it or delete the column."
                for i, h in enumerate(header) if not h]
    messages += [f"Column '{h}' appears twice in the header row: rename one." for h in
                 dict.fromkeys(h for h in header if h and header.count(h) > 1)]
    for variable in variables:
        if variable not in header:
            near = find_by_name(variable, [h for h in header if h]) or next(iter(difflib.get_close_matches(
                variable, [h for h in header if h], n=1, cutoff=0.6)), None)
            hint = f" The file has '{near}': rename it to '{variable}'." if near else \
                f" Add a column '{variable}' with a value on every row."
            messages.append(f"Column '{variable}' is missing (row 1, the header): the template uses "
                            "{{" + variable + "}}." + hint)
    if messages:
        raise RowsRefused(messages[:MAX_REFUSAL_LINES])
    notes = [f"Column '{h}' is not used by the template: ignored." for h in header
             if h and h not in variables and option_name(h) is None]
    return header, notes


def rows_from_csv(data: bytes, variables: Sequence[str], library_names: Iterable[str] | None = None, *,
                  multi: bool = False) -> RowSet:
    """Rows from an uploaded CSV (header row, then one row per job); refuses it whole with RowsRefused."""
    try:
        check_size(len(data), MAX_CSV_BYTES, "The CSV")
    except InputTooLarge as exc:
        raise RowsRefused([str(exc)]) from None
    try:
        records = list(csv.reader(io.StringIO(_decode(data), newline="")))
    except csv.Error as exc:
        raise RowsRefused([f"The CSV could not be read ({exc}): export it again as plain CSV."]) from None
    if not records:
        raise RowsRefused(["The CSV is empty: it needs a header row and one row per job."])
    header, notes = _header(records[0], variables)
    body = records[1:]
    while body and not any(c.strip() for c in body[-1]):
        body.pop()  # blank lines at the end of a file are not rows
    if len(body) > MAX_ROWS:
        raise RowsRefused([f"The CSV has {len(body):,} rows; a batch may have at most {MAX_ROWS:,}: split it into "
                           f"files of {MAX_ROWS:,} rows or fewer. Nothing was loaded."])
    if not body:
        raise RowsRefused(["The CSV has a header but no rows: add one row per job."])
    messages, dicts = [], []
    for number, cells in enumerate(body, start=1):
        if len(cells) > len(header) and any(c.strip() for c in cells[len(header):]):
            messages.append(f"Row {number} (line {number + 1}) has {len(cells)} cells but the header names "
                            f"{len(header)} columns: quote cells that contain commas.")
        for column, cell in zip(header, cells, strict=False):
            if len(cell) > MAX_CELL_CHARS:
                messages.append(f"Row {number} · column {column} is {len(cell):,} characters; a cell may have at "
                                f"most {MAX_CELL_CHARS:,}.")
        dicts.append({h: (cells[i] if i < len(cells) else "") for i, h in enumerate(header) if h})
    if messages:
        raise RowsRefused(messages[:MAX_REFUSAL_LINES] + ([f"… and {len(messages) - MAX_REFUSAL_LINES} more."]
                                                          if len(messages) > MAX_REFUSAL_LINES else []))
    found = rows_from_records(dicts, variables, library_names, multi=multi, lines=list(range(2, len(dicts) + 2)))
    return RowSet(found.rows, found.problems, tuple(notes))


def table_columns(variables: Sequence[str], extra: Iterable[str] = ()) -> list[str]:
    """The columns of the typed table: the variables, then the option columns."""
    return list(dict.fromkeys([*variables, *extra, *OPTION_COLUMNS]))


def sample_csv(variables: Sequence[str]) -> bytes:
    """A CSV with the template's header and one example row, to fill in a spreadsheet."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*variables, *OPTION_COLUMNS])
    writer.writerow([f"<{v}>" for v in variables] + ["", "", "", "", ""])
    return buffer.getvalue().encode("utf-8")
