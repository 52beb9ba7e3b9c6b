"""The Batch page under AppTest: template from Compose, rows checked by row and column, confirm, progress."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lib.batch.runner import list_batches

ROOT = Path(__file__).resolve().parents[2]


def _batch_page(monkeypatch: pytest.MonkeyPatch, data: Path) -> AppTest:
    monkeypatch.setenv("KLING_STUDIO_DATA", str(data))
    at = AppTest.from_file(str(ROOT / "home.py"), default_timeout=60).run()
    return at.switch_page("pages/5_Batch.py").run()


def _texts(at: AppTest) -> str:
    return " ".join(str(e.value) for e in [*at.error, *at.warning, *at.info, *at.caption])


def test_the_page_loads_and_starts_from_the_compose_form(monkeypatch, tmp_path) -> None:
    at = _batch_page(monkeypatch, tmp_path / "data")
    assert not at.exception, at.exception
    at.session_state["compose_prompt"] = "A {{animal}} at {dawn|dusk}"
    at.session_state["compose_mode"] = "pro"
    at.button(key="batch_from_compose").click().run()
    assert at.text_area(key="batch_prompt").value == "A {{animal}} at {dawn|dusk}"
    assert at.selectbox(key="batch_mode").value == "pro"
    assert "animal" in _texts(at)


def test_rows_are_checked_then_confirmed_then_sent_once(monkeypatch, tmp_path) -> None:
    data = tmp_path / "data"
    at = _batch_page(monkeypatch, data)
    at.text_area(key="batch_prompt").input("A {{animal}} at {dawn|dusk}").run()
    at.session_state["batch_table"] = [{"animal": "cat"}, {"animal": "@nobody"}, {"animal": "dog", "mode": "4k"}]
    at.session_state["batch_table_v"] = 1
    at.run()
    text = _texts(at)
    assert "Row 2 · column animal" in text and "nobody" in text
    assert not list_batches(data)  # nothing saved before the confirm
    at.button(key="batch_review").click().run()
    assert not list_batches(data)
    at.button(key="batch_confirm").click().run()
    assert not at.exception, at.exception
    batches = list_batches(data)
    assert len(batches) == 1 and batches[0].count("skipped") == 1
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and list_batches(data)[0].status != "done":
        time.sleep(0.1)
    batch = list_batches(data)[0]
    assert batch.count("sent") == 2 and batch.jobs[2].payload["input"]["mode"] == "4K"
