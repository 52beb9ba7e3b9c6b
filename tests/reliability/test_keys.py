"""Key hygiene: after real sessions the API key is in no file, log line, page, export, preview or cURL."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from lib.elements.library import ElementLibrary
from lib.elements.model import to_element_spec
from lib.history.ledger import Ledger
from lib.history.transfer import export_csv, recipe_json
from lib.kie.client import KieClient
from lib.kie.uploads import upload_file
from lib.kling.job import element_entry
from lib.sandbox.server import start_sandbox
from lib.storage.files import FileMedia
from lib.tasks.follow import refresh_task
from lib.tasks.submit import submit_payload
from tests.conftest import wait_for_app
from tests.reliability.conftest import PAYLOAD, png_bytes

KEY = "sk-test-SECRET-123456"
PAGES = ("/", "/Elements", "/Compose", "/History")


def files_containing(folder: Path, needle: bytes) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]


@pytest.fixture
def kie(tmp_path: Path):
    """A KIE-like server that only accepts KEY."""
    server = start_sandbox(port=0, data_dir=tmp_path / "kie", progress="immediate", required_key=KEY)
    yield server
    server.stop()


def run_live_session(kie, data: Path) -> list[str]:
    """Upload, create an element, submit, follow to success and archive, all with the key, via lib."""
    client = KieClient(KEY, kie.base_url, kie.base_url)
    assert client.get_credits() > 0
    upload_file(client, io.BytesIO(png_bytes()), file_name="frame.png", upload_path="kling-studio/frames")
    library = ElementLibrary(data)
    element = library.create("cat", "a ginger cat", files=[("a.png", png_bytes()), ("b.png", png_bytes())])

    def uploader(source, file_name, upload_path, method="auto"):  # noqa: ANN001, ANN202 - the Uploader shape
        return upload_file(client, source, file_name=file_name, upload_path=upload_path, method=method)

    library.upload(element.id, uploader)
    spec = element_entry(to_element_spec(library.get(element.id)))
    body = {**PAYLOAD, "input": {**PAYLOAD["input"], "prompt": "@cat sits", "kling_elements": [spec],
                                 "image_urls": [spec["element_input_urls"][0]]}}
    ledger = Ledger.in_dir(data)
    sub = submit_payload(client, ledger, body, origin="live", batch_id="b-live")
    assert sub.error is None, sub.error
    row, err = refresh_task(client, ledger, FileMedia(data), sub.row, allow_private=True)
    assert err is None and row.state == "succeeded" and row.local_video
    refused = KieClient("sk-wrong-000", kie.base_url, kie.base_url)
    with pytest.raises(Exception) as wrong:
        refused.get_credits()
    assert "sk-wrong-000" not in str(wrong.value) and KEY not in repr(client)
    return [row.task_id]


@pytest.mark.browser
def test_the_key_leaks_nowhere_after_a_live_session(kie, app_server_factory, browser, tmp_path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    data = tmp_path / "data"
    data.mkdir()
    task_ids = run_live_session(kie, data)
    server = app_server_factory(data, env={"KIE_API_KEY": KEY, "KIE_API_BASE": kie.base_url,
                                           "KIE_UPLOAD_BASE": kie.base_url})
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        html, previews = [], []
        for path in (*PAGES, f"/History?task={task_ids[0]}"):
            page.goto(server.url + path)
            wait_for_app(page)
            html.append(page.content())
            if path == "/Compose":  # the payload preview: each tab's code only renders when opened
                for tab, marker in (("cURL", "curl -X POST"), ("Python", "KIE_API_KEY")):
                    page.get_by_role("tab", name=tab).click()
                    page.locator('[data-testid="stCode"]').filter(has_text=marker).first.wait_for(state="attached")
                    html[-1] += page.content()
                    previews.append(page.locator('[data-testid="stCode"]').filter(has_text=marker).first.text_content())
            if path == "/":
                page.get_by_text("KIE balance").wait_for()
                text = page.inner_text("body")
                assert "Live mode" in text and "KIE balance" in text  # the key works: the app is live
        assert "curl -X POST" in previews[0] and "KIE_API_KEY" in previews[1]  # the previews were on the page
        assert all(KEY not in text for text in previews)
        for path, content in zip((*PAGES, "History detail"), html, strict=True):
            assert KEY not in content, f"the key is in the HTML of {path}"
    finally:
        context.close()
        server.stop()

    ledger = Ledger.in_dir(data)
    from lib.compose.snippets import curl_command

    exports = {"history CSV": export_csv(ledger.rows()).decode(), "recipe": recipe_json(ledger.get(task_ids[0])),
               "library JSON": ElementLibrary(data).export_json(),
               "cURL": curl_command(ledger.get(task_ids[0]).payload, kie.base_url)}
    for name, text in exports.items():
        assert KEY not in text, f"the key is in the {name}"
    assert "$KIE_API_KEY" in exports["cURL"]
    assert files_containing(data, KEY.encode()) == []
    assert files_containing(tmp_path / "kie", KEY.encode()) == []
    logs = list(tmp_path.glob("streamlit-*.log"))
    assert logs and all(KEY.encode() not in p.read_bytes() for p in logs)
    assert caplog.records and all(KEY not in r.getMessage() for r in caplog.records)


@pytest.mark.browser
def test_a_key_typed_in_one_session_stays_in_that_session(kie, app_server_factory, browser, tmp_path) -> None:
    server = app_server_factory(tmp_path / "data", env={"KIE_API_BASE": kie.base_url, "KIE_UPLOAD_BASE": kie.base_url})
    contexts = [browser.new_context(), browser.new_context()]
    pages = [c.new_page() for c in contexts]
    try:
        for p in pages:
            p.set_default_timeout(30_000)
            p.goto(server.url)
            wait_for_app(p)
            p.get_by_text("Sandbox mode", exact=False).first.wait_for()
        typer = pages[0]
        typer.get_by_text("API key", exact=True).click()
        field = typer.get_by_label("KIE API key (this session only)", exact=True)
        field.fill(KEY)
        field.press("Enter")
        typer.get_by_text("KIE balance").wait_for()
        pages[1].reload()
        wait_for_app(pages[1])
        pages[1].get_by_text("Sandbox mode", exact=False).first.wait_for()
        first, second = typer.inner_text("body"), pages[1].inner_text("body")
        assert "Live mode" in first and "KIE balance" in first and "Sandbox mode —" not in first
        assert "Sandbox mode —" in second and "Live mode" not in second
        assert KEY not in typer.content() and KEY not in pages[1].content()
        assert typer.get_by_label("KIE API key (this session only)", exact=True).input_value() == ""  # not echoed back
    finally:
        for c in contexts:
            c.close()
        server.stop()
    logs = list(tmp_path.glob("streamlit-*.log"))
    assert all(KEY.encode() not in p.read_bytes() for p in logs)
    assert files_containing(tmp_path / "data", KEY.encode()) == []
