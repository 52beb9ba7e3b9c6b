"""Team mode reaches the pages: sessions get the same storage choice as the follower, and create pacing is
counted in the database (one window for every server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lib.common.settings import load_settings
from lib.kie.client import KieClient
from lib.storage.sql import SqlLedger
from lib.tasks.leases import SharedRateLimiter
from lib.tasks.submit import RateLimiter
from lib.ui.context import AppContext, get_rate_limiter, storage_for


def test_pages_use_team_storage_and_a_shared_create_limiter(database_url: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLING_STUDIO_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("KLING_STUDIO_DATABASE_URL", database_url)
    settings = load_settings({}, None)
    storage = storage_for(settings)
    assert isinstance(storage.ledger, SqlLedger)
    ctx = AppContext(settings, KieClient("sandbox-demo", "http://127.0.0.1:9", "http://127.0.0.1:9"), None, storage)
    assert isinstance(get_rate_limiter(ctx), SharedRateLimiter)


def test_without_team_settings_pages_keep_the_data_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLING_STUDIO_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("KLING_STUDIO_DATABASE_URL", raising=False)
    monkeypatch.delenv("KLING_STUDIO_MEDIA_URL", raising=False)
    settings = load_settings({}, None)
    storage = storage_for(settings)
    assert not isinstance(storage.ledger, SqlLedger)
    ctx = AppContext(settings, KieClient("sandbox-demo", "http://127.0.0.1:9", "http://127.0.0.1:9"), None, storage)
    assert isinstance(get_rate_limiter(ctx), RateLimiter)
