"""The one clock: timezone-aware UTC now, and ISO 8601 formatting of it."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def format_time(value: datetime | None) -> str:
    """ISO 8601 UTC with a Z suffix ('' for None)."""
    return "" if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """Parse an ISO 8601 time (naive means UTC) or epoch seconds; raise ValueError otherwise."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        try:
            value = datetime.fromisoformat(text.strip())
        except ValueError:
            try:
                return datetime.fromtimestamp(float(text), UTC)
            except (ValueError, OverflowError, OSError):
                raise ValueError(f"{text.strip()[:40]!r} is not a date and time") from None
    if value.tzinfo is UTC:
        return value
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
