"""The sandbox keeps its address across restarts, so URLs stored before a restart keep working after it."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import requests

from lib.kie.client import KieClient
from lib.kie.uploads import upload_file
from lib.sandbox import shared


def _restart(data: Path) -> None:
    """What a server restart does to the process registry: the old sandbox is gone."""
    key = str((data / "sandbox").resolve())
    shared._running.pop(key).stop()


def test_a_restarted_sandbox_comes_back_on_its_port_and_serves_old_uploads(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KLING_SANDBOX_PORT", raising=False)
    first = shared.shared_sandbox(tmp_path)
    client = KieClient("sandbox-demo", first.base_url, first.base_url)
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    url = upload_file(client, io.BytesIO(png), file_name="frame.png", upload_path="kling-studio/frames").download_url
    assert (tmp_path / "sandbox" / "port").read_text() == first.base_url.rsplit(":", 1)[1]
    _restart(tmp_path)
    second = shared.shared_sandbox(tmp_path)
    try:
        assert second.base_url == first.base_url  # the same address: stored URLs stay valid
        assert requests.get(url, timeout=5).content == png
    finally:
        _restart(tmp_path)


def test_a_taken_port_falls_back_to_a_new_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    monkeypatch.delenv("KLING_SANDBOX_PORT", raising=False)
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    (tmp_path / "sandbox").mkdir()
    (tmp_path / "sandbox" / "port").write_text(str(blocker.getsockname()[1]))
    try:
        server = shared.shared_sandbox(tmp_path)
        assert server.base_url.rsplit(":", 1)[1] != str(blocker.getsockname()[1])
        _restart(tmp_path)
    finally:
        blocker.close()
