"""Browser: create an element from two real PNGs through the file chooser, survive a reload, refuse a small image."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.conftest import screenshot as save_screenshot
from tests.conftest import wait_for_app

pytestmark = pytest.mark.browser


def write_png(path: Path, side: int, color: tuple[int, int, int]) -> Path:
    out = io.BytesIO()
    image = Image.new("RGB", (side, side), color)
    for x in range(0, side, 40):  # a pattern, so a thumbnail that is really drawn is easy to spot
        image.paste((255, 255, 255), (x, 0, x + 8, side))
    image.save(out, "PNG")
    path.write_bytes(out.getvalue())
    return path


def screenshot(page, name: str) -> Path:
    """Streamlit scrolls inside the page, so grow the viewport to catch the cards and the form in one shot."""
    page.set_viewport_size({"width": 1400, "height": 2000})
    wait_for_app(page)
    path = save_screenshot(page, name)
    page.set_viewport_size({"width": 1400, "height": 1000})
    return path


def open_elements(page, server) -> None:
    page.goto(f"{server.url}/Elements")
    wait_for_app(page)
    expect(page.get_by_role("heading", name="Elements").first).to_be_visible()


def type_into(page, key: str, text: str, selector: str = "input") -> None:
    field = page.locator(f".st-key-{key} {selector}")
    field.fill(text)
    field.press("Tab")  # commits the value (blur), which reruns the script
    wait_for_app(page)


def pick_files(page, paths: list[Path]) -> None:
    box = page.locator('[data-testid="stFileUploader"]').filter(has_text="Reference files")
    box.locator('input[type="file"]').set_input_files([str(p) for p in paths])
    for p in paths:
        expect(page.locator('[data-testid="stMain"]')).to_contain_text(p.name)
    wait_for_app(page)


def card(page, name: str):
    return page.locator('[class*="st-key-elements_card_"]').filter(has_text=f"@{name}")


def assert_card_ready(page, name: str) -> None:
    element = card(page, name)
    expect(element).to_have_count(1)
    expect(element).to_contain_text("uploaded · expires in 71 h")
    thumbnails = element.locator("img")
    expect(thumbnails).to_have_count(2)
    for i in range(2):  # really drawn from the local originals, not broken images
        expect(thumbnails.nth(i)).to_be_visible()
        assert thumbnails.nth(i).evaluate("img => img.complete && img.naturalWidth > 0")


def test_two_pngs_upload_and_survive_a_reload(app_server, page, tmp_path: Path) -> None:
    files = [write_png(tmp_path / "front.png", 640, (220, 90, 30)), write_png(tmp_path / "side.png", 512, (30, 90, 200))]
    open_elements(page, app_server)
    type_into(page, "elements_name_field", "ginger_cat")
    expect(page.locator('[data-testid="stMain"]')).to_contain_text("@ginger_cat is a valid, unused name")
    type_into(page, "elements_description_field", "a ginger cat with a white chest", "textarea")
    pick_files(page, files)
    main = page.locator('[data-testid="stMain"]')
    expect(main).to_contain_text("front.png: image, 640×640 px")
    expect(main).to_contain_text("side.png: image, 512×512 px")
    page.get_by_role("button", name="Save and upload").click()
    expect(main).to_contain_text("@ginger_cat is uploaded", timeout=30_000)
    wait_for_app(page)
    assert_card_ready(page, "ginger_cat")
    screenshot(page, "elements-created")

    page.reload()
    wait_for_app(page)
    assert_card_ready(page, "ginger_cat")
    assert not page.locator('[data-testid="stException"]').count()
    screenshot(page, "elements-after-reload")


def test_a_299px_png_is_refused_with_its_name_and_the_limit(app_server, page, tmp_path: Path) -> None:
    files = [write_png(tmp_path / "tiny.png", 299, (120, 120, 120)), write_png(tmp_path / "ok.png", 400, (0, 120, 0))]
    open_elements(page, app_server)
    type_into(page, "elements_name_field", "tiny_cat")
    type_into(page, "elements_description_field", "a small cat", "textarea")
    pick_files(page, files)
    message = "tiny.png is 299×299 px; elements need at least 300×300 px"
    main = page.locator('[data-testid="stMain"]')
    expect(main).to_contain_text(message)
    page.get_by_role("button", name="Save and upload").click()
    wait_for_app(page)
    expect(main.locator('[data-testid="stAlertContentError"]').filter(has_text=message)).to_have_count(2)
    expect(card(page, "tiny_cat")).to_have_count(0)
    expect(page.locator(".st-key-elements_name_field input")).to_have_value("tiny_cat")  # nothing typed is lost
    screenshot(page, "elements-refused")
