"""A validation report: the Problem type, the collector, and the value and URL checks every check shares."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from lib.kling import rules
from lib.kling.rules import ERROR, WARNING

_URL_SHOWN_CHARS = 60


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request: where (dotted path), what to do, and how bad."""

    path: str
    message: str
    level: str
    rule: str = field(default="", compare=False)


class Report:
    """Collects problems; one method per level keeps the checks short."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def error(self, path: str, rule: str, message: str) -> None:
        """Record a problem that blocks submitting."""
        self.problems.append(Problem(path, message, ERROR, rule))

    def warn(self, path: str, rule: str, message: str) -> None:
        """Record a problem worth knowing that does not block submitting."""
        self.problems.append(Problem(path, message, WARNING, rule))


def live_verdict(rule_key: str) -> str:
    """A plain sentence on whether KIE would refuse a live job that breaks this rule, from the rules table's row
    ('' when the row records nothing)."""
    rule = rules.RULES.get(rule_key)
    if rule is None or not rule.live:
        return ""
    why = f": {rule.live_why}" if rule.live_why else ""
    return {rules.LIVE_REFUSED: f"A live job like this is refused by KIE{why}.",
            rules.LIVE_ACCEPTED: f"A live job like this is accepted by KIE{why}.",
            rules.LIVE_UNCONFIRMED: f"Would a live job be refused? Not known{why}."}[rule.live]


def with_verdict(rule_key: str, message: str) -> str:
    """`message` followed by the rule's live verdict, when the rules table records one."""
    verdict = live_verdict(rule_key)
    return f"{message} {verdict}" if verdict else message


def errors_only(problems: Iterable[Problem]) -> list[Problem]:
    """The problems that block submitting."""
    return [p for p in problems if p.level == ERROR]


def kind_of(value: Any) -> str:
    """A value's type in words a person knows."""
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (true/false)"
    names = {str: "text", int: "a number", float: "a number", list: "a list", dict: "an object"}
    return names.get(type(value), type(value).__name__)


def show(value: Any) -> str:
    """A value quoted for a message, cut to 60 characters."""
    text = value if isinstance(value, str) else repr(value)
    return repr(text if len(text) <= _URL_SHOWN_CHARS else text[:_URL_SHOWN_CHARS] + "…")


def url_problem(value: Any) -> str | None:
    """Why a value is not an absolute http(s) URL, or None when it is one."""
    if not isinstance(value, str):
        return f"is {kind_of(value)}, not a web address"
    if not value.strip():
        return "is empty"
    if value != value.strip() or any(ch.isspace() for ch in value):
        return f"{show(value)} contains spaces"
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        return f"{show(value)} is not a valid web address"
    scheme = parts.scheme.lower()
    if scheme in rules.URL_SCHEMES and host:
        return None
    if scheme in rules.URL_SCHEMES:
        return f"{show(value)} has no host name"
    if scheme:
        return f"{show(value)} is a {scheme}: link, not a web address KIE can fetch"
    return f"{show(value)} is not a full web address (no http:// or https://)"


def check_url(value: Any, path: str, label: str, report: Report) -> None:
    """Report a value that is not an absolute http(s) URL."""
    reason = url_problem(value)
    if reason:
        report.error(path, "url", f"{label} {reason}: use an http:// or https:// URL (upload local files first).")


def url_list(value: Any, path: str, label: str, report: Report) -> list | None:
    """The list at a URL field, each entry checked; None (after an error) when it is not a list."""
    if not isinstance(value, list):
        report.error(path, "url", f"{label} must be a list of URLs, not {kind_of(value)}.")
        return None
    for index, url in enumerate(value):
        check_url(url, f"{path}[{index}]", f"{label} {index + 1}", report)
    return value
