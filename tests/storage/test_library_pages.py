"""The Elements page of a team server shows an element another server made, thumbnails from the bucket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from lib.storage import sql
from lib.storage.open import CACHE_FOLDER, StorageChoice, build_storage
from tests.conftest import shown_text
from tests.elements.test_library import pngs

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def team_env(tmp_path: Path, database_url: str, s3_env, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Server B's settings for the page; returns the bucket URL server A uses too."""
    media = f"s3://{s3_env.new_bucket()}/team"
    for name, value in {"KLING_STUDIO_DATA": str(tmp_path / "b"), "KLING_STUDIO_DATABASE_URL": database_url,
                        "KLING_STUDIO_MEDIA_URL": media}.items():
        monkeypatch.setenv(name, value)
    yield media
    from lib.common.settings import load_settings
    from lib.ui.context import get_sandbox

    if (tmp_path / "b" / "sandbox").exists():
        get_sandbox(load_settings({}, None)).stop()
    st.cache_resource.clear()
    engine = sql._engines.pop(sql.engine_url(database_url), None)
    if engine is not None:
        engine.dispose()


def test_an_element_made_on_server_a_shows_on_server_b_with_thumbnails(team_env: str, tmp_path: Path,
                                                                       database_url: str) -> None:
    server_a = build_storage(StorageChoice(tmp_path / "a", database_url, team_env)).library
    server_a.create("fox", "a red fox", pngs(2))
    at = AppTest.from_file(str(ROOT / "home.py"), default_timeout=60).run()
    at.switch_page("pages/1_Elements.py").run()
    assert not at.exception, at.exception
    assert any("fox" in shown_text(m.value) for m in at.markdown)
    [thumbnails] = at.get("image")
    assert [shown_text(img.caption) for img in thumbnails.proto.imgs] == ["cat0.png", "cat1.png"]
    cached = {p.name for p in (tmp_path / "b" / CACHE_FOLDER).rglob("*.png")}
    assert cached == {"cat0.png", "cat1.png"}  # B keeps them only in its deletable cache
    assert not (tmp_path / "b" / "elements" / "files").exists()
