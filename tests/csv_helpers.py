"""Test helpers for reading the history file's bytes the way an outside tool would."""

from __future__ import annotations

from lib.history.csvfile import record_spans


def split_torn_tail(data: bytes) -> tuple[bytes, bytes]:
    """Split bytes into complete CSV records and an unfinished final record left by an interrupted write."""
    _offsets, end = record_spans(data, 0)
    return data[:end], data[end:]
