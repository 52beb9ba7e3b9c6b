"""The ledger's errors: every message names the file and the fix."""

from __future__ import annotations


class HistoryError(Exception):
    """Base class for history problems."""


class HistoryFileError(HistoryError):
    """The history file is unreadable or busy; the message names the file and the fix."""


class UnknownTaskError(HistoryError, KeyError):
    """No history row has this task id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown task"


class DuplicateTaskError(HistoryError, ValueError):
    """A row with this task id is already in the history."""
