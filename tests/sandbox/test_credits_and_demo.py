"""Play money (reset, default) and "Load demo project", through the lib and through the sidebar (AppTest)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from lib.kie.client import KieClient
from lib.kie.uploads import upload_file
from lib.sandbox.backend import DEFAULT_CREDITS, SandboxBackend
from lib.sandbox.demo import DEMO_BATCH, DEMO_DRAFT, DEMO_ELEMENTS, load_demo_project
from lib.sandbox.server import start_sandbox
from lib.storage.files import open_file_storage

HOME = str(Path(__file__).resolve().parents[2] / "home.py")


def test_the_default_play_money_lasts_a_long_demo() -> None:
    assert DEFAULT_CREDITS == Decimal("10000.00")


def test_reset_credits_refills_the_starting_balance_and_keeps_tasks(tmp_path: Path) -> None:
    backend = SandboxBackend(tmp_path, credits=Decimal("500"), progress="immediate")
    task = backend.create_task({"model": "kling-3.0/video", "input": {
        "prompt": "a fox", "duration": "5", "mode": "std", "sound": False, "multi_shots": False}})
    assert backend.balance() == Decimal("430.00")
    assert backend.reset_credits() == Decimal("500.00") == backend.balance()
    assert task["taskId"] in backend.tasks
    assert SandboxBackend(tmp_path).balance() == Decimal("500.00"), "the refill is persisted"


@pytest.fixture
def demo_env(tmp_path: Path):
    server = start_sandbox(data_dir=tmp_path / "sandbox", progress="wall", seconds=600)
    client = KieClient("sandbox-demo", server.base_url, server.base_url)
    storage = open_file_storage(tmp_path / "data")

    def uploader(source, file_name, upload_path, method="auto"):
        return upload_file(client, source, file_name=file_name, upload_path=upload_path, method=method)

    yield server, client, storage, uploader
    server.stop()


def first_frame(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24")


def test_load_demo_project_fills_library_draft_and_a_finished_grid_once(demo_env) -> None:
    server, client, storage, uploader = demo_env
    report = load_demo_project(storage, client, uploader, server.backend, allow_private=True)
    assert report.messages == []
    assert sorted(report.elements) == sorted(name for name, _, _ in DEMO_ELEMENTS)
    assert DEMO_DRAFT in storage.drafts.names() and storage.drafts.load(DEMO_DRAFT)["compose_multi"] is True
    rows = [row for row in storage.ledger.rows() if row.batch_id == DEMO_BATCH]
    assert len(rows) == 4 and all(row.state == "succeeded" for row in rows)
    assert server.backend.config.progress == "wall", "the demo's immediate progress is undone"
    videos = [storage.media.video(row.task_id) for row in rows]
    assert all(videos) and report.archived == 4
    firsts = [first_frame(v).astype(int) for v in videos]
    sizes = {f.shape[:2] for f in firsts}
    assert sizes == {(720, 1280), (1080, 1920)}, "std and pro variants at their own resolution"
    small = [np.asarray(Image.fromarray(f.astype(np.uint8)).resize((320, 180))).astype(int)
             for f in firsts]
    assert all(np.abs(small[i] - small[j]).mean() > 0.2 for i in range(4) for j in range(i + 1, 4))
    fox = DEMO_ELEMENTS[0][2]
    share = np.all(np.abs(firsts[0] - fox) <= 40, axis=-1).mean()
    assert share > 0.01, "the @demo_fox card shows in the grid's videos"
    with av.open(str(videos[0])) as container:
        assert container.duration / 1_000_000 == pytest.approx(5.0, abs=0.1)

    before = (len(storage.library.list()), storage.drafts.names(), len(storage.ledger.rows()), server.backend.balance())
    again = load_demo_project(storage, client, uploader, server.backend, allow_private=True)
    assert (again.elements, again.draft, again.tasks, again.archived) == ([], "", [], 0)
    after = (len(storage.library.list()), storage.drafts.names(), len(storage.ledger.rows()), server.backend.balance())
    assert after == before and "already loaded" in again.summary()


def _sandbox_app(monkeypatch: pytest.MonkeyPatch, data: Path) -> AppTest:
    monkeypatch.setenv("KLING_STUDIO_DATA", str(data))
    return AppTest.from_file(HOME, default_timeout=90).run()


def test_sidebar_reset_button_refills_and_refreshes_the_balance(monkeypatch, tmp_path) -> None:
    from lib.sandbox.shared import shared_sandbox

    at = _sandbox_app(monkeypatch, tmp_path / "data")
    backend = shared_sandbox(tmp_path / "data").backend
    backend.configure(credits="12.00")
    at.sidebar.button(key="settings_refresh_balance").click().run()
    assert at.sidebar.metric[0].value == "12.00 credits"
    at.sidebar.button(key="settings_reset_credits").click().run()
    assert not at.exception, at.exception
    assert at.sidebar.metric[0].value == f"{DEFAULT_CREDITS:,.2f} credits"


def test_sidebar_loads_the_demo_project(monkeypatch, tmp_path) -> None:
    at = _sandbox_app(monkeypatch, tmp_path / "data")
    at.sidebar.button(key="settings_load_demo").click().run()
    assert not at.exception, at.exception
    assert any("Demo project loaded" in c.value for c in at.sidebar.caption)
    storage = open_file_storage(tmp_path / "data")
    assert len([r for r in storage.ledger.rows() if r.batch_id == DEMO_BATCH]) == 4


def test_live_mode_has_no_sandbox_controls(monkeypatch, tmp_path, sandbox) -> None:
    for name, value in {"KIE_API_KEY": "live-key-123", "KIE_API_BASE": sandbox.base_url,
                        "KIE_UPLOAD_BASE": sandbox.base_url}.items():
        monkeypatch.setenv(name, value)
    at = _sandbox_app(monkeypatch, tmp_path / "data")
    keys = {button.key for button in at.sidebar.button}
    assert "settings_reset_credits" not in keys and "settings_load_demo" not in keys
