"""The plan of a batch: every row rendered, checked by the rules engine and priced before anything is sent."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from lib.batch.rows import MAX_ROWS, BatchRow, CellProblem, RowSet, RowsRefused
from lib.batch.template import Template
from lib.compose.evaluate import evaluate
from lib.compose.form import field_of
from lib.elements.model import Element
from lib.kling import rules
from lib.kling.job import referenced_names
from lib.kling.pricing import format_cost
from lib.kling.problems import errors_only

log = logging.getLogger(__name__)

MAX_JOBS = MAX_ROWS
_OPTION_FIELDS = {"mode": "compose_mode", "sound": "compose_sound", "ratio": "compose_aspect",
                  "duration": "compose_duration"}


@dataclass(frozen=True)
class RowProblem:
    """A problem of one planned job, at the field (or CSV column) it belongs to."""

    where: str
    message: str
    level: str

    def text(self) -> str:
        """'prompt: …' for people."""
        return f"{self.where}: {self.message}" if self.where else self.message

    def at_row(self, row: int) -> str:
        """'Row 4 · column animal: …', or 'Row 4: …' for the whole row."""
        return f"Row {row} · {self.text()}" if self.where else f"Row {row}: {self.message}"


@dataclass(frozen=True)
class PlannedJob:
    """One task of the batch: which row and take, the rendered prompt, the payload, its cost and problems."""

    row: int
    take: int
    values: dict[str, str]
    prompt: str
    payload: dict[str, Any]
    credits: int | None
    problems: tuple[RowProblem, ...]

    @property
    def errors(self) -> list[RowProblem]:
        """The problems that keep this job from being sent."""
        return errors_only(self.problems)

    @property
    def ok(self) -> bool:
        """True when this job can be sent."""
        return not self.errors and self.credits is not None


@dataclass(frozen=True)
class Plan:
    """Every job of a batch, checked and priced; nothing has been sent."""

    variables: tuple[str, ...]
    jobs: tuple[PlannedJob, ...]

    @property
    def sendable(self) -> list[PlannedJob]:
        """The jobs without errors."""
        return [j for j in self.jobs if j.ok]

    @property
    def rows_with_errors(self) -> list[int]:
        """Row numbers with at least one error (they are skipped unless fixed)."""
        return sorted({j.row for j in self.jobs if not j.ok})

    @property
    def credits(self) -> int:
        """What the sendable jobs cost together."""
        return sum(j.credits or 0 for j in self.sendable)

    def summary(self) -> str:
        """One line for people."""
        skipped = len(self.jobs) - len(self.sendable)
        extra = f"; {skipped} with errors skipped (rows {', '.join(map(str, self.rows_with_errors))})" if skipped else ""
        return f"{len(self.sendable)} task(s) for {format_cost(self.credits)}{extra}."


def _cell_problem(problem: CellProblem) -> RowProblem:
    return RowProblem(f"column {problem.column}" if problem.column else "", problem.message, problem.level)


def _display_prompt(form: dict[str, Any]) -> str:
    if form["compose_multi"]:
        return " ⏵ ".join(f"[{s['duration']} s] {s['prompt']}" for s in form["compose_shots"])
    return str(form["compose_prompt"])


def plan_row(template: Template, row: BatchRow, elements: Sequence[Element],
             cell_problems: Iterable[CellProblem] = ()) -> list[PlannedJob]:
    """The jobs of one row (one per take), each rendered, checked and priced."""
    form = template.render_form(row.values, row.number - 1)
    for option, key in _OPTION_FIELDS.items():
        if option in row.options:
            form[key] = row.options[option]
    found = [_cell_problem(p) for p in cell_problems]
    if any(not p.where and p.level == rules.ERROR for p in found):  # an empty row: nothing to check
        return [PlannedJob(row.number, 1, dict(row.values), "", {}, None, tuple(found))]
    view = evaluate(form, elements)
    names = {e.name for e in elements}
    flagged = {ref for value in row.values.values() for ref in referenced_names(value) if ref not in names}
    checked = [RowProblem(field_of(p.path, view.job.multi_shots), p.message, p.level) for p in view.problems
               if not (p.rule == "reference" and any(f"@{ref}" in p.message for ref in flagged))]  # said at its cell
    problems = tuple(found + checked)
    takes = int(row.options.get("takes", 1))  # type: ignore[call-overload]
    return [PlannedJob(row.number, take, dict(row.values), _display_prompt(form), view.payload, view.credits,
                       problems) for take in range(1, takes + 1)]


def plan_batch(template: Template, rows: RowSet, elements: Sequence[Element]) -> Plan:
    """Render, check and price every row; raises RowsRefused above 1,000 jobs. Sends nothing, writes nothing."""
    jobs: list[PlannedJob] = []
    by_row: dict[int, list[CellProblem]] = {}
    for problem in rows.problems:
        by_row.setdefault(problem.row, []).append(problem)
    for row in rows.rows:
        jobs.extend(plan_row(template, row, elements, by_row.get(row.number, ())))
        if len(jobs) > MAX_JOBS:
            raise RowsRefused([f"Row {row.number} takes the batch past {MAX_JOBS:,} tasks (takes count as "
                               "tasks): use fewer rows or takes."])
    return Plan(tuple(template.variables), tuple(jobs))
