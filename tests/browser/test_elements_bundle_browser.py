"""Browser (issue 16.10, 16.13, polish): a bundle export that imports after a delete with thumbnails and working
re-uploads; elements from web addresses keep a local copy (or say why not); picked files preview before saving;
card thumbnails and captions line up at 1024, 1280 and 1400 px."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import expect

from lib.elements.library import ElementLibrary
from tests.browser.test_elements_browser import card, open_elements, pick_files, type_into, write_png
from tests.conftest import labels_sent, screenshot, wait_for_app

pytestmark = pytest.mark.browser


def _main(page):
    return page.locator('[data-testid="stMain"]')


def _assert_thumbnails_drawn(locator, count: int) -> None:
    images = locator.locator('[data-testid="stImage"] img')
    expect(images).to_have_count(count)
    for i in range(count):  # each picture loads and decodes (a broken one completes with no width)
        handle = images.nth(i).element_handle()
        locator.page.wait_for_function("img => img.complete", arg=handle, timeout=10_000)
        assert handle.evaluate("img => img.naturalWidth") > 0


def _create_in_form(page, name: str, files: list[Path] | None = None, urls: list[str] | None = None) -> None:
    type_into(page, "elements_name_field", name)
    type_into(page, "elements_description_field", f"a {name}", "textarea")
    if files:
        pick_files(page, files)
    if urls:
        type_into(page, "elements_urls_field", "\n".join(urls), "textarea")
    page.get_by_role("button", name="Save and upload").click()
    wait_for_app(page)


def test_a_bundle_brings_a_deleted_element_back_with_thumbnails_and_reuploads(app_server, page, tmp_path) -> None:
    files = [write_png(tmp_path / "front.png", 640, (220, 90, 30)), write_png(tmp_path / "side.png", 512, (30, 90, 200))]
    open_elements(page, app_server)
    type_into(page, "elements_name_field", "ginger_cat")
    type_into(page, "elements_description_field", "a ginger cat", "textarea")
    pick_files(page, files)
    previews = _main(page).locator('[data-testid="stImage"] img')
    expect(previews).to_have_count(2)  # shown from the picked files, before saving
    page.get_by_role("button", name="Save and upload").click()
    expect(_main(page)).to_contain_text("@ginger_cat is uploaded", timeout=30_000)
    wait_for_app(page)

    expect(page.get_by_text("holds no media").first).to_be_attached()  # the JSON export's note (its help)
    with page.expect_download() as info:
        page.get_by_role("button", name="Export bundle (zip)").click()
    bundle = tmp_path / "kling-elements-bundle.zip"
    info.value.save_as(bundle)
    assert info.value.suggested_filename == "kling-elements-bundle.zip"

    element = card(page, "ginger_cat")
    element.get_by_role("button", name="Delete").click()
    wait_for_app(page)
    card(page, "ginger_cat").get_by_role("button", name="Yes, delete").click()
    wait_for_app(page)
    expect(card(page, "ginger_cat")).to_have_count(0)

    page.get_by_text("Import elements (bundle or JSON)").click()
    box = page.locator('[data-testid="stFileUploader"]').filter(has_text="Bundle (.zip")
    box.locator('input[type="file"]').set_input_files(str(bundle))
    expect(_main(page)).to_contain_text("bundle.zip")  # the chip shortens long names
    wait_for_app(page)
    page.locator(".st-key-elements_import_go button").click()
    expect(_main(page)).to_contain_text("Imported 1 element(s): @ginger_cat.", timeout=30_000)
    wait_for_app(page)
    restored = card(page, "ginger_cat")
    expect(restored).to_contain_text("not uploaded")
    _assert_thumbnails_drawn(restored, 2)
    expect(restored).not_to_contain_text("no local copy")
    restored.get_by_role("button", name="Refresh upload").click()
    expect(_main(page)).to_contain_text("@ginger_cat is uploaded", timeout=30_000)  # the re-upload, from the copies
    wait_for_app(page)
    expect(card(page, "ginger_cat")).to_contain_text("uploaded · expires in 71 h", timeout=30_000)
    screenshot(page, "elements-bundle-restored")


def _sandbox_urls(data: Path, *paths: Path) -> list[str]:
    """Files put on the app's own sandbox file host (the only private origin sandbox mode may fetch from)."""
    from lib.kie.client import KieClient
    from lib.kie.uploads import upload_file

    base = f"http://127.0.0.1:{(data / 'sandbox' / 'port').read_text().strip()}"
    client = KieClient("sandbox-demo", base, base)
    return [str(upload_file(client, io.BytesIO(p.read_bytes()), file_name=p.name, upload_path="web",
                            method="stream").download_url) for p in paths]


def test_elements_from_web_addresses_keep_a_local_copy_or_say_why_not(app_server, page, tmp_path) -> None:
    open_elements(page, app_server)
    urls = _sandbox_urls(app_server.data_dir, write_png(tmp_path / "a.png", 400, (200, 0, 0)),
                         write_png(tmp_path / "b.png", 400, (0, 0, 200)))
    _create_in_form(page, "web_cat", urls=urls)
    expect(_main(page)).to_contain_text("@web_cat is uploaded", timeout=30_000)
    web = card(page, "web_cat")
    _assert_thumbnails_drawn(web, 2)
    expect(web).not_to_contain_text("no local copy")

    _create_in_form(page, "half_cat", urls=[urls[0], "http://127.0.0.1:9/private.png"])
    half = card(page, "half_cat")
    expect(half).to_have_count(1, timeout=30_000)
    expect(half).to_contain_text("No local copy kept: Refusing to fetch from 127.0.0.1")
    _assert_thumbnails_drawn(half, 1)
    screenshot(page, "elements-web-copies")


def _seed_for_layout(data: Path, tmp_path: Path) -> None:
    library = ElementLibrary(data)
    shapes = [(400, 400), (640, 360), (360, 640), (500, 300)]
    for name, count in (("two_images", 2), ("three_images", 3), ("four_images", 4)):
        files = []
        for i in range(count):
            w, h = shapes[i]
            path = write_png(tmp_path / f"{name}_{i}.png", max(w, h), (40 * i, 120, 200))
            Image.open(path).resize((w, h)).save(path)
            long = "a_very_long_reference_file_name_" if i == 1 else ""
            files.append((f"{long}{name}_{i}.png", path.read_bytes()))
        library.create(name, f"an element with {count} images", files)


@pytest.mark.parametrize("width", [1024, 1280, 1400])
def test_card_thumbnails_share_one_height_with_one_line_captions(app_server_factory, browser, tmp_path, width) -> None:
    data = tmp_path / "data"
    data.mkdir()
    _seed_for_layout(data, tmp_path)
    server = app_server_factory(data)
    context = browser.new_context(viewport={"width": width, "height": 1200})
    page = context.new_page()
    try:
        open_elements(page, server)
        boxes = page.locator('[class*="st-key-elements_card_"] [data-testid="stImageContainer"]')
        expect(boxes).to_have_count(9)
        page.wait_for_function("""() => [...document.querySelectorAll('[class*="st-key-elements_card_"] img')]
                                   .every(img => img.complete && img.naturalWidth > 0 && img.height > 0)""")
        heights, rows = set(), {}
        for i in range(9):
            image = boxes.nth(i).locator("img").bounding_box()
            caption = boxes.nth(i).locator('[data-testid="stImageCaption"]')
            text = caption.bounding_box()
            line = caption.evaluate("el => parseFloat(getComputedStyle(el.querySelector('p') || el).lineHeight)")
            heights.add(round(image["height"]))
            assert text["height"] <= line * 1.5, f"caption {i} wraps at {width} px"
            assert text["y"] >= image["y"] + image["height"] - 1, "caption under its thumbnail"
            rows.setdefault(round(image["y"]), []).append(i)
        assert len(heights) == 1, f"thumbnail heights differ at {width} px: {heights}"
        first_row = min(rows)  # the first thumbnails of the three cards sit on one line
        assert {0, 4, 7} <= set(rows[first_row]), rows
        screenshot(page, f"elements-cards-{width}")
    finally:
        context.close()


def _thirty_props(tmp_path: Path) -> tuple[Path, bytes]:
    """A data folder with 30 elements (prop_00 … prop_29, two images each): three pages of cards."""
    data = tmp_path / "data"
    data.mkdir()
    library = ElementLibrary(data)
    png = write_png(tmp_path / "p.png", 320, (90, 90, 90)).read_bytes()
    for i in range(30):
        library.create(f"prop_{i:02d}", f"prop number {i}", [("front.png", png), ("side.png", png)])
    return data, png


def test_a_big_library_pages_and_a_card_opens_and_saves_its_edit_in_place(app_server_factory, page, tmp_path) -> None:
    data, _ = _thirty_props(tmp_path)
    server = app_server_factory(data)
    open_elements(page, server)
    titles = page.locator('[class*="st-key-elements_card_"] h5')
    expect(titles).to_have_count(12)
    page.locator(".st-key-elements_page").get_by_role("button", name="Page 3").click()
    expect(titles).to_have_count(6)
    expect(titles.first).to_have_text("@prop_24")

    card(page, "prop_24").get_by_role("button", name="Refresh upload").click()
    expect(_main(page)).to_contain_text("@prop_24 is uploaded", timeout=30_000)
    wait_for_app(page)
    card(page, "prop_24").get_by_role("button", name="Edit / rename").click()
    dialog = page.locator('[data-testid="stDialog"]')
    expect(dialog.locator(".st-key-elements_name_field input")).to_have_value("prop_24")
    expect(dialog.locator(".st-key-elements_description_field textarea")).to_have_value("prop number 24")
    expect(card(page, "prop_24")).to_contain_text("being edited")
    dialog.locator(".st-key-elements_save button").click()
    expect(dialog).to_have_count(0)
    expect(page.get_by_text("Saved @prop_24: nothing to upload.").first).to_be_visible()
    expect(card(page, "prop_24")).not_to_contain_text("being edited")
    expect(titles.first).to_have_text("@prop_24")  # still on page 3
    saved = ElementLibrary(data).by_name("prop_24")
    assert saved.description == "prop number 24" and all(m.kie_url for m in saved.media)  # nothing re-uploaded


def test_a_page_turn_redraws_the_cards_bodies_and_their_buttons_act_on_the_new_page(app_server_factory, page,
                                                                                     tmp_path) -> None:
    """Issue 17: turning to a page with as many cards sends their bodies (titles, thumbnails, badges), not their
    buttons; each button then acts on the element its card now shows."""
    data, png = _thirty_props(tmp_path)
    server = app_server_factory(data)
    sent = labels_sent(page)
    open_elements(page, server)
    titles = page.locator('[class*="st-key-elements_card_"] h5')
    expect(titles).to_have_count(12)
    wait_for_app(page)
    sent.clear()
    page.locator(".st-key-elements_page").get_by_role("button", name="Next page").click()
    expect(titles.first).to_have_text("@prop_12")
    expect(titles).to_have_count(12)
    wait_for_app(page)
    assert sent.count("imgs") == 12, sent  # each card's thumbnails (one image list per card) …
    assert not {"Use in Compose", "Edit / rename", "Duplicate", "Delete", "Find an element"} & set(sent), sent  # … only
    ElementLibrary(data).create("zz_late", "made in another tab", [("front.png", png), ("side.png", png)])
    pager = page.locator(".st-key-elements_page")
    pager.get_by_role("button", name="Previous page").click()  # the counts changed: the whole grid redraws
    expect(_main(page)).to_contain_text("31 element(s)")
    expect(titles.first).to_have_text("@prop_00")
    pager.get_by_role("button", name="Next page").click()
    expect(titles.first).to_have_text("@prop_12")
    wait_for_app(page)

    card(page, "prop_13").get_by_role("button", name="Delete").click()
    expect(card(page, "prop_13")).to_contain_text("Delete @prop_13 and its 2 stored original(s)?")
    card(page, "prop_13").get_by_role("button", name="Cancel").click()
    expect(card(page, "prop_13")).not_to_contain_text("Delete @prop_13")
    card(page, "prop_14").get_by_role("button", name="Duplicate").click()
    expect(page.get_by_text("Duplicated @prop_14 as").first).to_be_visible()
    card(page, "prop_12").get_by_role("button", name="Edit / rename").click()
    dialog = page.locator('[data-testid="stDialog"]')
    expect(dialog.locator(".st-key-elements_name_field input")).to_have_value("prop_12")
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)
    card(page, "prop_12").get_by_role("button", name="Use in Compose").click()
    expect(page.get_by_label("Prompt", exact=True)).to_have_value(re.compile(r"^@prop_12\b"))
    names = [e.name for e in ElementLibrary(data).list()]
    assert len(names) == 32 and len([n for n in names if n.startswith("prop_14")]) == 2, names  # one duplicate
