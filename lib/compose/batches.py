"""Batches: the variant grid, its cost and dry run, creating each variant once, and following the created tasks."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from lib.elements.model import ElementError, Uploader, to_element_spec
from lib.history.row import HistoryRow
from lib.kie.client import KieClient
from lib.kie.errors import ValidationError
from lib.kling import rules
from lib.kling.job import Job, build_payload, referenced_names
from lib.kling.pricing import estimate_credits, format_cost
from lib.kling.problems import Problem, errors_only
from lib.kling.validation import validate_payload
from lib.storage.base import LedgerStore, LibraryStore, MediaStore
from lib.tasks.submit import RateLimiter, new_batch_id, submit_payload
from lib.trust.urls import playable_url

log = logging.getLogger(__name__)

MAX_BATCH = 20


@dataclass(frozen=True)
class Variant:
    """One task of a batch: a label for people and the job to send."""

    label: str
    job: Job


def variant_jobs(base: Job, *, takes: int = 1, modes: Iterable[str] = (), sounds: Iterable[bool] = (),
                 prompts: Iterable[str] = ()) -> list[Variant]:
    """The grid mode × sound × prompt, each repeated `takes` times; raises ValueError above 20 tasks.

    Multi-shot keeps sound on and ignores prompt variants (each shot has its own prompt)."""
    modes = list(dict.fromkeys(modes)) or [base.mode]
    sounds = [True] if base.multi_shots else (list(dict.fromkeys(sounds)) or [base.sound])
    extra = [p.strip() for p in prompts if p.strip()] if not base.multi_shots else []
    texts = list(dict.fromkeys([base.prompt, *extra]))
    count = len(modes) * len(sounds) * len(texts) * max(1, takes)
    if count > MAX_BATCH:
        raise ValueError(f"That is {count} tasks; a batch may have at most {MAX_BATCH}: "
                         "pick fewer modes, sound options, prompt variants or takes.")
    variants = []
    for mode in modes:
        for sound in sounds:
            for p_index, text in enumerate(texts):
                for take in range(max(1, takes)):
                    parts = [mode, "sound on" if sound else "sound off"]
                    parts += [f"prompt {p_index + 1}"] if len(texts) > 1 else []
                    parts += [f"take {take + 1}"] if takes > 1 else []
                    variants.append(Variant(" · ".join(parts), replace(base, mode=mode, sound=sound, prompt=text)))
    return variants


def batch_cost(payloads: Iterable[dict[str, Any]]) -> int | None:
    """Total credits of a batch, or None while a payload cannot be priced (e.g. a bad duration)."""
    try:
        return sum(estimate_credits(p) for p in payloads)
    except (ValueError, TypeError):
        return None


def submit_label(count: int, credits: int | None) -> str:
    """The submit button's text, with the cost of exactly what it sends."""
    what = "Submit" if count == 1 else f"Submit {count} tasks"
    return f"{what} · {format_cost(credits)}" if credits is not None else f"{what} (fix the errors first)"


def needs_confirmation(credits: int | None, balance: Decimal | None, limit: int) -> list[str]:
    """Why this submit must be confirmed: over the balance or over the user's per-submit limit."""
    reasons = []
    if credits is None:
        return reasons
    if balance is not None and credits > balance:
        reasons.append(f"It costs {credits:,} credits but the balance is {balance:,.2f}.")
    if limit and credits > limit:
        reasons.append(f"It costs {credits:,} credits, above your per-submit limit of {limit:,}.")
    return reasons


@dataclass(frozen=True)
class DryRun:
    """What a submit would do, computed without sending anything."""

    tasks: int
    credits: int | None
    errors: list[Problem]
    warnings: list[Problem]
    confirm: list[str]
    pending_uploads: list[str]

    def summary(self) -> str:
        """One line for people."""
        if self.errors:
            return f"Dry run: {len(self.errors)} error(s) would stop this submit. Nothing was sent."
        cost = format_cost(self.credits) if self.credits is not None else "an unknown cost"
        extra = f" Elements uploaded first: {', '.join(self.pending_uploads)}." if self.pending_uploads else ""
        return f"Dry run OK: {self.tasks} task(s) for {cost}. Nothing was sent or spent.{extra}"


def dry_run(payloads: list[dict[str, Any]], *, balance: Any, limit: int, extra: Iterable[Problem] = (),
            pending_uploads: Iterable[str] = ()) -> DryRun:
    """Validate every payload of a submit and price it; sends nothing."""
    problems = list(extra)
    for payload in payloads:
        problems.extend(p for p in validate_payload(payload) if p not in problems)
    credits = batch_cost(payloads)
    return DryRun(len(payloads), credits, errors_only(problems),
                  [p for p in problems if p.level != rules.ERROR], needs_confirmation(credits, balance, limit),
                  list(pending_uploads))


@dataclass
class BatchResult:
    """What one submit click produced: created rows, and messages (with fixes) for what failed."""

    batch_id: str
    task_ids: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


def submit_variants(client: KieClient, ledger: LedgerStore, library: LibraryStore, uploader: Uploader,
                    variants: list[Variant], *, origin: str, limiter: RateLimiter | None = None,
                    batch_id: str | None = None, now: datetime | None = None,
                    on_wait: Callable[[float], None] | None = None, callbacks_to: str | None = None,
                    is_alive: Callable[[str], bool] | None = None) -> BatchResult:
    """Refresh the referenced elements, then create each variant once (ledger row first); stop at the first error.

    `on_wait(seconds)` hears about every wait for KIE's rate limit (429), to show "retrying in N s";
    `is_alive(url)` checks uploads older than 24 h (lib.kie.uploads.liveness_checker)."""
    result = BatchResult(batch_id or new_batch_id())
    names = list(dict.fromkeys(n for v in variants for t in v.job.prompts() for n in referenced_names(t)))
    try:
        fresh = {e.name: to_element_spec(e) for e in library.ensure_fresh(names, uploader, now=now,
                                                                                  is_alive=is_alive)} if names else {}
    except ElementError as exc:
        result.messages.extend(f"Elements not ready: {p}" for p in exc.problems)
        return result
    for variant in variants:
        job = replace(variant.job, elements=tuple(fresh.values()))  # build_payload keeps only referenced ones
        try:
            sub = submit_payload(client, ledger, build_payload(job), origin=origin, batch_id=result.batch_id,
                                 limiter=limiter, on_wait=on_wait, callbacks_to=callbacks_to)
        except ValidationError as exc:
            result.messages.append(f"{variant.label}: not sent — {exc}")
            break
        if sub.row is not None:
            result.task_ids.append(sub.row.task_id)
        if sub.error is not None:
            result.messages.append(f"{variant.label}: {sub.error.user_message()}")
            break
    return result


def elapsed_s(row: HistoryRow, now: datetime | None = None) -> int:
    """Seconds a task ran (to now while unfinished, to its last update once finished)."""
    end = row.updated_at if row.finished and row.updated_at else (now or datetime.now(UTC))
    return max(0, int((end - row.created_at).total_seconds()))


def followed_rows(ledger: LedgerStore, task_ids: Iterable[str]) -> list[HistoryRow]:
    """The ledger rows of the followed tasks, newest first (ids not in the ledger are skipped)."""
    rows = [row for task_id in dict.fromkeys(task_ids) if (row := ledger.get(task_id)) is not None]
    return sorted(rows, key=lambda r: r.created_at, reverse=True)


def video_source(row: HistoryRow, media: MediaStore) -> str | None:
    """Where to play a finished task from: the app's own archived copy (found by task id) when present, else
    KIE's result URL when its host is one of KIE's media hosts; never a path or URL a row names by itself."""
    video = media.video(row.task_id)
    if video is not None:
        return str(video)
    return playable_url(row.result_url)


# Seconds a task usually takes before this history has its own finished runs of that mode and duration.
USUAL_BASE_S = {"std": 90, "pro": 150, "4K": 240}
USUAL_PER_SECOND_S = 10


def usual_seconds(rows: Iterable[HistoryRow], mode: str, duration: int | None) -> int:
    """How long a task of this mode and duration usually takes: the median of this history's succeeded runs
    of the same kind, else a rough default per mode."""
    took = sorted(int((r.updated_at - r.created_at).total_seconds()) for r in rows
                  if r.state == "succeeded" and r.updated_at and r.mode == mode and r.duration == duration)
    if took:
        return max(1, took[len(took) // 2])
    return USUAL_BASE_S.get(mode, 120) + USUAL_PER_SECOND_S * int(duration or 5)


def progress_fraction(elapsed: int, usual: int) -> float:
    """Elapsed against the usual time, held below 100 % until the task really finishes."""
    return min(0.95, max(0.0, elapsed / max(1, usual)))
