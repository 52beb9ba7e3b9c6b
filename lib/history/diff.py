"""Payload diffs for Compare: every leaf of the compared createTask bodies, side by side, with what differs."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

ABSENT = "—"  # a field a payload does not have, in the diff table


# -- payload diff -----------------------------------------------------------------------------------
def flatten_payload(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaves of nested JSON keyed by path ('input.multi_prompt[0].prompt'); empty containers are leaves."""
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for key in value:
            out.update(flatten_payload(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list | tuple) and value:
        out = {}
        for i, item in enumerate(value):
            out.update(flatten_payload(item, f"{prefix}[{i}]"))
        return out
    return {prefix: value} if prefix else {}


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


@dataclass(frozen=True)
class DiffRow:
    """One field path with its value in each run (None when a run lacks the field)."""

    path: str
    values: tuple[str | None, ...]
    differs: bool


def _path_order(path: str) -> tuple[Any, ...]:
    # "input.multi_prompt[10]" sorts after "[2]": compare list indices as numbers
    parts: list[Any] = []
    for piece in path.replace("[", ".[").split("."):
        parts.append((1, int(piece[1:-1]), "") if piece.startswith("[") else (0, 0, piece))
    return tuple(parts)


def payload_diff(payloads: Sequence[Mapping[str, Any]]) -> list[DiffRow]:
    """Field-by-field comparison of payloads: every path any of them has, flagged where they differ."""
    flat = [flatten_payload(p) for p in payloads]
    paths = sorted({path for f in flat for path in f}, key=_path_order)
    rows = []
    for path in paths:
        values = tuple(_shown(f[path]) if path in f else None for f in flat)
        rows.append(DiffRow(path, values, len(set(values)) > 1))
    return rows


def diff_frame(diff: Sequence[DiffRow], labels: Sequence[str], only_differences: bool = False) -> pd.DataFrame:
    """The diff as a table: 'Field' then one column per run label, and a 'differs' flag."""
    import pandas as pd  # lazily, as in table_frame

    if len(set(labels)) != len(labels):
        raise ValueError("run labels must be unique")
    records = [{"Field": d.path, **{lab: ABSENT if v is None else v for lab, v in zip(labels, d.values, strict=True)},
                "differs": d.differs} for d in diff if d.differs or not only_differences]
    return pd.DataFrame(records, columns=["Field", *labels, "differs"])
