"""Shared fixtures: a sandbox server, a client on it, a Streamlit app server and a headless Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("KLING_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(autouse=True)
def _no_real_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never use a real key from the developer's environment."""
    monkeypatch.delenv("KIE_API_KEY", raising=False)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[object]:
    """A fresh sandbox server on an ephemeral loopback port; progresses on each query."""
    from lib.sandbox.server import start_sandbox

    server = start_sandbox(port=0, data_dir=tmp_path / "sandbox", progress="immediate")
    yield server
    server.stop()


@pytest.fixture
def client(sandbox: object):
    """A KieClient pointed at the sandbox."""
    from lib.kie.client import KieClient

    return KieClient("test-key", sandbox.base_url, sandbox.base_url)


def follow_to_end(client, ledger, row, data_dir: Path, max_queries: int = 6) -> tuple[object, list[str]]:
    """Query a task until it finishes (the sandbox/double advance per query); returns the row and states seen."""
    from lib.storage.files import FileMedia
    from lib.tasks.follow import refresh_task

    states: list[str] = []
    for _ in range(max_queries):
        row, err = refresh_task(client, ledger, FileMedia(data_dir), row, allow_private=True)
        assert err is None, err
        states.append(row.state)
        if row.finished:
            break
    return row, states


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """`streamlit run streamlit_app.py` in a subprocess, with its own data folder."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.extra_env = env or {}
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> AppServer:
        env = {**os.environ, "KLING_STUDIO_DATA": str(self.data_dir), **self.extra_env}
        env.pop("KIE_API_KEY", None) if "KIE_API_KEY" not in self.extra_env else None
        log = open(self.data_dir.parent / f"streamlit-{self.port}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
             "--server.port", str(self.port), "--server.address", "127.0.0.1",
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(self.url + "/_stcore/health", timeout=1).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError("streamlit did not become healthy in 30 s")

    def stop(self, kill: bool = False) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill() if kill else self.proc.terminate()
            self.proc.wait(timeout=10)


@pytest.fixture
def app_server_factory(tmp_path: Path) -> Iterator[object]:
    """Make app servers (several may share a data folder, e.g. to test restarts)."""
    servers: list[AppServer] = []

    def make(data_dir: Path | None = None, env: dict[str, str] | None = None, port: int | None = None) -> AppServer:
        d = data_dir or tmp_path / "data"
        d.mkdir(parents=True, exist_ok=True)
        server = AppServer(d, env, port)
        servers.append(server)
        return server.start()

    yield make
    for s in servers:
        s.stop()


@pytest.fixture
def app_server(app_server_factory) -> AppServer:
    """A freshly started app in sandbox mode with an empty data folder."""
    return app_server_factory()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Debian's Chromium through Playwright. Skips locally when missing; fails in CI (KLING_REQUIRE_BROWSER=1)."""
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        if os.environ.get("KLING_REQUIRE_BROWSER"):
            pytest.fail(f"Chromium not found at {CHROMIUM}: browser tests are required in CI")
        pytest.skip("Chromium not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--autoplay-policy=no-user-gesture-required"])
        yield b
        b.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    """A new browser page (own context: own Streamlit session)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    p = context.new_page()
    p.set_default_timeout(30_000)
    yield p
    context.close()


def wait_for_app(page, timeout: float = 30_000) -> None:
    """Wait until Streamlit finished running the script (no 'Running…' widget, no skeletons)."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout)
    page.wait_for_function(
        """() => !document.querySelector('[data-testid="stStatusWidget"]')
               && !document.querySelector('[data-testid="stSkeleton"]')
               && document.querySelector('[data-testid="stMain"], section.main')""",
        timeout=timeout)
    page.wait_for_timeout(300)


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot under test-artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def shown_text(value: object) -> str:
    """What a markdown string displays: lib.trust.text.md escapes punctuation with backslashes (and puts an
    invisible word joiner where an autolink would start)."""
    import re

    return re.sub(r"\\(.)", r"\1", str(value)).replace("  \n", "\n").replace("\u2060", "")


def ws_messages(page, kind: str, pick) -> list:
    """What `pick` returns for each Streamlit message on the page's websocket from now on, None left out: kind
    "sent" reads the BackMsgs the browser sends, "received" the ForwardMsgs the server sends."""
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    proto = BackMsg if kind == "sent" else ForwardMsg
    seen: list = []

    def on_frame(payload: bytes | str) -> None:
        if isinstance(payload, bytes):
            try:
                msg = proto.FromString(payload)
            except Exception:  # noqa: BLE001 - not every frame is a whole message
                return
            if (item := pick(msg)) is not None:
                seen.append(item)

    page.on("websocket", lambda ws: ws.on(f"frame{kind}", on_frame))
    return seen


def _label_of(msg) -> str | None:
    if msg.WhichOneof("type") != "delta":
        return None
    if msg.delta.WhichOneof("type") == "new_element":
        element = msg.delta.new_element
        kind = element.WhichOneof("type")
        return getattr(getattr(element, kind), "label", "") or kind
    if msg.delta.WhichOneof("type") == "add_block" and msg.delta.add_block.HasField("expandable"):
        return msg.delta.add_block.expandable.label
    return None


def labels_sent(page) -> list[str]:
    """The label of every element and expander the server sends from now on (what a rerun drew again); an
    element without a label is named by its type."""
    return ws_messages(page, "received", _label_of)
