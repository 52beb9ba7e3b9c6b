"""Compose's `@` autocomplete in a real browser (issue 16.7): the library's names offered at the caret."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.conftest import screenshot, wait_for_app

pytestmark = pytest.mark.browser

SUGGESTIONS = "ul.kling-mention li"


def png(colour: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (480, 480), colour).save(buf, "PNG")
    return buf.getvalue()


def make_elements(data_dir, *names: str) -> None:
    from lib.elements.library import ElementLibrary

    library = ElementLibrary(data_dir)
    for name in names:
        library.create(name, f"a {name}", files=[("a.png", png("red")), ("b.png", png("blue"))])


def open_compose(page, url: str) -> None:
    page.goto(f"{url}/Compose")
    wait_for_app(page)
    page.wait_for_function("() => !!window.__klingMention")  # the component's script loads after the page


def test_typing_at_offers_names_and_enter_inserts_at_the_caret(app_server, page) -> None:
    make_elements(app_server.data_dir, "fox", "Forest_ranger", "owl")
    open_compose(page, app_server.url)
    prompt = page.get_by_label("Prompt", exact=True)
    prompt.click()
    prompt.press_sequentially("a red @fo")
    page.locator(SUGGESTIONS).first.wait_for()
    assert page.locator(SUGGESTIONS).all_inner_texts() == ["@fox", "@Forest_ranger"]  # owl does not match
    screenshot(page, "compose-mention-suggestions")
    prompt.press("Enter")
    wait_for_app(page)
    expect(prompt).to_have_value("a red @fox ")
    assert page.locator(SUGGESTIONS).count() == 0
    # committed: the element is sent (a fragment rerun shows no "Running…" badge, so wait for the text)
    expect(page.locator('[data-testid="stJson"]').first).to_contain_text('"name":"fox"')


def test_arrows_pick_another_name_escape_closes_and_shots_get_it_too(app_server, page) -> None:
    make_elements(app_server.data_dir, "fox", "Forest_ranger")
    open_compose(page, app_server.url)
    prompt = page.get_by_label("Prompt", exact=True)
    prompt.click()
    prompt.press_sequentially("@f")
    page.locator(SUGGESTIONS).first.wait_for()
    prompt.press("Escape")
    assert page.locator(SUGGESTIONS).count() == 0
    prompt.press_sequentially("o")  # typing again reopens it
    page.locator(SUGGESTIONS).first.wait_for()
    prompt.press("ArrowDown")
    prompt.press("Tab")
    wait_for_app(page)
    expect(prompt).to_have_value("@Forest_ranger ")

    page.get_by_text("Multi-shot (up to 5 shots)").click()
    wait_for_app(page)
    page.get_by_role("button", name="➕ Add shot").click()
    wait_for_app(page)
    page.wait_for_function("() => !!window.__klingMention")
    shot = page.get_by_label("Shot 2", exact=True)
    shot.click()
    shot.press_sequentially("then @FO")  # names match whatever the case
    page.locator(SUGGESTIONS).first.wait_for()
    shot.press("Enter")
    wait_for_app(page)
    expect(shot).to_have_value("then @fox ")
    expect(page.locator('[data-testid="stJson"]').first).to_contain_text("then @fox")
