"""A data folder written by an earlier version (commit 22cee96, schema 1, 28 columns) keeps loading unchanged."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lib.compose.drafts import DraftStore
from lib.elements.library import ElementLibrary
from lib.history.ledger import Ledger
from lib.sandbox.server import start_sandbox
from lib.storage.files import FileMedia

FIXTURE = Path(__file__).parent / "fixtures" / "data_v1"
APP = str(Path(__file__).resolve().parents[1] / "home.py")


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.name.endswith(".lock")}


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "data"
    shutil.copytree(FIXTURE, folder)
    monkeypatch.setenv("KLING_STUDIO_DATA", str(folder))
    return folder


def test_the_old_ledger_library_drafts_and_videos_load(data: Path) -> None:
    header = (data / "history.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    assert len(header) == 28 and "imported_at" not in header  # written before the optional column existed
    rows = Ledger.in_dir(data).rows()
    assert [r.state for r in rows] == ["succeeded", "succeeded", "queued"]
    assert rows[0].rating == 4 and rows[0].notes == "the keeper" and rows[0].elements == ("fox",)
    assert rows[1].multi_shots and [s["duration"] for s in rows[1].shots] == [3, 3]
    # the old rows name absolute paths of the machine that wrote them; videos are found by task id instead
    assert all(FileMedia(data).video(r.task_id) is not None for r in rows[:2])
    (fox,) = ElementLibrary(data).list()
    assert fox.name == "fox" and len(fox.media) == 2
    assert all(ElementLibrary(data).local_file(m) is not None for m in fox.media)
    assert DraftStore(data).names() == ["dusk fox"]
    sandbox = start_sandbox(data_dir=data / "sandbox")
    try:
        assert sandbox.backend.tasks  # its tasks survive, as they did before
    finally:
        sandbox.stop()


@pytest.mark.parametrize("page", [None, "pages/1_Elements.py", "pages/2_Compose.py", "pages/3_History.py"])
def test_every_page_opens_the_old_folder_and_changes_nothing(data: Path, page: str | None) -> None:
    before = {k: v for k, v in digest(data).items() if not k.startswith("sandbox/")}
    at = AppTest.from_file(APP, default_timeout=60).run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    after = {k: v for k, v in digest(data).items() if not k.startswith("sandbox/")}
    changed = {k for k in before if before[k] != after.get(k)}
    # opening pages writes nothing; only the follower may record a status check of the queued row
    assert changed <= {"history.csv"}, changed
