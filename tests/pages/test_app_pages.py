"""AppTest: every page loads without error in sandbox mode and in live mode (a key + a KIE-like server)."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import shown_text

PAGES = ["pages/1_Elements.py", "pages/2_Compose.py", "pages/3_History.py"]


def _app(monkeypatch: pytest.MonkeyPatch, data: Path, env: dict[str, str]) -> AppTest:
    monkeypatch.setenv("KLING_STUDIO_DATA", str(data))
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "home.py"), default_timeout=60)
    return at.run()


def _sidebar_text(at: AppTest) -> str:
    return " ".join(str(getattr(e, "value", "")) for e in [*at.sidebar.success, *at.sidebar.info])


@pytest.mark.parametrize("page", [None, *PAGES])
def test_page_loads_in_sandbox_mode(monkeypatch, tmp_path, page) -> None:
    at = _app(monkeypatch, tmp_path / "data", {})
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    text = _sidebar_text(at)
    assert "Sandbox" in text and "Nothing is spent" in text
    assert at.sidebar.metric[0].label.startswith("Sandbox credits")


@pytest.mark.parametrize("page", [None, *PAGES])
def test_page_loads_in_live_mode_and_shows_balance(monkeypatch, tmp_path, sandbox, page) -> None:
    sandbox.backend.configure(credits="60.62")
    env = {"KIE_API_KEY": "live-test-key-123", "KIE_API_BASE": sandbox.base_url, "KIE_UPLOAD_BASE": sandbox.base_url}
    at = _app(monkeypatch, tmp_path / "data", env)
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    assert "Live mode" in _sidebar_text(at)
    assert at.sidebar.metric[0].value == "60.62 credits"


@pytest.mark.parametrize("page", [None, *PAGES])
def test_a_broken_history_file_breaks_no_page_and_is_left_untouched(monkeypatch, tmp_path, page) -> None:
    data = tmp_path / "data"
    data.mkdir()
    broken = b"this is not,a history\nfile\x00\xff"
    (data / "history.csv").write_bytes(broken)
    at = _app(monkeypatch, data, {})
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    assert (data / "history.csv").read_bytes() == broken


def test_sessions_with_different_keys_never_see_each_others_live_tasks(monkeypatch, tmp_path, sandbox) -> None:
    from lib.history.ledger import Ledger
    from lib.history.row import HistoryRow
    from lib.kie.client import KieClient

    data = tmp_path / "data"
    ledger = Ledger.in_dir(data)
    mine, theirs = (KieClient(k, sandbox.base_url, sandbox.base_url).account for k in ("key-mine-1", "key-theirs-2"))
    assert mine != theirs and "key-mine" not in mine
    for task_id, origin, account in [("task_mine", "live", mine), ("task_theirs", "live", theirs),
                                     ("task_demo", "sandbox", "")]:
        ledger.append(HistoryRow(task_id=task_id, origin=origin, account=account, state="succeeded", prompt=task_id))
    env = {"KIE_API_KEY": "key-mine-1", "KIE_API_BASE": sandbox.base_url, "KIE_UPLOAD_BASE": sandbox.base_url}
    at = _app(monkeypatch, data, env)
    home = " ".join(shown_text(m.value) for m in at.markdown)
    assert "task_mine" in home and "task_demo" in home and "task_theirs" not in home
    at.switch_page("pages/3_History.py").run()
    assert not at.exception, at.exception
    shown = set(at.dataframe[0].value.index)
    assert shown == {"task_mine", "task_demo"}
    assert (data / "history.csv").read_bytes().count(b"key-mine") == 0


@pytest.mark.parametrize("page", [None, *PAGES])
def test_a_dead_network_in_live_mode_is_named_and_breaks_no_page(monkeypatch, tmp_path, page) -> None:
    env = {"KIE_API_KEY": "live-key", "KIE_API_BASE": "http://127.0.0.1:9", "KIE_UPLOAD_BASE": "http://127.0.0.1:9"}
    at = _app(monkeypatch, tmp_path / "data", env)
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    warning = " ".join(shown_text(w.value) for w in at.sidebar.warning)
    assert "Balance unavailable" in warning and "Could not reach 127.0.0.1:9" in warning and "network" in warning
