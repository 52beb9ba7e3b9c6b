"""Browser, History at 1400 px: one page of runs in the table (pages below it), every column readable, a deep link to
a run on another page, the archived video's thumbnail, and rating / compare picks redrawing only their own part."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from lib.history.ledger import Ledger
from lib.history.row import HistoryRow
from lib.history.transfer import ImportReport
from lib.kie.client import KieClient
from lib.sandbox.server import start_sandbox
from lib.storage.files import FileMedia
from lib.tasks.follow import refresh_task
from lib.tasks.submit import submit_payload
from tests.browser.test_history_browser import PAYLOAD, _main_text_has, _pick_option
from tests.conftest import labels_sent, screenshot, wait_for_app, ws_messages

pytestmark = pytest.mark.browser

RUNS = 120


def _history(data: Path) -> tuple[Ledger, str]:
    """RUNS finished runs (task_p000 the oldest), plus one newest run whose video is archived."""
    ledger = Ledger.in_dir(data)
    base = HistoryRow.from_payload("x", PAYLOAD, origin="sandbox", estimated_credits=30)
    rows = [replace(base, task_id=f"task_p{i:03d}", state="succeeded", credits_consumed=30.0, prompt=f"take {i}",
                    created_at=base.created_at - timedelta(hours=RUNS - i)) for i in range(RUNS)]
    ledger.merge(ImportReport(rows_ok=rows))
    server = start_sandbox(port=0, data_dir=data / "sandbox", progress="immediate")
    try:
        client = KieClient("sandbox-demo", server.base_url, server.base_url)
        task_id = submit_payload(client, ledger, PAYLOAD, origin="sandbox", batch_id="b-thumb").row.task_id
        _, err = refresh_task(client, ledger, FileMedia(data), ledger.get(task_id), allow_private=True)
        assert err is None and FileMedia(data).video(task_id) is not None
    finally:
        server.stop()
    return ledger, task_id


def _grid_fits(page) -> bool:
    """The table needs no sideways scrolling: every column is drawn inside it."""
    return page.evaluate("""() => { const s = document.querySelector('[data-testid="stDataFrame"] .dvn-scroller');
                                    return !!s && s.scrollWidth <= s.clientWidth + 1; }""")


def test_history_pages_its_table_and_keeps_every_column_readable(app_server_factory, page, tmp_path: Path) -> None:
    data = tmp_path / "data"
    ledger, archived = _history(data)
    assert FileMedia(data).thumbnail(archived) is not None  # the first frame, made when the video was archived
    app = app_server_factory(data_dir=data)
    page.goto(f"{app.url}/History")
    wait_for_app(page)
    _main_text_has(page, f"{RUNS + 1} of {RUNS + 1} run(s) shown (rows 1–50 on this page)")
    page.locator('[data-testid="stDataFrame"] .dvn-scroller').first.wait_for()  # widgets load lazily
    page.locator('[data-testid="stPagination"]').wait_for()
    wait_for_app(page)
    assert _grid_fits(page)
    screenshot(page, "history-paged-1400")
    page.locator('[data-testid="stPagination"]').get_by_text("3", exact=True).click()
    _main_text_has(page, "rows 101–121 on this page")
    wait_for_app(page)
    page.goto(f"{app.url}/History?task=task_p001")  # on the last page of the default view
    wait_for_app(page)
    _main_text_has(page, "✅ succeeded · task_p001")
    for width in (1280, 1024):
        page.set_viewport_size({"width": width, "height": 1000})
        wait_for_app(page)
        assert not page.locator('[data-testid="stException"]').count()
    assert ledger.get("task_p001") is not None


def _reruns(page) -> list[str]:
    """The fragment id of every rerun the browser asks for ('' for a whole-page rerun)."""
    return ws_messages(page, "sent", lambda msg: msg.rerun_script.fragment_id
                       if msg.WhichOneof("type") == "rerun_script" else None)


@pytest.fixture
def history_app(app_server_factory, tmp_path: Path):
    """The app on a data folder holding _history's runs."""
    data = tmp_path / "data"
    _history(data)
    return app_server_factory(data_dir=data)


def test_rating_and_compare_picks_redraw_only_their_part(history_app, page) -> None:
    app, data = history_app, history_app.data_dir
    asked = _reruns(page)
    page.goto(f"{app.url}/History?task=task_p119")
    wait_for_app(page)
    asked.clear()
    page.get_by_role("radio", name="4 out of 5 stars").click()
    _main_text_has(page, "Rating saved.")
    wait_for_app(page)
    assert Ledger.in_dir(data).get("task_p119").rating == 4
    assert asked and all(asked), asked  # the rating box reran alone
    asked.clear()
    combo = page.get_by_label("Runs to compare (2–4 finished runs)")
    for suffix in ("p119", "p118"):
        _pick_option(page, combo, suffix)
        wait_for_app(page)
    _main_text_has(page, "differing field(s) highlighted")
    assert asked and all(asked), asked  # so did the compare section
    assert not page.locator('[data-testid="stException"]').count()


def test_a_filter_change_redraws_the_results_not_the_filters(history_app, page) -> None:
    app = history_app
    sent = labels_sent(page)
    page.goto(f"{app.url}/History")
    _main_text_has(page, "121 of 121 run(s) shown")
    wait_for_app(page)
    assert "Search" in sent and "Export and import" in sent, sent
    assert "Import a history CSV" not in sent  # a closed Export and import box sends nothing inside it
    sent.clear()
    search = page.get_by_placeholder("prompt, notes, task id, element…")
    search.fill("take 11")
    search.press("Enter")
    _main_text_has(page, "11 of 121 run(s) shown")  # take 11, take 110–119
    wait_for_app(page)
    assert sent and "Runs to compare (2–4 finished runs)" in sent  # the results were drawn again …
    assert not {"Search", "State", "Sound", "Sort by", "Descending"} & set(sent), sent  # … the filters were not
    sent.clear()
    page.get_by_text("Export and import").click()
    expect(page.get_by_text("Import a history CSV")).to_be_visible()
    assert search.input_value() == "take 11"
    page.get_by_text("Descending", exact=True).click()
    _main_text_has(page, "11 of 121 run(s) shown")
    assert not page.locator('[data-testid="stException"]').count()
