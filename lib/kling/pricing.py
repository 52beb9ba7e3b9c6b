"""Credit prices for Kling 3.0 on KIE, as editable data, and the estimates built on them."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from lib.kling import rules
from lib.kling.job import parse_duration

log = logging.getLogger(__name__)

# Credits per second of output, by mode and sound (kie-api.md §9, KIE pricing rows of
# 2026-03-26 and 2026-06-09). 4K has no audio surcharge. Edit here when KIE changes prices.
PRICES: dict[str, dict[bool, int]] = {
    "std": {False: 14, True: 20},
    "pro": {False: 18, True: 27},
    "4K": {False: 67, True: 67},
}
USD_PER_CREDIT = Decimal("0.005")

# Output size by mode and aspect ratio (K2–K4).
RESOLUTIONS: dict[str, dict[str, str]] = {
    "std": {"16:9": "1280×720", "9:16": "720×1280", "1:1": "720×720"},
    "pro": {"16:9": "1920×1080", "9:16": "1080×1920", "1:1": "1080×1080"},
    "4K": {"16:9": "3840×2160", "9:16": "2160×3840", "1:1": "2160×2160"},
}


def credits_per_second(mode: str, sound: bool) -> int:
    """Credits one second of video costs in this mode, with or without sound."""
    if mode not in PRICES:
        raise ValueError(f"No price for mode {mode!r}: choose one of {', '.join(PRICES)}.")
    return PRICES[mode][bool(sound)]


def estimate_credits(payload: dict[str, Any]) -> int:
    """Credits a createTask body will cost; multi-shot bills on the total duration."""
    data = payload.get("input") if isinstance(payload, dict) else None
    if not isinstance(data, dict):
        raise ValueError("Cannot price a request without an input object.")
    seconds = parse_duration(data.get("duration"))
    if seconds is None:
        raise ValueError(f"Cannot price a request whose duration is {data.get('duration')!r}: "
                         "set a duration from 3 to 15 s.")
    if not rules.DURATION_MIN <= seconds <= rules.DURATION_MAX:
        raise ValueError(f"Cannot price a {seconds} s video: the duration must be 3 to 15 s.")
    return seconds * credits_per_second(data.get("mode"), data.get("sound") is True)


def credits_to_usd(credits: int | Decimal) -> Decimal:
    """US dollars for a number of credits (1 credit = US$0.005)."""
    return Decimal(credits) * USD_PER_CREDIT


def format_usd(amount: Decimal) -> str:
    """Dollars with cents, and a third decimal only when it matters (US$2.025)."""
    text = f"{amount:,.3f}"
    return "US$" + (text[:-1] if text.endswith("0") else text)


def format_cost(credits: int) -> str:
    """A price for people: '70 credits (US$0.35)'."""
    unit = "credit" if credits == 1 else "credits"
    return f"{credits:,} {unit} ({format_usd(credits_to_usd(credits))})"
