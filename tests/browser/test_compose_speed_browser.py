"""Compose redraws only what an edit changed (issue 17), in a real browser at 1400 px: a mode pick sends the
settings and the summary, not the whole form, and what is shown still agrees with the request."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import labels_sent, wait_for_app, ws_messages

pytestmark = pytest.mark.browser


def _count_deltas(page) -> list[int]:
    return ws_messages(page, "received", lambda msg: 1 if msg.WhichOneof("type") == "delta" else None)


def test_an_edit_redraws_its_part_and_the_summary_only(app_server, page) -> None:
    seen = _count_deltas(page)
    page.goto(f"{app_server.url}/Compose")
    wait_for_app(page)
    prompt = page.get_by_label("Prompt", exact=True)
    prompt.fill("a heron lands")
    prompt.press("Tab")
    wait_for_app(page)
    full = len(seen)
    seen.clear()
    page.locator('[data-testid="stRadio"]').filter(has_text="Mode").get_by_text("pro", exact=False).first.click()
    wait_for_app(page)
    assert 0 < len(seen) < full / 2, (len(seen), full)  # not the whole page again
    expect(page.locator('[data-testid="stJson"]').first).to_contain_text(re.compile(r'"mode"\s*:\s*"pro"'))
    assert "Submit · " in page.locator('[data-testid="stMain"]').inner_text()
    assert prompt.input_value() == "a heron lands"  # the parts not redrawn keep what they showed

    seen.clear()
    page.get_by_text("Multi-shot (up to 5 shots)").click()
    wait_for_app(page)
    expect(page.get_by_label("Shot 1", exact=True)).to_have_value("a heron lands")
    assert "🔒 On: KIE requires sound" in page.locator('[data-testid="stMain"]').inner_text()  # settings redrawn


def test_a_shots_seconds_redraw_that_shot_and_the_duration_not_the_settings(app_server, page) -> None:
    sent = labels_sent(page)
    page.goto(f"{app_server.url}/Compose")
    wait_for_app(page)
    page.get_by_text("Multi-shot (up to 5 shots)").click()
    wait_for_app(page)
    seconds = page.get_by_label("Seconds").first
    seconds.fill("7")
    seconds.press("Tab")
    expect(page.locator('[data-testid="stMetric"]').filter(has_text="Duration")).to_contain_text("7 s")
    wait_for_app(page)
    sent.clear()
    seconds.fill("4")
    seconds.press("Tab")
    expect(page.locator('[data-testid="stMetric"]').filter(has_text="Duration")).to_contain_text("4 s")
    wait_for_app(page)
    assert {"Duration", "This submit"} <= set(sent), sent  # the sum and the price …
    # … not the field just typed in (the browser shows it), nor the other shots and settings
    assert not {"Seconds", "Shot 1", "Mode", "Aspect ratio", "Shot 2", "Elements from the library"} & set(sent), sent
    expect(page.get_by_label("Seconds").first).to_have_value("4")
    assert "Submit · 80 credits" in page.locator('[data-testid="stMain"]').inner_text()  # 4 s of std with sound


def test_moving_a_shot_moves_its_text_into_the_fields_already_drawn(app_server, page) -> None:
    page.goto(f"{app_server.url}/Compose")
    wait_for_app(page)
    page.get_by_text("Multi-shot (up to 5 shots)").click()
    first = page.get_by_label("Shot 1", exact=True)
    first.fill("opening")
    first.press("Tab")
    wait_for_app(page)
    page.get_by_role("button", name="➕ Add shot").click()
    second = page.get_by_label("Shot 2", exact=True)
    second.fill("closing")
    second.press("Tab")
    wait_for_app(page)
    page.get_by_role("button", name="↓ Down").first.click()
    expect(first).to_have_value("closing")
    expect(second).to_have_value("opening")
    expect(page.locator('[data-testid="stJson"]').first).to_contain_text(re.compile(r'"closing".*"opening"', re.S))
    first.fill("closing, wider")
    first.press("Tab")
    expect(page.locator('[data-testid="stJson"]').first).to_contain_text(
        re.compile(r'"closing, wider".*"opening"', re.S))
