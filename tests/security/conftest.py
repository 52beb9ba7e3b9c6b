"""Shared pieces of the security suite: a recording listener on 127.0.0.1, hostile inputs, a bomb PNG, a
scanner for markdown reaching the page, and a snapshot of what lies outside the data folder."""

from __future__ import annotations

import functools
import io
import re
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lib.history.row import HistoryRow
from lib.history.transfer import export_csv

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "home.py")
NOW = datetime.now(UTC).replace(microsecond=0)


class Listener:
    """A tiny HTTP server on 127.0.0.1 that records every request it receives (and can redirect)."""

    def __init__(self, redirect_to: str | None = None) -> None:
        self.requests: list[str] = []
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - stdlib name
                listener.requests.append(self.path)
                if redirect_to:
                    self.send_response(302)
                    self.send_header("Location", redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                body = b"\x89PNG\r\n\x1a\nLISTENER-SECRET"
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_HEAD = do_GET  # noqa: N815

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.stop()


def attacks(port: int) -> list[str]:
    """The markdown/HTML payloads every text field is tried with (the image ones aim at the listener)."""
    return [f"![x](http://127.0.0.1:{port}/img.png)", f"<img src=http://127.0.0.1:{port}/h.png>",
            "[click](javascript:alert(1))", "# Heading", "www.127.0.0.1.nip.io"]


def hostile(port: int, tag: str = "") -> str:
    """Every attack in one string, on separate lines (a heading needs its own line)."""
    return f"{tag} " + "\n".join(attacks(port))


# What must never reach the page unescaped: an image, HTML, a javascript: link, a heading from data, an autolink.
_RAW = [re.compile(p) for p in (r"(?<!\\)!(?<!\\)\[x", r"(?<!\\)<img", r"(?<!\\)\]\(javascript", r"(?<![\\\w])# Heading",
                                r"(?<!\\)www\.127")]
_SKIP = {"json", "code", "text", "arrow_data_frame", "arrow_table", "data_frame"}  # drawn as plain text
_MARKDOWN_FIELDS = ("body", "label", "help", "caption")


def _strings(message: Any, out: list[str]) -> None:
    for descriptor, value in message.ListFields():
        if descriptor.message_type is not None:
            for item in [value] if hasattr(value, "ListFields") else value:  # one message or a repeated field
                if hasattr(item, "ListFields"):  # (map fields yield keys; their values are plain data)
                    _strings(item, out)
        elif descriptor.name in _MARKDOWN_FIELDS and isinstance(value, str):
            out.append(value)


def rendered_markdown(at: Any) -> list[str]:
    """Every string of an AppTest page that Streamlit renders as markdown: bodies, labels, help and captions
    of every element and block (plain-text elements such as json, code and dataframes skipped)."""
    out: list[str] = []

    def walk(node: Any) -> None:
        if getattr(node, "type", None) in _SKIP:
            return
        proto = getattr(node, "proto", None)
        if proto is not None and hasattr(proto, "ListFields"):
            _strings(proto, out)
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return out


def raw_markdown(at: Any) -> list[str]:
    """The markdown strings that carry an attack unescaped (should be empty)."""
    return [s for s in rendered_markdown(at) if any(p.search(s) for p in _RAW)]


def run(prompt: str = "A quiet harbour at dawn", *, task_id: str = "sec-task-1", minutes: int = 5,
        state: str = "succeeded", **fields: Any) -> HistoryRow:
    """A sandbox history row with a real-looking payload."""
    payload = {"model": "kling-3.0/video",
               "input": {"prompt": prompt, "mode": "std", "sound": False, "duration": "5", "aspect_ratio": "16:9",
                         "multi_shots": False}}
    base = HistoryRow.from_payload(task_id, payload, origin="sandbox", state=state,
                                   created_at=NOW - timedelta(minutes=minutes), estimated_credits=50)
    return replace(base, **fields)


def edited_csv(rows: list[HistoryRow], edits: dict[str, dict[str, str]]) -> bytes:
    """An export of `rows` (lib.history_io.export_csv) with cells replaced: edits[task_id][column] = text."""
    import csv

    text = export_csv(rows).decode("utf-8-sig")
    records = list(csv.reader(io.StringIO(text, newline="")))
    header = records[0]
    for record in records[1:]:
        for column, value in edits.get(record[header.index("task_id")], {}).items():
            record[header.index(column)] = value
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n").writerows(records)
    return out.getvalue().encode("utf-8")


@functools.lru_cache(maxsize=1)
def bomb_png() -> bytes:
    """A 13,000 × 13,000 1-bit PNG (169 megapixels) of a few tens of KB: a decompression bomb."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("1", (13_000, 13_000)).save(out, "PNG", optimize=False)
    data = out.getvalue()
    assert len(data) < 1_000_000
    return data


def png_bytes(side: int = 320, color: str = "teal") -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (side, side), color).save(out, "PNG")
    return out.getvalue()


def nested_json(depth: int = 10_000) -> str:
    return "[" * depth + "]" * depth


def outside_listing(data_dir: Path, *also_inside: Path) -> set[str]:
    """Every path under the data folder's parent that is not inside the data folder, plus the repository's and
    its parent's top level: where a traversal would land. Compared before and after an attack.
    `also_inside`: other folders the app owns (a test's own sandbox folder)."""
    parent = data_dir.parent
    found = {str(p) for p in parent.rglob("*") if not any(p.is_relative_to(d) for d in (data_dir, *also_inside))}
    found |= {str(p) for p in ROOT.iterdir()} | {str(p) for p in ROOT.parent.iterdir()}
    return {p for p in found if not p.endswith(".log") and "test-artifacts" not in p and "__pycache__" not in p
            and ".pytest_cache" not in p and ".ruff_cache" not in p and not _browser_temp(Path(p).name)}


def _browser_temp(name: str) -> bool:
    """The test browser's own scratch folders (Chromium's and Playwright's), which it makes and removes on its own
    clock: beside a checkout in /tmp they come and go during a test without the app touching anything."""
    return name.startswith((".org.chromium.", "playwright-artifacts-", "playwright_chromiumdev_profile-"))


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data folder for AppTest pages (KLING_STUDIO_DATA points at it)."""
    folder = tmp_path / "data"
    (folder / "videos").mkdir(parents=True)
    monkeypatch.setenv("KLING_STUDIO_DATA", str(folder))
    return folder
