"""Prompt templates: `{{variable}}` substitution and `{a|b|c}` choices, rendered deterministically per row.

The choice rule: every row makes exactly one job, and the choices of a template cycle by row number like an
odometer. Row r (0-based) is read as a mixed-radix number whose first digit belongs to the first choice group:
group 0 takes option r mod n0, group 1 takes option (r // n0) mod n1, and so on. One row gives one task, so
the manifest maps row → task one to one, the cost is the number of rows × their price (no surprise
multiplication: 3 × 4 × 5 choices over 1,000 rows would otherwise be 60,000 paid tasks), and enough rows walk
through every combination in a predictable order. To get every combination for every row, add rows.

Values are data: a `{{`, `{a|b}` or `}}` inside a row's value is kept literally, never expanded.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lib.compose.form import FORM_DEFAULTS, form_of

log = logging.getLogger(__name__)

VARIABLE_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
CHOICE_RE = re.compile(r"\{([^{}|]*(?:\|[^{}|]*)+)\}")
_TOKEN_RE = re.compile(f"{VARIABLE_RE.pattern}|{CHOICE_RE.pattern}")
# Variant-grid fields of the Compose form do not apply to a batch (each row is one job; takes come from rows).
_GRID_RESET = {"compose_takes": 1, "compose_grid_modes": [], "compose_grid_sounds": [],
               "compose_prompt_variants": "", "compose_limit": 0}


@dataclass(frozen=True)
class Segment:
    """A piece of a template text: literal text, a variable name, or a choice's options."""

    text: str = ""
    variable: str | None = None
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class CompiledText:
    """A template text split once into segments, so rendering 1,000 rows is a join per row."""

    segments: tuple[Segment, ...]

    @property
    def variables(self) -> list[str]:
        """Variable names in order of first use."""
        return list(dict.fromkeys(s.variable for s in self.segments if s.variable))

    @property
    def choice_sizes(self) -> list[int]:
        """How many options each choice group has, in order."""
        return [len(s.options) for s in self.segments if s.options]


def compile_text(text: str) -> CompiledText:
    """Split a template text into literal, variable and choice segments."""
    segments: list[Segment] = []
    last = 0
    for match in _TOKEN_RE.finditer(text):
        if match.start() > last:
            segments.append(Segment(text=text[last:match.start()]))
        if match.group(1):
            segments.append(Segment(variable=match.group(1)))
        else:
            segments.append(Segment(options=tuple(o.strip() for o in match.group(2).split("|"))))
        last = match.end()
    if last < len(text):
        segments.append(Segment(text=text[last:]))
    return CompiledText(tuple(segments))


def choice_digits(row_index: int, sizes: Sequence[int]) -> list[int]:
    """The option each choice group takes on a row (0-based): the odometer rule in the module docstring."""
    digits, rest = [], max(0, row_index)
    for size in sizes:
        digits.append(rest % size)
        rest //= size
    return digits


@dataclass(frozen=True)
class Template:
    """A Compose form (single or multi-shot) whose prompt texts hold variables and choices."""

    form: Mapping[str, Any]
    texts: tuple[CompiledText, ...]

    @property
    def multi(self) -> bool:
        """True for a multi-shot template (one text per shot)."""
        return bool(self.form["compose_multi"])

    @property
    def variables(self) -> list[str]:
        """Every variable of the template, in order of first use."""
        return list(dict.fromkeys(v for t in self.texts for v in t.variables))

    @property
    def choice_sizes(self) -> list[int]:
        """Options per choice group over all texts (prompt, or shot 1…n)."""
        return [n for t in self.texts for n in t.choice_sizes]

    def render_texts(self, values: Mapping[str, str], row_index: int) -> list[str]:
        """Each text with the row's values and the row's choices filled in."""
        digits = iter(choice_digits(row_index, self.choice_sizes))
        out = []
        for compiled in self.texts:
            parts = []
            for seg in compiled.segments:
                if seg.variable:
                    parts.append(str(values.get(seg.variable, "")))
                elif seg.options:
                    parts.append(seg.options[next(digits)])
                else:
                    parts.append(seg.text)
            out.append("".join(parts))
        return out

    def render_form(self, values: Mapping[str, str], row_index: int) -> dict[str, Any]:
        """The Compose form of one row: the template with its texts rendered (other fields shared)."""
        texts = self.render_texts(values, row_index)
        form = dict(self.form)
        if self.multi:
            form["compose_shots"] = [{**shot, "prompt": text} for shot, text in zip(self.form["compose_shots"], texts,
                                                                                    strict=True)]
        else:
            form["compose_prompt"] = texts[0]
        return form


def make_template(form: Mapping[str, Any]) -> Template:
    """A Template from Compose form fields (missing fields take their defaults; the variant grid is off)."""
    full = {key: copy.deepcopy(form.get(key, default)) for key, default in FORM_DEFAULTS.items()}
    full.update(copy.deepcopy(_GRID_RESET))
    if full["compose_multi"]:
        texts = tuple(compile_text(str(s.get("prompt", ""))) for s in full["compose_shots"])
    else:
        texts = (compile_text(str(full["compose_prompt"])),)
    return Template(full, texts)


def template_from_compose(state: Mapping[str, Any]) -> Template:
    """"Start from the current Compose form": its compose_* session keys as a template."""
    return make_template(form_of(state))
