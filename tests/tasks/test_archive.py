"""Tests for lib.tasks.archive: saving result videos from a local HTTP server, with caps and refusals."""

from __future__ import annotations

import io
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from lib.tasks.archive import ArchiveError, archive_result, archived_path, safe_task_id
from lib.trust import fetch as trust_fetch
from lib.trust.fetch import FetchRefused, check_public_host

MP4 = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(range(256)) * 40
CAP = 64 * 1024


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    routes: dict[str, tuple[int, dict[str, str], bytes]] = {
        "/ok.mp4": (200, {}, MP4),
        "/declared-big": (200, {"Content-Length": str(CAP * 10)}, b""),
        "/html": (200, {}, b"<html>Link expired</html>"),
        "/empty": (200, {}, b""),
        "/gone": (404, {}, b"not found"),
        "/redirect": (302, {"Location": "/ok.mp4"}, b""),
        "/redirect-file": (302, {"Location": "file:///etc/passwd"}, b""),
        "/loop": (302, {"Location": "/loop"}, b""),
    }
    release = threading.Event()
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.hits.append(self.path)
        if self.path == "/endless":  # no Content-Length: only the streaming cap can stop it
            self.send_response(200)
            self.end_headers()
            for _ in range(CAP // 1024 * 3):
                self.wfile.write(MP4[:1024])
            return
        if self.path == "/stall":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(MP4[:100])
            self.wfile.flush()
            self.release.wait(10)
            return
        status, headers, body = self.routes.get(self.path, (404, {}, b""))
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        _Handler.release.set()
        httpd.shutdown()
        httpd.server_close()


def fetch(url: str, dest: Path, task_id: str = "task1", **options: object) -> Path:
    options.setdefault("allow_private", True)
    options.setdefault("max_bytes", CAP)
    return archive_result(url, dest, task_id, allowed_urls={url}, **options)  # type: ignore[arg-type]


def test_downloads_atomically_into_the_videos_folder(server: str, tmp_path: Path) -> None:
    path = fetch(f"{server}/ok.mp4", tmp_path / "videos")
    assert path == tmp_path / "videos" / "task1.mp4" and path.read_bytes() == MP4
    assert [p.name for p in path.parent.iterdir()] == ["task1.mp4"]  # no temp file left
    again = fetch(f"{server}/ok.mp4", tmp_path / "videos", session=requests.Session())
    assert again == path and path.read_bytes() == MP4


def test_follows_a_redirect(server: str, tmp_path: Path) -> None:
    assert fetch(f"{server}/redirect", tmp_path).read_bytes() == MP4


@pytest.mark.parametrize(
    ("route", "message"),
    [
        ("/declared-big", "The video is 640 KB, over the 64 KB limit; not downloaded"),
        ("/endless", "larger than the 64 KB limit; download stopped"),
        ("/html", "not an MP4"),
        ("/empty", "empty file"),
        ("/gone", "HTTP 404. The link has probably expired"),
        ("/redirect-file", "Only http(s)"),
        ("/loop", "redirected more than"),
    ],
)
def test_refuses_bad_downloads_and_leaves_no_file(server: str, tmp_path: Path, route: str, message: str) -> None:
    with pytest.raises(ArchiveError, match=message.replace("(", r"\(").replace(")", r"\)")):
        fetch(f"{server}{route}", tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_stalled_download_times_out(server: str, tmp_path: Path) -> None:
    with pytest.raises(ArchiveError, match="stalled|timed out"):
        fetch(f"{server}/stall", tmp_path, timeout=(2, 0.2))
    assert list(tmp_path.iterdir()) == []


def test_overall_deadline_stops_a_trickle(server: str, tmp_path: Path) -> None:
    ticks = iter(range(0, 10_000, 1000))  # the first chunk arrives "1000 s" after the start
    with pytest.raises(ArchiveError, match="took too long"):
        fetch(f"{server}/ok.mp4", tmp_path, max_seconds=600, clock=lambda: next(ticks))


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "javascript:alert(1)", "ftp://example.com/v.mp4", "data:video/mp4;base64,AAAA", "//x/v.mp4"],
)
def test_refuses_non_http_urls_even_when_allowed(tmp_path: Path, url: str) -> None:
    with pytest.raises(ArchiveError, match="Only http"):
        archive_result(url, tmp_path, "t", allowed_urls={url}, allow_private=True)


def test_refuses_a_url_kie_did_not_return(server: str, tmp_path: Path) -> None:
    _Handler.hits.clear()
    with pytest.raises(ArchiveError, match="not returned by KIE for task t7"):
        archive_result(f"{server}/ok.mp4", tmp_path, "t7", allowed_urls={f"{server}/other.mp4"}, allow_private=True)
    assert _Handler.hits == []


def test_live_mode_refuses_the_loopback_server_without_contacting_it(server: str, tmp_path: Path) -> None:
    _Handler.hits.clear()
    with pytest.raises(ArchiveError, match="private, loopback or link-local"):
        fetch(f"{server}/ok.mp4", tmp_path, allow_private=False)
    assert _Handler.hits == []


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("127.0.0.1", False), ("10.1.2.3", False), ("172.16.0.5", False), ("192.168.1.1", False),
        ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False), ("224.0.0.1", False),
        ("::1", False), ("fe80::1%eth0", False), ("fc00::1", False), ("::ffff:127.0.0.1", False),
        ("93.184.216.34", True), ("2606:2800:220:1:248:1893:25c8:1946", True),
    ],
)
def test_check_public_host(monkeypatch: pytest.MonkeyPatch, address: str, allowed: bool) -> None:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET

    def fake_getaddrinfo(host: str, port: object, *args: object, **kwargs: object) -> list[tuple[object, ...]]:
        return [(family, socket.SOCK_STREAM, 6, "", (address, 443))]

    monkeypatch.setattr(trust_fetch.socket, "getaddrinfo", fake_getaddrinfo)
    if allowed:
        check_public_host("cdn.example")
    else:
        with pytest.raises(FetchRefused, match="Refusing"):
            check_public_host("cdn.example")


def test_unresolvable_host_is_a_plain_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(trust_fetch.socket, "getaddrinfo", fail)
    with pytest.raises(FetchRefused, match="Cannot find the host"):
        check_public_host("nowhere.invalid")


class _Redirecting:
    """A session whose public CDN redirects to the cloud metadata address."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def get(self, url: str, **kwargs: object) -> requests.Response:
        self.urls.append(url)
        response = requests.Response()
        response.status_code = 302
        response.raw = io.BytesIO(b"")
        response.headers["Location"] = "http://169.254.169.254/latest/meta-data"
        return response


def test_live_mode_checks_every_redirect_hop(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def resolve(host: str, port: object, *args: object, **kwargs: object) -> list[tuple[object, ...]]:
        ip = "93.184.216.34" if host == "cdn.example" else host
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, 443))]

    monkeypatch.setattr(trust_fetch.socket, "getaddrinfo", resolve)
    session = _Redirecting()
    url = "https://cdn.example/v.mp4"
    with pytest.raises(ArchiveError, match="169.254.169.254"):
        archive_result(url, tmp_path, "t", allowed_urls=[url], session=session)  # type: ignore[arg-type]
    assert session.urls == [url]


@pytest.mark.parametrize("task_id", ["../../etc/passwd", "a/b", "..", ".hidden", "x\x00y", "C:\\evil", "ok-ID_1"])
def test_task_ids_cannot_escape_the_folder(tmp_path: Path, task_id: str) -> None:
    path = archived_path(tmp_path, task_id)
    assert path.parent == tmp_path and path.suffix == ".mp4" and not path.name.startswith(".")
    assert (safe_task_id(task_id) == task_id) == (task_id == "ok-ID_1")


def test_distinct_ids_get_distinct_files(tmp_path: Path) -> None:
    assert archived_path(tmp_path, "a/b") != archived_path(tmp_path, "a_b")
    with pytest.raises(ArchiveError, match="empty"):
        safe_task_id("  ")
