"""What bench/browser_latency.py times: one Interaction per row, grouped by page in bench/latency_<page>.py.

Each page module lists INTERACTIONS; a helper adding rows for one page edits only that page's module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Page = Any  # a Playwright sync Page

SETTLE_MS = 1500


def settle(page: Page) -> None:
    """Let the page finish its rerun and paint before the next timed action."""
    page.wait_for_timeout(SETTLE_MS)


@dataclass(frozen=True)
class Interaction:
    """One timed row: open `path`, run `setup` once, then per round run `before` (untimed) and time `action`."""

    name: str
    path: str  # the app page, e.g. "Compose"
    action: Callable[[Page], None]
    setup: Callable[[Page], None] | None = None
    before: Callable[[Page], None] | None = None
    uses_ledger: bool = False  # the row's figure names the ledger size
    reruns: bool = True  # False: the action runs no script (e.g. an expander opens in the browser); timed to paint
    floor: str = ""  # "table" (a click on an st.dataframe row) or "dialog" (a click that opens an st.dialog with a
    # form): the same thing in a bare page is timed beside it (browser_latency.FLOORS)
