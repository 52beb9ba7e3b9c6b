"""Batch in Chromium against the sandbox: a 20-row CSV with two bad rows (problems by row and column, skipped,
18 sent), kill -9 of the server mid-batch then a restart that resumes without resending (exactly 18 tasks in the
sandbox), the manifest download, and bad CSVs that change nothing saved."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import pytest

from lib.batch.runner import list_batches
from tests.conftest import free_port, screenshot, wait_for_app

pytestmark = pytest.mark.browser

TEMPLATE = "A {{animal}} crosses {{place}}, {sunny|rainy} light"


def _rows_csv() -> bytes:
    lines = ["animal,place,mode"] + [f"animal{i},town{i}," for i in range(1, 21)]
    lines[4] = "@foxx,town4,"       # row 4: an unknown @name
    lines[9] = "animal9,town9,ultra"  # row 9: a bad mode
    return ("\n".join(lines) + "\n").encode()


def _sandbox_prompts(data: Path) -> list[str]:
    path = data / "sandbox" / "sandbox_state.json"
    if not path.exists():
        return []
    tasks = json.loads(path.read_text())["tasks"]
    return [t["payload"]["input"]["prompt"] for t in tasks.values()]


def _open_batch(page, url: str) -> None:
    page.goto(f"{url}/Batch")
    wait_for_app(page)


def _write_template(page) -> None:
    box = page.get_by_role("textbox", name="Prompt template")
    box.fill(TEMPLATE)
    box.press("Tab")
    wait_for_app(page)


def _upload(page, tmp_path: Path, name: str, data: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(path))
    page.wait_for_timeout(500)
    wait_for_app(page)


def _main_text(page, *expected: str, timeout_s: float = 20) -> str:
    """The main area's text once every expected phrase shows (reruns after an upload take a moment)."""
    deadline = time.monotonic() + timeout_s
    while True:
        text = page.locator('[data-testid="stMain"]').inner_text()
        if all(e in text for e in expected) or time.monotonic() > deadline:
            return text
        page.wait_for_timeout(250)


def _wait_sent(data: Path, at_least: int, timeout_s: float = 60) -> int:
    """Wait for the batch file to show a row just finished (so the next is a pace away); returns the count."""
    deadline = time.monotonic() + timeout_s
    last = -1
    while time.monotonic() < deadline:
        batches = list_batches(data)
        sent = batches[0].count("sent") if batches else 0
        if sent >= at_least and sent != last and last != -1 and batches[0].count("unknown") == 0:
            return sent
        last = sent
        time.sleep(0.02)
    raise AssertionError(f"batch did not reach {at_least} sent rows in {timeout_s} s")


def test_a_20_row_csv_with_two_bad_rows_sends_18_and_survives_kill_9(app_server_factory, page, tmp_path) -> None:
    data = tmp_path / "data"
    env = {"KLING_SANDBOX_PORT": str(free_port()), "KLING_SANDBOX_SECONDS": "2", "KLING_BATCH_RATE": "1/0.8"}
    first = app_server_factory(data, env=env)
    _open_batch(page, first.url)
    _write_template(page)
    _upload(page, tmp_path, "rows.csv", _rows_csv())
    text = _main_text(page, "Row 4 · column animal", "Row 9 · column mode", "18 of 20")
    assert "Row 4 · column animal: No element named 'foxx'" in text
    assert "Row 9 · column mode: 'ultra' is not a mode" in text
    assert "18 of 20" in text
    page.get_by_role("button", name="Review: send 18 task(s)…").click()
    wait_for_app(page)
    screenshot(page, "batch-confirm")
    page.get_by_role("button", name="Confirm: send 18 for 1,260 credits (US$6.30)").click()
    wait_for_app(page)

    sent_before = _wait_sent(data, 5)
    first.stop(kill=True)  # kill -9 mid-batch
    before = _sandbox_prompts(data)
    assert sent_before <= len(before) < 18, (sent_before, len(before))

    second = app_server_factory(data, env=env, port=free_port())  # the server resumes with no tab open
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and list_batches(data)[0].status != "done":
        time.sleep(0.3)
    batch = list_batches(data)[0]
    assert batch.status == "done" and batch.count("sent") == 18 and batch.count("skipped") == 2
    prompts = _sandbox_prompts(data)
    assert len(prompts) == 18 and len(set(prompts)) == 18  # exactly 18 createTask calls: none sent twice

    _open_batch(page, second.url)
    assert "18 of 18 sent" in _main_text(page, "18 of 18 sent")
    screenshot(page, "batch-done")
    with page.expect_download() as info:
        page.get_by_role("button", name="⬇️ Manifest (CSV)").click()
    lines = list(csv.reader(io.StringIO(Path(info.value.path()).read_text(encoding="utf-8-sig"))))
    assert lines[0][:4] == ["row", "take", "animal", "place"] and len(lines) == 21
    assert sum(1 for line in lines[1:] if line[5].startswith("task_")) == 18
    assert {line[0] for line in lines[1:] if line[7] == "skipped"} == {"4", "9"}


def test_bad_csvs_give_clear_messages_and_change_nothing_saved(app_server, page, tmp_path) -> None:
    data = app_server.data_dir
    _open_batch(page, app_server.url)
    _write_template(page)
    _upload(page, tmp_path, "good.csv", b"animal,place\ncat,Paris\ndog,Rome\n")
    assert "2 of 2" in _main_text(page, "2 of 2")
    cases = [
        ("missing.csv", b"animal,location\ncat,Paris\n", "Column 'place' is missing"),
        ("huge.csv", b"animal,place\n" + b"cat,Paris\n" * 10_000, "10,000 rows"),
    ]
    for name, body, words in cases:
        _upload(page, tmp_path, name, body)
        text = _main_text(page, words)
        assert words in text and "The CSV was not loaded" in text, text[:2000]
        assert "2 of 2" in text  # the rows already loaded are unchanged
    _upload(page, tmp_path, "rowlevel.csv", b"animal,place\ncat,Paris\n,\n@nobody,Rome\n")
    text = _main_text(page, "Row 2: the row is empty", "1 of 3")
    assert "Row 2: the row is empty" in text and "Row 3 · column animal: No element named 'nobody'" in text
    assert "1 of 3" in text
    screenshot(page, "batch-bad-csv")
    assert not (data / "batches").exists() or not any((data / "batches").iterdir())
    assert _sandbox_prompts(data) == []
    assert not (data / "history.csv").exists() or (data / "history.csv").read_text().count("\n") <= 1
