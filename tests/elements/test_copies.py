"""URL-sourced element media get a local copy when the element is made (issue 16.13), under the fetch rule."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lib.elements.copies import url_fetcher
from lib.elements.library import ElementLibrary
from tests.elements.test_library import FakeUploader, image_bytes

T = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


class Files:
    """A loopback web server with a few files; records each request path."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - stdlib name
                outer.requests.append(self.path)
                body = files.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return self.origin + path


@pytest.fixture
def web() -> Iterator[Files]:
    server = Files({"/front.png": image_bytes(color="red"), "/side.png": image_bytes(color="blue"),
                    "/tiny.png": image_bytes((120, 120)), "/page.png": b"<html>not an image</html>",
                    "/big.png": b"\x89PNG" + b"\0" * (11 * 2**20)})
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture
def lib(tmp_path: Path) -> ElementLibrary:
    return ElementLibrary(tmp_path)


def test_urls_get_local_copies_that_are_reuploaded_as_files(lib: ElementLibrary, web: Files) -> None:
    fetch = url_fetcher(allow_private=(web.origin,))  # what sandbox mode allows: that one origin
    element = lib.create("cat", "a cat", urls=[web.url("/front.png"), web.url("/side.png")], now=T, fetch=fetch)
    assert [lib.local_file(m).read_bytes() for m in element.media] == [image_bytes(color="red"),
                                                                        image_bytes(color="blue")]
    assert [m.source_url for m in element.media] == [web.url("/front.png"), web.url("/side.png")]
    assert all(m.copy_note is None and m.width == 400 for m in element.media)
    uploader = FakeUploader()
    lib.upload(element.id, uploader, now=T)
    assert all(not isinstance(c["source"], str) for c in uploader.calls)  # sent from the copy, not by URL


@pytest.mark.parametrize(("path", "allowed", "why"), [
    ("/front.png", False, "private, loopback or link-local"),  # the fetch rule: not an allowed origin
    ("/missing.png", True, "answered HTTP 404"),
    ("/tiny.png", True, "at least 300×300 px"),
    ("/page.png", True, "not a readable"),
    ("/big.png", True, "over the 10 MB limit"),
])
def test_a_failed_copy_keeps_the_address_and_says_why(lib: ElementLibrary, web: Files, path: str, allowed: bool,
                                                      why: str) -> None:
    fetch = url_fetcher(allow_private=(web.origin,) if allowed else False)
    element = lib.create("cat", "a cat", urls=[web.url(path), web.url("/side.png")], now=T, fetch=fetch)
    first = element.media[-1] if allowed else element.media[0]
    assert first.source_url == web.url(path) and first.local_path is None
    assert first.copy_note.startswith("No local copy kept:") and why in first.copy_note
    assert lib.get(element.id) == element  # saved, as before 16.13, with its address
    if not allowed:
        assert web.requests == []  # refused before connecting


def test_nothing_is_fetched_for_an_element_that_is_refused(lib: ElementLibrary, web: Files) -> None:
    lib.create("cat", "a cat", urls=[web.url("/front.png"), web.url("/side.png")], now=T)
    with pytest.raises(Exception, match="already exists"):
        lib.create("Cat", "a cat", urls=[web.url("/front.png"), web.url("/side.png")], now=T,
                   fetch=url_fetcher(allow_private=True))
    assert web.requests == []


def test_a_library_json_from_before_local_copies_loads_unchanged(lib: ElementLibrary) -> None:
    record = {"id": "abc123", "name": "dog", "description": "a dog", "kind": "images", "created_at": "2026-01-01T00:00:00+00:00",
              "updated_at": "2026-01-01T00:00:00+00:00",
              "media": [{"file_name": f"d{i}.jpg", "local_path": None, "source_url": f"https://example.com/d{i}.jpg",
                         "kind": "image", "mime_type": None, "size": None, "width": None, "height": None,
                         "kie_url": None, "uploaded_at": None, "expires_at": None, "upload_error": None,
                         "upload_method": None} for i in (1, 2)]}
    lib.path.write_text(json.dumps({"version": 1, "elements": [record]}))
    dog = lib.by_name("dog")
    assert [m.source_url for m in dog.media] == ["https://example.com/d1.jpg", "https://example.com/d2.jpg"]
    assert all(m.copy_note is None and m.local_path is None for m in dog.media)


def test_urls_added_in_the_edit_form_get_local_copies_too(lib: ElementLibrary, web: Files) -> None:
    fetch = url_fetcher(allow_private=(web.origin,))
    element = lib.create("cat", "a cat", files=[("a.png", image_bytes(color="green"))],
                         urls=[web.url("/front.png")], now=T, fetch=fetch)
    edited = lib.update(element.id, add_urls=[web.url("/side.png")], now=T, fetch=fetch)
    added = edited.media[-1]
    assert added.source_url == web.url("/side.png") and added.copy_note is None
    assert lib.local_file(added).read_bytes() == image_bytes(color="blue")


def test_an_edit_without_a_fetcher_or_refused_fetches_nothing(lib: ElementLibrary, web: Files) -> None:
    element = lib.create("cat", "a cat", files=[("a.png", image_bytes()), ("b.png", image_bytes(color="blue"))],
                         now=T)
    edited = lib.update(element.id, add_urls=[web.url("/front.png")], now=T)  # as an import or the API would
    assert edited.media[-1].local_path is None
    with pytest.raises(Exception, match="not a valid web address|http"):
        lib.update(element.id, add_urls=["ftp://x"], now=T, fetch=url_fetcher(allow_private=True))
    assert web.requests == []
