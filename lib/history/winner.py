"""Pick the winner of a comparison: recorded on the runs, then forked or promoted to a higher mode."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from lib.history.row import HistoryRow
from lib.kling import rules
from lib.kling.pricing import estimate_credits
from lib.storage.base import LedgerStore

WINNER_MARK = "🏆 winner of"


def winner_note(notes: str, winner: str, others: Sequence[str]) -> str:
    """The winner's notes with one line saying which runs it beat (replacing an earlier such line)."""
    kept = [line for line in notes.splitlines() if not line.startswith(WINNER_MARK)]
    return "\n".join([*kept, f"{WINNER_MARK}: {', '.join(o for o in others if o != winner)}"]).strip()


def pick_winner(ledger: LedgerStore, winner: str, compared: Sequence[str]) -> HistoryRow:
    """Record the choice: the winner gets five stars and a `winner of` note naming the others."""
    row = ledger.get(winner)
    if row is None:
        raise KeyError(winner)
    return ledger.update(winner, rating=5, notes=winner_note(row.notes, winner, compared), updated_at=row.updated_at)


def promotions(row: HistoryRow) -> list[tuple[str, dict[str, Any], int]]:
    """(mode, payload, estimated credits) for the same recipe in each higher mode, cost first."""
    payload = row.payload
    current = str((payload.get("input") or {}).get("mode") or row.mode)
    higher = rules.MODES[rules.MODES.index(current) + 1:] if current in rules.MODES else ()
    out = []
    for mode in higher:
        body = copy.deepcopy(payload)
        body.pop("callBackUrl", None)
        body.setdefault("input", {})["mode"] = mode
        out.append((mode, body, estimate_credits(body)))
    return out
