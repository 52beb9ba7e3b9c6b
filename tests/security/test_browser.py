"""Browser: the running app attacked through its own upload widgets and deep links (one app server for the module).

A listener on 127.0.0.1 stands for every internal host: no viewer's browser and no server-side fetch may reach it.
Legitimate use keeps working: a history exported from another data folder imports and its video saves locally."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from lib.history.ledger import Ledger
from lib.history.transfer import export_csv
from lib.kie.client import KieClient
from lib.sandbox.server import start_sandbox
from lib.tasks.submit import submit_payload
from tests.conftest import AppServer, follow_to_end, free_port, wait_for_app
from tests.security.conftest import (
    Listener,
    bomb_png,
    edited_csv,
    hostile,
    outside_listing,
    png_bytes,
    run,
)

pytestmark = pytest.mark.browser

LEGIT = {"model": "kling-3.0/video",
         "input": {"prompt": "A paper lantern floats over a lake at night", "mode": "std", "sound": False,
                   "duration": "3", "aspect_ratio": "16:9", "multi_shots": False}}
TITLES = {"🗂️ History", "🧩 Elements", "✍️ Compose", "🎬 Kling Studio"}


class World:
    def __init__(self, server: AppServer, listener: Listener, legit_csv: bytes, legit_id: str) -> None:
        self.server, self.listener, self.legit_csv, self.legit_id = server, listener, legit_csv, legit_id
        self.data = server.data_dir


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("security")
    data, other = base / "data", base / "other"
    data.mkdir()
    port = free_port()
    # The legitimate run lives in the sandbox this app will use (same port, same state folder), but its history
    # row is in another data folder: that folder's export is what gets imported.
    sandbox = start_sandbox(port=port, data_dir=data / "sandbox", progress="immediate")
    try:
        client = KieClient("sandbox-demo", sandbox.base_url, sandbox.base_url)
        ledger = Ledger.in_dir(other)
        sub = submit_payload(client, ledger, LEGIT, origin="sandbox", batch_id="b-legit")
        assert sub.error is None, sub.error
        row, _ = follow_to_end(client, ledger, sub.row, other)
        assert row.state == "succeeded" and row.result_url.startswith(sandbox.base_url)
    finally:
        sandbox.stop()
    listener = Listener()
    server = AppServer(data, env={"KLING_SANDBOX_PORT": str(port)}).start()
    yield World(server, listener, export_csv(ledger.rows()), row.task_id)
    server.stop()
    listener.stop()


def _open(page, world: World, path: str) -> None:
    page.goto(f"{world.server.url}/{path}")
    wait_for_app(page)


def _main_has(page, text: str, timeout: float = 30_000) -> None:
    page.wait_for_function(
        "t => (document.querySelector('[data-testid=\"stMain\"]')?.innerText || '').includes(t)",
        arg=text, timeout=timeout)


def _upload(page, label: str, files: list[dict]) -> None:
    box = page.locator('[data-testid="stFileUploader"]').filter(has_text=label)
    box.locator('input[type="file"]').set_input_files(files)
    wait_for_app(page)


def _assert_page_is_inert(page, world: World) -> None:
    """No element loads or links the listener (except a plain link naming its host), no heading from data, and
    every media source the page offers serves none of the server's files."""
    port = f":{world.listener.port}"
    refs = page.eval_on_selector_all(
        "img, video, audio, source, iframe, a, link, script",
        "els => els.map(e => [e.tagName, e.currentSrc || e.src || e.href || '', e.innerText || ''])")
    for tag, ref, text in refs:
        if port in ref:
            assert tag == "A" and "on 127.0.0.1" in text, (tag, ref, text)
        assert not ref.lower().startswith(("javascript:", "file:", "data:text")), (tag, ref)
    headings = page.eval_on_selector_all('[data-testid="stMain"] h1', "els => els.map(e => e.innerText.trim())")
    assert set(headings) <= TITLES, headings
    for tag, ref, _ in refs:
        if tag in ("VIDEO", "SOURCE", "IMG") and ref.startswith(world.server.url):
            body = page.request.get(ref).body()
            assert b"root:" not in body and b"KLING_STUDIO_DATA" not in body and b"PATH=" not in body, ref


def test_hostile_history_import_reads_no_file_loads_nothing_and_fetches_nothing(page, world: World) -> None:
    port = world.listener.port
    ids = {"environ": "file-environ", "passwd": "file-passwd", "relative": "file-relative", "ssrf": "ssrf-run",
           "md": f"t-![x](http://127.0.0.1:{port}/img.png)", "fail": "t-<img src=x>"}
    rows = [run(hostile(port, "prompt"), task_id=t, minutes=i) for i, t in enumerate(ids.values())]
    edits = {"file-environ": {"local_video": "/proc/self/environ"}, "file-passwd": {"local_video": "/etc/passwd"},
             "file-relative": {"local_video": "../../x"},
             "ssrf-run": {"result_url": f"{world.listener.origin}/video.mp4", "notes": hostile(port, "notes")},
             ids["md"]: {"notes": hostile(port, "notes"), "batch_id": hostile(port, "batch")},
             ids["fail"]: {"state": "failed", "fail_msg": hostile(port, "fail"), "fail_code": "# Heading"}}
    before = outside_listing(world.data)
    _open(page, world, "History")
    page.get_by_text("Export and import").click()
    _upload(page, "Import a history CSV", [{"name": "../../evil.csv", "mimeType": "text/csv",
                                             "buffer": edited_csv(rows, edits)}])
    page.get_by_role("button", name=re.compile(r"Merge \d+ new run")).click()
    _main_has(page, "Merged 6 run(s)")
    for task_id in ids.values():
        _open(page, world, f"History?task={quote(task_id, safe='')}")
        _main_has(page, "Your rating")
        assert page.locator('[data-testid="stMain"] video').count() == 0, task_id
        _assert_page_is_inert(page, world)
    _open(page, world, f"History?task={quote(ids['ssrf'], safe='')}")
    page.get_by_role("button", name="💾 Save video locally").click()
    _main_has(page, "private, loopback")
    for reflected in ("../../etc/passwd", f"![x](http://127.0.0.1:{port}/r.png)", f"<img src=http://127.0.0.1:{port}/q>"):
        _open(page, world, f"History?task={quote(reflected, safe='')}")
        _main_has(page, "is not in this history")
        _assert_page_is_inert(page, world)
    assert world.listener.requests == []
    assert {r.local_video for r in Ledger.in_dir(world.data).rows() if r.task_id in ids.values()} == {""}
    assert outside_listing(world.data) == before


def test_hostile_names_files_and_bombs_on_elements_and_compose(page, world: World) -> None:
    port = world.listener.port
    before = outside_listing(world.data)
    _open(page, world, "Elements")
    _upload(page, "Reference files", [
        {"name": "../../evil.png", "mimeType": "image/png", "buffer": png_bytes(320)},
        {"name": "/etc/" + "x" * 300 + ".png", "mimeType": "image/png", "buffer": png_bytes(330)}])
    page.locator(".st-key-elements_name_field input").fill("trav_cat")
    page.locator(".st-key-elements_description_field textarea").fill(hostile(port, "desc"))
    page.locator(".st-key-elements_description_field textarea").press("Tab")
    wait_for_app(page)
    page.get_by_role("button", name="Save and upload").click()
    _main_has(page, "@trav_cat is uploaded")
    _upload(page, "Reference files", [{"name": "bomb.png", "mimeType": "image/png", "buffer": bomb_png()}])
    _main_has(page, "at most 40 megapixels")
    _assert_page_is_inert(page, world)

    _open(page, world, "Compose")
    chip = page.get_by_role("button", name="@trav_cat")
    chip.hover()  # the description is the chip's tooltip
    page.wait_for_timeout(800)
    page.locator(".st-key-compose_w_first_source").get_by_text("Upload").click()
    wait_for_app(page)
    _upload(page, "JPG or PNG", [{"name": "../../bomb.png", "mimeType": "image/png", "buffer": bomb_png()}])
    _main_has(page, "at most 40 megapixels")
    page.get_by_text("Drafts — save this form").click()
    page.locator(".st-key-compose_w_draft_name input").fill(hostile(port, "draft").replace("\n", " ") + "/../../x")
    page.locator(".st-key-compose_w_draft_name input").press("Tab")
    wait_for_app(page)
    page.get_by_role("button", name="Save draft").click()
    _main_has(page, "Saved draft")
    _assert_page_is_inert(page, world)
    assert world.listener.requests == []
    assert outside_listing(world.data) == before
    files = [p for p in (world.data / "elements").rglob("*.png")]
    assert len(files) == 2 and all(p.resolve().is_relative_to(world.data.resolve()) for p in files)


def test_a_history_exported_elsewhere_imports_and_its_video_saves_locally(page, world: World) -> None:
    _open(page, world, "History")
    page.get_by_text("Export and import").click()
    _upload(page, "Import a history CSV", [{"name": "kling-history.csv", "mimeType": "text/csv",
                                             "buffer": world.legit_csv}])
    _main_has(page, "1 new run(s)")
    page.get_by_role("button", name=re.compile(r"Merge 1 new run")).click()
    _main_has(page, "Merged 1 run(s)")
    row = Ledger.in_dir(world.data).get(world.legit_id)
    assert row is not None and row.imported_at is not None and row.local_video == ""
    _open(page, world, f"History?task={quote(world.legit_id, safe='')}")
    _main_has(page, "Your rating")
    page.get_by_role("button", name="💾 Save video locally").click()
    _main_has(page, "Video saved in the data folder.")
    video = page.locator('[data-testid="stMain"] video').first
    expect(video).to_be_attached()
    src = video.evaluate("v => v.currentSrc || v.src")
    assert src.startswith(world.server.url) and page.request.get(src).body()[4:8] == b"ftyp"
    assert (world.data / "videos").is_dir() and len(list((world.data / "videos").glob("*.mp4"))) == 1
    assert world.listener.requests == []
