""""Load demo project" (sandbox mode only): two sample elements, a multi-shot draft and a finished 2×2 variant grid.

It goes through the app's own storage and task code (library, drafts, submit_variants, refresh_task), so what it
leaves behind is exactly what a real run in the sandbox makes. It is idempotent: elements are found by name, the
draft by its name, the grid by its batch id, and a second load adds nothing twice (it only finishes what is missing).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from PIL import Image, ImageDraw

from lib.compose.batches import submit_variants, variant_jobs
from lib.compose.form import default_form, new_shot
from lib.elements.model import Uploader
from lib.kie.client import KieClient
from lib.kling.job import Job
from lib.sandbox.backend import SandboxBackend
from lib.storage.base import Storage
from lib.tasks.follow import refresh_task
from lib.trust.fetch import Allowance

logger = logging.getLogger(__name__)

# name, description, colour: colours far apart and bright, so each element is easy to spot in a video
DEMO_ELEMENTS = (
    ("demo_fox", "A red fox with a white-tipped tail, sample element", (235, 90, 20)),
    ("demo_robot", "A small teal robot with round glowing eyes, sample element", (20, 190, 200)),
)
DEMO_DRAFT = "Demo: fox meets robot (multi-shot)"
DEMO_BATCH = "demo-grid"
DEMO_PROMPT = "The fox and the robot share an umbrella on a rainy neon street @demo_fox @demo_robot"
DEMO_SHOTS = (("Wide shot: the fox trots through the rain @demo_fox", 2),
              ("The robot waits under a flickering sign @demo_robot", 2),
              ("Close up: they meet and share the umbrella @demo_fox @demo_robot", 3))
MAX_REFRESHES = 6  # the grid is created in immediate progress, so one query normally finishes each task


@dataclass
class DemoReport:
    """What a load added; `messages` holds anything that went wrong (shown to the presenter)."""

    elements: list[str] = field(default_factory=list)
    draft: str = ""
    tasks: list[str] = field(default_factory=list)
    archived: int = 0
    messages: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the page."""
        parts = [f"{len(self.elements)} element(s)" if self.elements else "",
                 "a multi-shot draft" if self.draft else "", f"{len(self.tasks)} task(s)" if self.tasks else "",
                 f"{self.archived} video(s) archived" if self.archived else ""]
        added = ", ".join(p for p in parts if p)
        return f"Demo project loaded: added {added}." if added else "The demo project is already loaded."


def sample_image(colour: tuple[int, int, int], variant: int) -> bytes:
    """A 512×512 PNG: the element's colour with a lighter badge, different per reference image."""
    image = Image.new("RGB", (512, 512), colour)
    draw = ImageDraw.Draw(image)
    light = tuple(min(255, c + 90) for c in colour)
    inset = 120 + 40 * variant
    draw.ellipse((inset, inset, 512 - inset, 512 - inset), fill=light)
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def load_demo_project(storage: Storage, client: KieClient, uploader: Uploader, backend: SandboxBackend, *,
                      allow_private: Allowance) -> DemoReport:
    """Fill the library, drafts and History with the demo project; safe to call again."""
    report = DemoReport()
    _add_elements(storage, report)
    _add_draft(storage, report)
    if not any(row.batch_id == DEMO_BATCH for row in storage.ledger.rows()):
        with immediate_progress(backend):  # the grid is "finished" at once, like a project opened after a day
            result = submit_variants(client, storage.ledger, storage.library, uploader, _grid(), origin="sandbox",
                                     batch_id=DEMO_BATCH)
        report.tasks, report.messages = result.task_ids, result.messages
    _finish_grid(storage, client, report, allow_private)
    logger.info("%s", report.summary())
    return report


def _add_elements(storage: Storage, report: DemoReport) -> None:
    for name, description, colour in DEMO_ELEMENTS:
        if storage.library.by_name(name) is None:
            files = [(f"{name}_{n + 1}.png", sample_image(colour, n)) for n in range(2)]
            storage.library.create(name, description, files=files)
            report.elements.append(name)


def _add_draft(storage: Storage, report: DemoReport) -> None:
    if DEMO_DRAFT in storage.drafts.names():
        return
    form = default_form()
    form.update(compose_multi=True, compose_shots=[new_shot(p, d) for p, d in DEMO_SHOTS], compose_mode="pro",
                compose_sound=True, compose_duration=sum(d for _, d in DEMO_SHOTS), compose_aspect="16:9")
    report.draft = storage.drafts.save(DEMO_DRAFT, form)


def _grid() -> list:
    """std/pro × sound on/off of one single-shot job that uses both elements."""
    base = Job(prompt=DEMO_PROMPT, duration=5, mode="std", sound=False, aspect_ratio="16:9")
    return variant_jobs(base, modes=("std", "pro"), sounds=(True, False))


def _finish_grid(storage: Storage, client: KieClient, report: DemoReport, allow_private: Allowance) -> None:
    """Query each unfinished demo task and archive each video not archived yet."""
    for _ in range(MAX_REFRESHES):
        pending = [row for row in storage.ledger.rows() if row.batch_id == DEMO_BATCH
                   and (not row.finished or (row.state == "succeeded" and storage.media.video(row.task_id) is None))]
        if not pending:
            return
        for row in pending:
            had_video = storage.media.video(row.task_id) is not None
            _, error = refresh_task(client, storage.ledger, storage.media, row, allow_private=allow_private)
            if error is not None:
                report.messages.append(f"{row.task_id}: {error.user_message()}")
            elif not had_video and storage.media.video(row.task_id) is not None:
                report.archived += 1
        if report.messages:
            return


@contextmanager
def immediate_progress(backend: SandboxBackend) -> Iterator[None]:
    """Tasks created inside finish on their first query (another session's task made meanwhile does too)."""
    before = backend.config.progress
    backend.configure(progress="immediate")
    try:
        yield
    finally:
        backend.configure(progress=before)
