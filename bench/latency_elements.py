"""Elements rows of bench/browser_latency.py: a library of 200 elements (imported once as a bundle through the
page's own import), then open edit, save an unchanged element, and page through the cards."""

from __future__ import annotations

import io
import sys
import tempfile
from pathlib import Path

from _latency import Interaction, Page, settle

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ELEMENTS = 200
DIALOG = '[data-testid="stDialog"]'
EDIT = '[class*="st-key-elements_edit_"] button'


def _png(side: int, shade: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (side, side), (shade, 120, 200 - shade)).save(out, "PNG")
    return out.getvalue()


def _bundle() -> Path:
    """A bundle of ELEMENTS elements with two 320 px images each, written to a temporary file."""
    from lib.elements.library import ElementLibrary

    folder = Path(tempfile.mkdtemp(prefix="bench-elements-"))
    library = ElementLibrary(folder)
    for i in range(ELEMENTS):
        library.create(f"prop_{i:03d}", f"bench prop number {i}",
                       [("front.png", _png(320, i % 200)), ("side.png", _png(320, (i * 7) % 200))])
    path = folder / "bench-bundle.zip"
    path.write_bytes(library.export_bundle())
    return path


def _seed(page: Page) -> None:
    """Import the bundle once (the rows share one data folder), then upload the first element, so saving it
    unchanged uploads nothing."""
    if page.get_by_text(f"{ELEMENTS} element(s)").count():
        return
    page.get_by_text("Import elements (bundle or JSON)").click()
    box = page.locator('[data-testid="stFileUploader"]').filter(has_text="Bundle (.zip")
    box.locator('input[type="file"]').set_input_files(str(_bundle()))
    page.get_by_text("bundle.zip").first.wait_for()
    settle(page)
    page.locator(".st-key-elements_import_go button").click()
    page.get_by_text(f"Imported {ELEMENTS} element(s)").first.wait_for(timeout=120_000)
    settle(page)
    page.locator('[class*="st-key-elements_refresh_"] button').first.click()
    page.get_by_text("is uploaded").first.wait_for(timeout=60_000)
    settle(page)


def _close_dialog(page: Page) -> None:
    if page.locator(DIALOG).count():
        page.locator(".st-key-elements_cancel_edit button").click()
        page.locator(DIALOG).wait_for(state="detached")
        settle(page)


def _open_dialog(page: Page) -> None:
    if not page.locator(DIALOG).count():
        page.locator(EDIT).first.click()
        page.locator(DIALOG).wait_for()
        settle(page)


def _open_edit(page: Page) -> None:
    page.locator(EDIT).first.click()
    page.locator(f"{DIALOG} .st-key-elements_save button").wait_for()  # the dialog's form is drawn


def _save_unchanged(page: Page) -> None:
    page.locator(f"{DIALOG} .st-key-elements_save button").click()
    page.locator(DIALOG).wait_for(state="detached")  # saved, closed, and the cards drawn again


def _first_title(page: Page) -> str:
    return page.locator('[class*="st-key-elements_card_"] h5').first.inner_text()


def _next_page(page: Page) -> None:
    """The pager's next button (st.pagination), or the page number's + step (before it)."""
    before = _first_title(page)
    pager = page.locator(".st-key-elements_page")
    nxt = pager.get_by_role("button", name="Next page")
    (nxt if nxt.count() else pager.locator('[data-testid="stNumberInputStepUp"]')).click()
    page.wait_for_function("t => document.querySelector('[class*=\"st-key-elements_card_\"] h5')?.innerText !== t",
                           arg=before)


INTERACTIONS = [
    Interaction("Elements: open edit (200 elements)", "Elements", _open_edit, setup=_seed, before=_close_dialog,
                floor="dialog"),
    Interaction("Elements: save an unchanged element (200 elements)", "Elements", _save_unchanged, setup=_seed,
                before=_open_dialog),
    Interaction("Elements: next page of cards (200 elements)", "Elements", _next_page, setup=_seed,
                before=_close_dialog),
]


def _ask_delete(page: Page) -> None:
    page.locator('[class*="st-key-elements_delete_"] button').first.click()
    page.locator('[class*="st-key-elements_delete_no_"] button').wait_for()


def _cancel_delete(page: Page) -> None:
    if page.locator('[class*="st-key-elements_delete_no_"] button').count():
        page.locator('[class*="st-key-elements_delete_no_"] button').first.click()
        page.locator('[class*="st-key-elements_delete_no_"] button').wait_for(state="detached")
        settle(page)


INTERACTIONS.append(Interaction("Elements: ask to delete (one card redraws)", "Elements", _ask_delete, setup=_seed,
                                before=_cancel_delete))
