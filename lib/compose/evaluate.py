"""One evaluation of the Compose form per rerun: job, payloads, variants, problems by field, errors and cost.

The page draws a ComposeView and decides nothing itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from lib.compose.batches import Variant, batch_cost, variant_jobs
from lib.compose.form import form_elements, form_problems, job_from_form, preview_specs, problems_by_field
from lib.compose.snippets import SnippetReadiness, snippet_readiness
from lib.elements.model import Element, reference_advice
from lib.kling import rules
from lib.kling.job import Job, build_payload, referenced_names
from lib.kling.problems import Problem, errors_only
from lib.kling.validation import validate_payload


@dataclass(frozen=True)
class ComposeView:
    """Everything the Compose page shows for one state of the form."""

    form: Mapping[str, Any]
    elements: tuple[Element, ...]
    job: Job
    payload: dict[str, Any]
    pending_uploads: tuple[str, ...]
    problems: tuple[Problem, ...]
    by_field: Mapping[str, list[Problem]]
    variants: tuple[Variant, ...]
    payloads: tuple[dict[str, Any], ...]
    variant_error: str
    errors: tuple[Problem, ...]
    credits: int | None
    extra_problems: tuple[Problem, ...] = field(default=())

    @property
    def element_names(self) -> list[str]:
        """Names of the library's elements."""
        return [e.name for e in self.elements]

    @property
    def unreferenced(self) -> list[str]:
        """Chosen elements no prompt references (so they are not sent)."""
        used = {n for text in self.job.prompts() for n in referenced_names(text)}
        return [n for n in self.form["compose_elements"] if n not in used]

    @property
    def missing_selected(self) -> list[str]:
        """Chosen elements that are no longer in the library."""
        names = set(self.element_names)
        return [n for n in self.form["compose_elements"] if n not in names]

    def problems_of(self, where: str) -> list[Problem]:
        """The live problems shown under one field."""
        return self.by_field.get(where, [])

    def snippet(self, payload: dict[str, Any]) -> SnippetReadiness:
        """Whether the copied cURL/Python of `payload` would create a task that can work."""
        return snippet_readiness(payload)


def _variants(job: Job, form: Mapping[str, Any]) -> tuple[list[Variant], str]:
    try:
        return variant_jobs(job, takes=int(form["compose_takes"]), modes=form["compose_grid_modes"],
                            sounds=form["compose_grid_sounds"],
                            prompts=str(form["compose_prompt_variants"]).splitlines()), ""
    except ValueError as exc:
        return [], str(exc)


def _variant_problems(variants: Sequence[Variant], payloads: Sequence[dict[str, Any]],
                      known: Sequence[Problem], names: Sequence[str]) -> list[Problem]:
    """Errors only a variant has (e.g. a mode × duration the main job avoids), labelled with the variant."""
    found = []
    for variant, body in zip(variants[1:], payloads[1:], strict=True):
        for problem in _with_advice(validate_payload(body), names):
            if problem.level == rules.ERROR and problem not in known:
                found.append(Problem(problem.path, f"{variant.label}: {problem.message}", problem.level))
    return found


_UNDEFINED_RE = re.compile(r"^@(\S+) is not a defined element")


def _with_advice(problems: Sequence[Problem], names: Sequence[str]) -> list[Problem]:
    """An unknown @name is told the library's spelling of it, or the nearest existing name (names ignore case)."""
    out = []
    for problem in problems:
        match = _UNDEFINED_RE.match(problem.message) if problem.rule == "reference" else None
        if match:
            problem = Problem(problem.path, reference_advice(match.group(1), names), problem.level, problem.rule)
        out.append(problem)
    return out


def evaluate(form: Mapping[str, Any], elements: Sequence[Element]) -> ComposeView:
    """Check and price the form as it stands (pure: no I/O, no Streamlit)."""
    used = form_elements(form)
    specs, pending = preview_specs(e for e in elements if e.name in used)
    job = job_from_form(form, specs)
    payload = build_payload(job)
    extra = form_problems(form, [e.name for e in elements])
    problems = extra + _with_advice(validate_payload(payload), [e.name for e in elements])
    by_field = problems_by_field(problems, job.multi_shots)
    variants, variant_error = _variants(job, form)
    payloads = [build_payload(v.job) for v in variants]
    only_variants = _variant_problems(variants, payloads, problems, [e.name for e in elements])
    if only_variants:
        by_field.setdefault("variants", []).extend(only_variants)
    errors = errors_only(problems) + only_variants
    return ComposeView(form=form, elements=tuple(elements), job=job, payload=payload, pending_uploads=tuple(pending),
                       problems=tuple(problems), by_field=by_field, variants=tuple(variants),
                       payloads=tuple(payloads), variant_error=variant_error, errors=tuple(errors),
                       credits=batch_cost(payloads) if variants else None, extra_problems=tuple(extra))
