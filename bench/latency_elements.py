"""Elements rows of bench/browser_latency.py."""

from __future__ import annotations

from _latency import Interaction

INTERACTIONS: list[Interaction] = []
