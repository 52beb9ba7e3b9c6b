"""Issue 16 in a real browser (sandbox mode): one value per shot, one variant per picker, a form that survives F5,
same-tab links, a right column that holds at 1024/1280/1400 px, and players capped to the viewport."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.browser.test_history_browser import _pick_option
from tests.conftest import screenshot, wait_for_app

pytestmark = pytest.mark.browser


def commit(page, locator, value: str) -> None:
    locator.fill(value)
    locator.press("Tab")  # text widgets commit on blur
    wait_for_app(page)


def main_text(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def eventually(check: Callable[[], bool], timeout_s: float = 15.0) -> None:
    """Wait for a condition on the page: a fragment rerun shows no 'Running…' badge, so wait_for_app alone can
    return before the new values are drawn."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "the page never showed the expected value"
        time.sleep(0.1)


def _compact_json(page) -> str:
    return _json_from_state(page).replace(" ", "").replace("\n", "")


def _json_from_state(page) -> str:
    # st.json renders a tree; the copy of the whole value is the text of its root with quotes
    return page.evaluate("""() => {
        const root = document.querySelector('[data-testid="stJson"]');
        return root ? root.innerText : '';
    }""")


def test_shot_seconds_out_of_range_is_an_error_under_the_shot(app_server, page) -> None:
    page.goto(f"{app_server.url}/Compose")
    wait_for_app(page)
    page.get_by_text("Multi-shot (up to 5 shots)").click()
    wait_for_app(page)
    commit(page, page.get_by_label("Shot 1", exact=True), "a heron lands")
    seconds = page.get_by_label("Seconds").first
    commit(page, seconds, "13")
    expect(seconds).to_have_value("13")
    main = page.locator('[data-testid="stMain"]')
    expect(main).to_contain_text("Total 13 s")  # the timeline and the error use the shown value
    expect(main).to_contain_text("1 to 12")
    eventually(lambda: re.search(r'"duration"\s*:\s*13\b', _json_from_state(page)) is not None)  # the request too
    expect(page.get_by_role("button", name=re.compile(r"^Submit"))).to_be_disabled()
    screenshot(page, "ui-fixes-shot-seconds-13")


def test_variant_picker_matches_the_json_and_the_form_survives_f5(app_server, page) -> None:
    page.goto(f"{app_server.url}/Compose")
    wait_for_app(page)
    commit(page, page.get_by_label("Prompt", exact=True), "a corgi on a beach")
    page.get_by_text("Variants —").click()
    wait_for_app(page)
    for label, options in (("Modes", ("std", "pro")), ("Sound", ("sound off", "sound on"))):
        box = page.locator('[data-testid="stMultiSelect"]').filter(has_text=label).locator("input")
        for option in options:
            box.click()
            box.fill(option)
            box.press("Enter")
            wait_for_app(page)
        page.get_by_text("Cost and submit", exact=True).click()  # closes the open dropdown
        wait_for_app(page)
    screenshot(page, "ui-fixes-variant-grid")
    picker = page.locator('[data-testid="stSelectbox"]').filter(has_text="Variant").locator("input")
    picker.click()
    picker.fill("std · sound on")
    picker.press("Enter")
    wait_for_app(page)
    expect(picker).to_have_value("std · sound on")
    eventually(lambda: '"mode":"std"' in _compact_json(page) and '"sound":true' in _compact_json(page))
    screenshot(page, "ui-fixes-variant-picker")

    page.wait_for_url(re.compile(r"form="))
    assert "key" not in page.url.lower()
    page.reload()
    wait_for_app(page)
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("a corgi on a beach", timeout=15_000)
    # the copied address opens the same job in another browser session
    other = page.context.browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    other.goto(page.url)
    wait_for_app(other)
    expect(other.get_by_label("Prompt", exact=True)).to_have_value("a corgi on a beach", timeout=15_000)
    other.context.close()


@pytest.mark.parametrize("width", [1024, 1280, 1400])
def test_cost_and_balance_are_not_truncated(app_server, browser, width: int) -> None:
    context = browser.new_context(viewport={"width": width, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{app_server.url}/Compose")
    wait_for_app(page)
    commit(page, page.get_by_label("Prompt", exact=True), "a fox runs")
    clipped = page.evaluate("""() => [...document.querySelectorAll('[data-testid="stMetricValue"] *')]
        .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.innerText)""")
    assert clipped == [], clipped
    assert "credits" in page.locator('[data-testid="stMetricValue"]').first.inner_text()
    screenshot(page, f"ui-fixes-compose-{width}")
    context.close()


def test_links_stay_in_the_same_tab_and_players_fit_the_viewport(app_server, page) -> None:
    page.goto(f"{app_server.url}/Compose")
    wait_for_app(page)
    # a rerun landing mid-click (the page still settling on a loaded machine) can close the list: the helper retries
    _pick_option(page, page.get_by_role("combobox", name="Aspect ratio"), "9:16")
    wait_for_app(page)
    commit(page, page.get_by_label("Prompt", exact=True), "a tall lighthouse at night")
    page.get_by_role("button", name="Submit · ").click()
    wait_for_app(page)
    link = page.get_by_role("link", name="Open in History").first
    link.wait_for(timeout=30_000)
    assert link.get_attribute("target") in (None, "", "_self")
    page.locator("video").first.wait_for(timeout=60_000)
    screenshot(page, "ui-fixes-progress-card")
    pages_before = len(page.context.pages)
    link.click()
    page.wait_for_url("**/History?task=*", timeout=15_000)
    wait_for_app(page)
    assert len(page.context.pages) == pages_before  # no new tab, so the session (and a typed key) stays
    page.locator("video").first.wait_for(timeout=30_000)
    height = page.evaluate("() => document.querySelector('video').getBoundingClientRect().height")
    assert height <= 0.7 * 1000 + 2, height  # PLAYER_MAX_VH of a 1000 px viewport
    screenshot(page, "ui-fixes-history-detail")

    page.goto(app_server.url)
    wait_for_app(page)
    home_link = page.get_by_role("link", name="open").first
    assert home_link.get_attribute("target") in (None, "", "_self")
    home_link.click()
    page.wait_for_url("**/History?task=*", timeout=15_000)
    assert len(page.context.pages) == pages_before


def test_a_typed_api_key_leaves_the_field_and_the_page(app_server, page) -> None:
    page.goto(f"{app_server.url}/History")
    wait_for_app(page)
    sidebar = page.locator('[data-testid="stSidebar"]')
    sidebar.get_by_text("API key", exact=True).click()
    field = sidebar.get_by_label("KIE API key (this session only)", exact=True)
    expect(field).to_be_visible()
    field.fill("not-a-real-key")
    field.press("Enter")
    wait_for_app(page)
    expect(sidebar).to_contain_text("A key is set for this browser session only")
    assert "not-a-real-key" not in page.content()  # the typed key is never echoed back into the page
