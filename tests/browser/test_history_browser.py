"""Browser: a sandbox task survives an app restart; History (deep link) resumes it and plays the archived video."""

from __future__ import annotations

from pathlib import Path

import pytest

from lib.history.ledger import Ledger
from lib.kie.client import KieClient
from lib.sandbox.server import start_sandbox
from lib.storage.files import FileMedia
from lib.tasks.follow import refresh_task
from lib.tasks.submit import submit_payload
from tests.conftest import screenshot, wait_for_app

pytestmark = pytest.mark.browser

GENERATION_S = 600.0  # the task's own wall-clock length; the sandbox clock is advanced instead of waiting
PAYLOAD = {"model": "kling-3.0/video",
           "input": {"prompt": "A paper boat drifts down a rainy street, close tracking shot", "mode": "std",
                     "sound": False, "duration": "3", "aspect_ratio": "16:9", "multi_shots": False}}


def _advance_sandbox(data: Path, seconds: float) -> None:
    """Move the persisted sandbox clock forward while no app is running (what a long wait would do)."""
    server = start_sandbox(port=0, data_dir=data / "sandbox")
    try:
        server.backend.advance(seconds)
    finally:
        server.stop()


def _submit_before_start(data: Path) -> str:
    """Create a task in the sandbox state the app will load, and its ledger row (as Compose would)."""
    server = start_sandbox(port=0, data_dir=data / "sandbox", progress="wall", seconds=GENERATION_S)
    try:
        client = KieClient("sandbox-demo", server.base_url, server.base_url)
        sub = submit_payload(client, Ledger.in_dir(data), PAYLOAD, origin="sandbox", batch_id="b-browser")
        assert sub.error is None, sub.error
    finally:
        server.stop()
    _advance_sandbox(data, GENERATION_S * 0.6)  # past half: the sandbox reports it "generating"
    return sub.row.task_id


def _pick_option(page, combo, text: str, attempts: int = 3) -> None:
    """Open a multiselect and click an option (a rerun landing mid-click can close the list: retry)."""
    for attempt in range(attempts):
        combo.click()
        option = page.get_by_role("option", name=text).first
        try:
            option.wait_for(timeout=5_000)
            option.click()
            page.keyboard.press("Escape")
            return
        except Exception:  # noqa: BLE001 - playwright timeout: the list closed, open it again
            page.keyboard.press("Escape")
            wait_for_app(page)
            if attempt == attempts - 1:
                raise


def _main_text_has(page, text: str, timeout: float = 60_000) -> None:
    page.wait_for_function(
        "t => (document.querySelector('[data-testid=\"stMain\"]')?.innerText || '').includes(t)",
        arg=text, timeout=timeout)


def test_task_resumes_after_restart_and_plays_from_the_archive(app_server_factory, page, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    task_id = _submit_before_start(data)
    ledger = Ledger.in_dir(data)

    first = app_server_factory(data_dir=data)
    page.goto(f"{first.url}/History?task={task_id}")
    wait_for_app(page)
    _main_text_has(page, f"🔄 running · {task_id}")  # the server's follower queried it: generating
    assert "followed by the server" in page.locator('[data-testid="stSidebar"]').inner_text()
    assert ledger.get(task_id).state == "running"
    wait_for_app(page)
    screenshot(page, "history-running")
    first.stop()

    _advance_sandbox(data, GENERATION_S)  # the generation finishes while the app is down
    assert ledger.get(task_id).state == "running" and not ledger.get(task_id).local_video

    second = app_server_factory(data_dir=data)
    page.goto(f"{second.url}/History?task={task_id}")
    _main_text_has(page, f"✅ succeeded · {task_id}")
    wait_for_app(page)
    page.wait_for_function(
        "() => { const v = document.querySelector('[data-testid=\"stMain\"] video');"
        " return !!v && v.readyState >= 2; }", timeout=30_000)
    src = page.locator('[data-testid="stMain"] video').first.get_attribute("src") or ""
    assert "/media/" in src and src.endswith(".mp4"), src  # served by Streamlit from the local file
    done = ledger.get(task_id)
    video = FileMedia(data).video(task_id)
    assert done.state == "succeeded" and video is not None and video.parent == (data / "videos").resolve()
    assert video.read_bytes()[4:8] == b"ftyp"
    assert not page.locator('[data-testid="stException"]').count()
    screenshot(page, "history-done")


def test_history_table_and_compare_render(app_server_factory, page, tmp_path: Path) -> None:
    """Two finished runs: the table, filters and the compare view render without errors."""
    data = tmp_path / "data"
    data.mkdir()
    server = start_sandbox(port=0, data_dir=data / "sandbox", progress="immediate")
    ledger = Ledger.in_dir(data)
    try:
        client = KieClient("sandbox-demo", server.base_url, server.base_url)
        ids = []
        for mode in ("std", "pro"):
            body = {**PAYLOAD, "input": {**PAYLOAD["input"], "mode": mode}}
            ids.append(submit_payload(client, ledger, body, origin="sandbox", batch_id="b-cmp").row.task_id)
        _, err = refresh_task(client, ledger, FileMedia(data), ledger.get(ids[0]), allow_private=True)
        assert err is None and ledger.get(ids[0]).local_video  # done and archived
        ledger.update(ids[1], state="failed", fail_code="501", fail_msg="sandbox says no", credits_consumed=0.0)
    finally:
        server.stop()
    app = app_server_factory(data_dir=data)
    page.goto(f"{app.url}/History?task={ids[1]}")
    wait_for_app(page)
    _main_text_has(page, "sandbox says no")
    # click the row marker of the second table row (the older, succeeded run): the detail panel follows
    box = page.locator('[data-testid="stDataFrame"]').first.bounding_box()
    page.mouse.click(box["x"] + 18, box["y"] + 35 * 2 + 17)
    _main_text_has(page, f"✅ succeeded · {ids[0]}")
    wait_for_app(page)
    assert f"task={ids[0]}" in page.url
    # the payload is drawn only while its box is open (picking a run draws no JSON tree), and then it is there
    main = page.locator('[data-testid="stMain"]')
    assert not main.locator('[data-testid="stJson"]').count()
    page.get_by_text("Payload sent to KIE").click()
    main.locator('[data-testid="stJson"]').filter(has_text="kling-3.0/video").first.wait_for()
    page.get_by_text("Pick two to four finished runs").wait_for()
    combo = page.get_by_label("Runs to compare (2–4 finished runs)")
    for task_id in ids:
        _pick_option(page, combo, task_id[-6:])
        wait_for_app(page)
    _main_text_has(page, "differing field(s) highlighted")
    page.wait_for_function("() => [...document.querySelectorAll('[data-testid=\"stMain\"] video')]"
                           ".some(v => v.readyState >= 2)")
    assert not page.locator('[data-testid="stException"]').count()
    page.set_viewport_size({"width": 1400, "height": 2400})  # Streamlit scrolls inside main: show it all
    wait_for_app(page)
    screenshot(page, "history-compare")


def test_notes_typed_then_saved_with_one_click(app_server_factory, page, tmp_path: Path) -> None:
    """Typing notes and clicking Save straight away (no Tab first) saves them: the click is not swallowed."""
    data = tmp_path / "data"
    ledger = Ledger.in_dir(data)
    from lib.history.row import HistoryRow

    ledger.append(HistoryRow.from_payload("task_notes1", PAYLOAD, origin="sandbox", state="failed"))
    app = app_server_factory(data_dir=data)
    page.goto(f"{app.url}/History?task=task_notes1")
    wait_for_app(page)
    page.get_by_role("textbox", name="Notes").click()
    page.keyboard.type("keep the boat shot")
    page.get_by_role("button", name="Save notes").click()
    _main_text_has(page, "Notes saved.")
    assert Ledger.in_dir(data).get("task_notes1").notes == "keep the boat shot"
