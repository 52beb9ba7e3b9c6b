"""One error tree for every way a KIE call can fail, each with a plain-language fix."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

log = logging.getLogger(__name__)

# What a person should do about each documented code (kie-api.md §6, §3.2, §4).
FIXES: dict[int, str] = {
    400: "The request was missing a required value. This is a bug in the request: check the fields and try again.",
    401: "The API key was refused. Check KIE_API_KEY (or the key in the sidebar) at https://kie.ai/api-key.",
    402: "Your KIE account has too few credits for this job. Top up at https://kie.ai or pick a cheaper mode or shorter duration.",
    404: "KIE could not find that task or endpoint. Check the task id and the API base URL (KIE_API_BASE).",
    405: "The upload host refused the method. Check KIE_UPLOAD_BASE points at KIE's file host.",
    408: "KIE's upstream returned no result for over 10 minutes. The task is treated as failed: submit it again as a new task.",
    422: "KIE rejected the request's parameters. Fix the field named in the message and submit again.",
    429: "Too many requests (KIE allows 20 new tasks per 10 s). Wait a few seconds and try again.",
    433: "This API key has used up its hourly, daily or total limit. Raise the sub-key limit at https://kie.ai/api-key or use another key.",
    455: "KIE is under maintenance. Nothing was created: try again in a few minutes.",
    500: "KIE had a server error. Try again in a minute; if it keeps happening, check https://kie.ai/logs.",
    501: "Generation failed on KIE's side. Failed tasks report 0 credits consumed: adjust the prompt or inputs and submit again.",
    505: "This feature is disabled for your account. Contact KIE support or use another model setting.",
}
# A gateway answered after forwarding (or while forwarding) the request: KIE may have acted on it.
GATEWAY_STATUSES = frozenset({502, 504})
DEFAULT_FIX = "Unexpected answer from KIE. Try again; if it keeps happening, check https://kie.ai/logs."


class KieError(Exception):
    """Base of every KIE failure; `fix` tells the user what to do."""

    fix: str = DEFAULT_FIX
    request_sent: bool = False  # True when KIE may have received (and acted on) the request

    def __init__(self, message: str, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if fix:
            self.fix = fix

    def user_message(self) -> str:
        """The message and its fix, ready to show."""
        return f"{self.message} — {self.fix}"


class KieConnectionError(KieError):
    """The server could not be reached, or dropped the connection before answering."""

    fix = "Check your network connection and the API base URL (KIE_API_BASE / KIE_UPLOAD_BASE), then try again."


class KieTimeoutError(KieError):
    """No answer in time. `request_sent` says whether the request may have reached KIE."""

    def __init__(self, message: str, request_sent: bool) -> None:
        fix = (
            "KIE may have received the request. Check History (or https://kie.ai/logs) before submitting again."
            if request_sent
            else "KIE did not answer in time. Try again in a moment."
        )
        super().__init__(message, fix)
        self.request_sent = request_sent


class KieApiError(KieError):
    """KIE answered with a failure code (from the body `code` first, else the HTTP status)."""

    def __init__(self, code: int, msg: str, http_status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(f"KIE error {code}: {msg}", FIXES.get(code, DEFAULT_FIX))
        self.code = code
        self.msg = msg
        self.http_status = http_status
        self.retry_after = retry_after


class KieTaskFailed(KieError):
    """The task ran and ended in state fail."""

    def __init__(self, task_id: str, fail_code: str | None, fail_msg: str | None) -> None:
        super().__init__(f"Task {task_id} failed ({fail_code or 'no code'}): {fail_msg or 'no reason given'}",
                         advice_for_failure(fail_code, fail_msg))
        self.task_id, self.fail_code, self.fail_msg = task_id, fail_code, fail_msg


class KieProtocolError(KieError):
    """KIE's answer did not have the expected shape (e.g. an unknown task state)."""


class ValidationError(Exception):
    """A payload broke Kling 3.0 rules before anything was sent."""

    def __init__(self, problems: list[Any]) -> None:
        super().__init__("; ".join(getattr(p, "message", str(p)) for p in problems))
        self.problems = problems


# KIE's failCodes are coarse (500 "retry later", 501 "generation failed"); the reason is in failMsg. Each row:
# (what it is, failMsg wording that decides it, or None for any wording; the codes it applies to, or None for any).
MODERATION_FIX = ("KIE's content check refused this prompt or its images. Change the prompt or the images "
                  "(frames, element pictures) before submitting again: the same inputs will be refused again.")
_MODERATION_RE = re.compile(r"moderat|polic(y|ies)|sensitive|nsfw|inappropriate|prohibited|violat|unsafe|"
                            r"safety|censor|explicit content|sexual|not allowed content|risk control|审核|敏感|违规", re.IGNORECASE)
_FIELD_RE = re.compile(r"\b(prompt|duration|mode|sound|aspect_ratio|image_urls|multi_shots|multi_prompt|"
                       r"kling_elements|element_input_urls|element_input_video_urls|element_input_audio_urls|"
                       r"start_time|end_time|callBackUrl|model|cfg_scale|negative_prompt|name|description)\b")
VALIDATION_CODES = frozenset({400, 422})
SERVER_CODES = frozenset({500, 502, 503, 504})
FAILURE_ADVICE: tuple[tuple[str, re.Pattern[str] | None, frozenset[int] | None], ...] = (
    ("moderation", _MODERATION_RE, None),       # whatever the code: a resubmit of the same inputs is wasted
    ("validation", None, VALIDATION_CODES),     # the field KIE names
    ("server", None, SERVER_CODES),             # a real server error: retry later
    ("documented", None, frozenset(FIXES)),     # KIE's other codes keep their fix
)


def failure_kind(fail_code: object, fail_msg: str | None) -> str:
    """Which FAILURE_ADVICE row a failure falls in: moderation, validation, server, documented or unknown."""
    code, msg = _as_int(str(fail_code).strip()) if fail_code is not None else None, fail_msg or ""
    for kind, wording, codes in FAILURE_ADVICE:
        if (wording is None or wording.search(msg)) and (codes is None or code in codes):
            return kind
    return "unknown"


def advice_for_failure(fail_code: object, fail_msg: str | None = None) -> str:
    """What a person should do about a failed task, decided from KIE's failCode and failMsg together."""
    kind, msg = failure_kind(fail_code, fail_msg), " ".join((fail_msg or "").split())
    code = _as_int(str(fail_code).strip()) if fail_code is not None else None
    if kind == "moderation":
        return MODERATION_FIX
    if kind == "validation":
        field = _FIELD_RE.search(msg)
        if field:
            return (f"KIE rejected the field {field.group(1)} ({msg}). Fix {field.group(1)} and submit again; "
                    "the same request will be rejected again.")
        return FIXES[422] if not msg else f"KIE rejected the request's parameters ({msg}). {FIXES[422]}"
    if kind in ("server", "documented"):
        return FIXES.get(code or 500, FIXES[500])
    return f"KIE says: {msg}" if msg else FIXES[501]


def _as_int(value: object) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def parse_body(text: str) -> dict[str, Any] | None:
    """The JSON object in a response body, or None for HTML, empty or non-object bodies."""
    try:
        body = json.loads(text)
    except (ValueError, TypeError):
        return None
    return body if isinstance(body, dict) else None


def body_message(body: dict[str, Any]) -> str:
    """KIE's message, which arrives as `msg` or `message`."""
    return str(body.get("msg") or body.get("message") or "").strip()


def error_from_response(status: int, text: str, headers: dict[str, str] | None = None) -> KieApiError:
    """Build the error for a failed answer; survives HTML error pages and empty bodies."""
    headers = headers or {}
    body = parse_body(text)
    retry_after = _retry_after(headers)
    if body is None:
        snippet = " ".join(text.split())[:120] if text else "empty body"
        kind = "an HTML page" if "<html" in text.lower() else "a non-JSON answer"
        code = status if status >= 400 else 500
        msg = f"HTTP {status} with {kind} ({snippet})"
        err = KieApiError(code, msg, status, retry_after)
        if status in GATEWAY_STATUSES:
            err.fix = ("A proxy or gateway answered instead of KIE, so KIE may still have received the request. "
                       "If you were submitting, check History (or https://kie.ai/logs) before submitting again; "
                       "otherwise try again in a minute.")
        elif kind == "an HTML page":
            err.fix = "A proxy or gateway answered instead of KIE. " + FIXES.get(code, DEFAULT_FIX)
        return err
    code = _as_int(body.get("code"))
    if code is None or code == 200:
        code = status if status >= 400 else 500
    return KieApiError(code, body_message(body) or f"HTTP {status}", status, retry_after)


def _retry_after(headers: dict[str, str]) -> float | None:
    for name, value in headers.items():
        if name.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except ValueError:
                return None
    return None
