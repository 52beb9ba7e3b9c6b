"""Compose in a real browser (sandbox mode): a three-shot job with an element, and a batch of four variants."""

from __future__ import annotations

import io
import time

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.conftest import screenshot, wait_for_app

pytestmark = pytest.mark.browser

VIDEOS_PLAYABLE = """(n) => {
  const videos = [...document.querySelectorAll('video')];
  return videos.length >= n && videos.every(v => v.readyState >= 2 && v.duration > 0);
}"""


def png(colour: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (480, 480), colour).save(buf, "PNG")
    return buf.getvalue()


def progress_text(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def follow_until_done(page, count: int, timeout_s: float = 60) -> list[str]:
    """Watch the progress section (driven by the page's own fragment) and return the states seen in order."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = progress_text(page)
        for state in ("queued", "running", "succeeded", "failed"):
            if f"{state} · task_" in text and state not in seen:
                seen.append(state)
        if text.count("succeeded · task_") >= count or "failed · task_" in text:
            return seen
        page.wait_for_timeout(400)  # the browser's own clock drives the fragment; the test only watches
    raise AssertionError(f"tasks did not finish in {timeout_s} s; states seen: {seen}")


def commit(page, locator, value: str) -> None:
    locator.fill(value)
    locator.press("Tab")  # text widgets commit on blur
    wait_for_app(page)


def test_three_shot_job_with_element(app_server, page) -> None:
    from lib.elements.library import ElementLibrary
    from lib.history.ledger import Ledger

    ElementLibrary(app_server.data_dir).create("fox", "a red fox", files=[("a.png", png("red")), ("b.png", png("blue"))])
    page.goto(f"{app_server.url}/Compose")
    wait_for_app(page)
    page.get_by_text("Multi-shot (up to 5 shots)").click()
    wait_for_app(page)
    for _ in range(2):
        page.get_by_role("button", name="➕ Add shot").click()
        wait_for_app(page)
    for i, (text, seconds) in enumerate([("the fox wakes up", "3"), ("it trots through snow", "4"),
                                         ("it curls up by a fire", "3")]):
        commit(page, page.get_by_label(f"Shot {i + 1}", exact=True), text)
        commit(page, page.get_by_label("Seconds").nth(i), seconds)
    page.get_by_role("button", name="@fox").click()  # chips insert into shot 1 (the default target)
    wait_for_app(page)
    # a fragment rerun shows no "Running…" badge: wait for the value rather than for the badge
    expect(page.get_by_label("Shot 1", exact=True)).to_have_value("the fox wakes up @fox")
    assert "Total 10 s of 3–15 s" in progress_text(page)
    screenshot(page, "compose-three-shots")

    page.get_by_role("tab", name="cURL").click()
    # @fox is not on KIE's file host yet: no snippet is offered that would create a task that cannot work
    page.get_by_text("Upload @fox first").first.wait_for(timeout=15_000)
    assert not page.locator('[data-testid="stCode"]').count()

    page.get_by_role("button", name="Submit · 200 credits (US$1.00)").click()
    wait_for_app(page)
    seen = follow_until_done(page, 1)
    assert seen[-1] == "succeeded" and len(seen) >= 2, seen
    page.wait_for_function(VIDEOS_PLAYABLE, arg=1, timeout=30_000)
    page.get_by_text("Progress of this session's tasks").scroll_into_view_if_needed()
    screenshot(page, "compose-three-shots-done")
    rows = Ledger.in_dir(app_server.data_dir).rows()
    assert len(rows) == 1 and rows[0].multi_shots and rows[0].elements == ("fox",)
    body = rows[0].payload
    assert [s["duration"] for s in body["input"]["multi_prompt"]] == [3, 4, 3]
    assert body["input"]["duration"] == "10" and body["input"]["sound"] is True
    sent = rows[0].payload["input"]["kling_elements"][0]["element_input_urls"]
    assert all("/files/" in url for url in sent)  # uploaded to the sandbox's file host at submit


def test_batch_of_four_variants_all_complete(app_server, page) -> None:
    from lib.history.ledger import Ledger
    from lib.storage.files import FileMedia
    page.goto(f"{app_server.url}/Compose")
    wait_for_app(page)
    commit(page, page.get_by_label("Prompt", exact=True), "a paper boat drifts down a rainy street")
    page.get_by_text("Variants — 1 task(s) per submit").click()
    commit(page, page.get_by_label("Takes of each combination"), "4")
    submit = page.get_by_role("button", name="Submit 4 tasks · 280 credits (US$1.40)")
    submit.click()
    wait_for_app(page)
    follow_until_done(page, 4)
    page.wait_for_function(VIDEOS_PLAYABLE, arg=4, timeout=30_000)
    page.get_by_text("Progress of this session's tasks").scroll_into_view_if_needed()
    screenshot(page, "compose-batch-done")
    rows = Ledger.in_dir(app_server.data_dir).rows()
    assert len(rows) == 4 and len({r.batch_id for r in rows}) == 1
    assert all(FileMedia(app_server.data_dir).video(r.task_id) or r.result_url for r in rows)
