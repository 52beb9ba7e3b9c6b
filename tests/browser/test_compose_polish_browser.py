"""Compose polish in a real browser at 1400 px (issue 16): a small first frame is warned about under its field, the
elements-without-a-first-frame message says whether a live job would be refused, and a forked run's first frame
is a thumbnail only from the app's own file or a media host (anything else is a link naming the host)."""

from __future__ import annotations

import io
import json
import re

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.conftest import screenshot, wait_for_app

pytestmark = pytest.mark.browser


def png(width: int, height: int, colour: str = "red") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buf, "PNG")
    return buf.getvalue()


def main_text(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def frame_url_in_payload(page) -> str:
    text = page.locator('[data-testid="stJson"]').first.inner_text()
    return re.search(r"http://127\.0\.0\.1:\d+/files/[^\s\"]+\.png", text).group(0)


def upload_first_frame(page, tmp_path, width: int, height: int) -> None:
    frame_box = page.locator(".st-key-compose_w_first_source")
    frame_box.get_by_text("Upload", exact=True).click()
    wait_for_app(page)
    path = tmp_path / f"frame-{width}x{height}.png"
    path.write_bytes(png(width, height))
    page.locator('.st-key-compose_w_first_file input[type="file"]').set_input_files(str(path))
    page.get_by_text(re.compile(r"uploaded to KIE's file host")).first.wait_for()
    wait_for_app(page)


def commit(page, locator, value: str) -> None:
    locator.fill(value)
    locator.press("Tab")
    wait_for_app(page)


def test_a_small_first_frame_is_warned_about_under_its_field(app_server, page, tmp_path) -> None:
    page.goto(f"{app_server.url}/Compose")
    wait_for_app(page)
    commit(page, page.get_by_label("Prompt", exact=True), "a heron lands")
    upload_first_frame(page, tmp_path, 240, 180)
    warning = page.locator('[data-testid="stAlert"]').filter(has_text="240×180 px")
    warning.wait_for()
    warning.scroll_into_view_if_needed()
    assert "under 300 px a side" in warning.inner_text() and "Would a live job be refused?" in warning.inner_text()
    frames = page.locator(".st-key-compose_w_first_file").bounding_box()
    assert warning.bounding_box()["y"] > frames["y"]  # under the frame's field, not at the top of the page
    assert page.get_by_role("button", name=re.compile(r"^Submit")).is_enabled()  # a warning, not an error
    screenshot(page, "compose-small-frame")


def test_elements_without_a_first_frame_say_whether_a_live_job_is_refused(app_server, page) -> None:
    from lib.elements.library import ElementLibrary

    ElementLibrary(app_server.data_dir).create("fox", "a red fox", files=[("a.png", png(480, 480)),
                                                                         ("b.png", png(480, 480, "blue"))])
    page.goto(f"{app_server.url}/Compose")
    wait_for_app(page)
    commit(page, page.get_by_label("Prompt", exact=True), "@fox runs")
    main = page.locator('[data-testid="stMain"]')  # expect waits: a fragment rerun shows no "Running…" badge
    expect(main).to_contain_text("there is no first frame")
    expect(main).to_contain_text("Would a live job be refused? Not known")
    expect(main).to_contain_text("the sandbox accepts it")


def _open_recipe(page, tmp_path, frame_url: str) -> None:
    body = {"model": "kling-3.0/video", "input": {"prompt": "a forked heron", "duration": "5", "mode": "std",
                                                 "sound": False, "multi_shots": False, "image_urls": [frame_url]}}
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(body))
    page.get_by_text("Open a recipe (JSON exported from History)").click()
    page.locator('[class*="st-key-compose_w_recipe_"] input[type="file"]').set_input_files(str(path))
    wait_for_app(page)
    page.get_by_role("button", name="Open recipe").click()
    wait_for_app(page)


def test_a_forked_first_frame_is_a_thumbnail_only_from_an_own_file(app_server, page, tmp_path) -> None:
    page.goto(f"{app_server.url}/Compose")
    wait_for_app(page)
    commit(page, page.get_by_label("Prompt", exact=True), "a heron")
    upload_first_frame(page, tmp_path, 640, 360)
    own_url = frame_url_in_payload(page)  # on the sandbox's file host (a private address)

    _open_recipe(page, tmp_path, own_url)
    expect(page.get_by_label("Image URL").first).to_have_value(own_url)  # no "Running…" badge on a fragment rerun
    thumb = page.locator('[data-testid="stImage"]').filter(has_text="The frame at this URL")
    thumb.wait_for()
    src = thumb.locator("img").get_attribute("src")
    assert "127.0.0.1" not in src.split("/media/")[0] or "/media/" in src  # served by Streamlit, not the file host
    assert "/media/" in src
    thumb.scroll_into_view_if_needed()
    screenshot(page, "compose-forked-frame-thumbnail")

    _open_recipe(page, tmp_path, "https://tracker.example/pixel.png")
    page.get_by_role("link", name="Open the frame on tracker.example").wait_for()
    assert page.locator('[data-testid="stImage"]').filter(has_text="The frame at this URL").count() == 0
    srcs = page.evaluate("() => [...document.querySelectorAll('img')].map(i => i.src)")
    assert not any("tracker.example" in s for s in srcs)  # the browser never loads the outside URL
