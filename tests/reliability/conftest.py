"""Shared helpers for the reliability suite: a wire log of sandbox API calls, recorded retry sleeps, seeded data."""

from __future__ import annotations

import io
import socket
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

PAYLOAD = {"model": "kling-3.0/video",
           "input": {"prompt": "A lighthouse at dusk, slow dolly in", "duration": "3", "mode": "std",
                     "sound": False, "multi_shots": False, "aspect_ratio": "1:1"}}


def png_bytes(width: int = 320, height: int = 320, color: str = "teal") -> bytes:
    """A real PNG of the given size."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def closed_port() -> int:
    """A loopback port with nothing listening (the socket is closed again)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` (lock files aside) with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.endswith(".lock")}


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Every /api/ request the sandbox receives, as (method, path), in order (retries included)."""
    from lib.sandbox.server import SandboxHandler

    calls: list[tuple[str, str]] = []
    original = SandboxHandler._api

    def record(self, method, path, query):  # noqa: ANN001 - stdlib handler signature
        calls.append((method, path))
        return original(self, method, path, query)

    monkeypatch.setattr(SandboxHandler, "_api", record)
    return calls


@pytest.fixture
def retry_sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """urllib3's retry pauses, recorded instead of slept (tests never sleep)."""
    import time

    import urllib3.util.retry as retry_module

    sleeps: list[float] = []
    monkeypatch.setattr(retry_module, "time", types.SimpleNamespace(sleep=sleeps.append, time=time.time))
    return sleeps


@pytest.fixture
def seeded_data(tmp_path: Path) -> Iterator[Path]:
    """A data folder with two ledger rows and one element: what bad input must never change."""
    from lib.elements.library import ElementLibrary
    from lib.history.ledger import Ledger
    from lib.history.row import HistoryRow

    data = tmp_path / "seeded"
    ledger = Ledger.in_dir(data)
    for n in (1, 2):
        ledger.append(HistoryRow.from_payload(f"task_seed_{n}", PAYLOAD, origin="sandbox", batch_id="b-seed"))
    ledger.close()
    ElementLibrary(data).create("cat", "a ginger cat", files=[("a.png", png_bytes()), ("b.png", png_bytes())])
    yield data
