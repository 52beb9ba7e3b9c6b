"""Outbound requests the user did not intend: no file:, non-http(s), private or foreign fetches; capped, timed downloads."""

from __future__ import annotations

import io
import socket
import threading
import tomllib
from pathlib import Path

import pytest

from lib.elements.library import ElementLibrary
from lib.kie.client import KieClient
from lib.kie.errors import KieApiError, KieError
from lib.kie.uploads import upload_file
from lib.kling.media import check_image, check_video
from lib.tasks.archive import ArchiveError, archive_result
from tests.conftest import ROOT
from tests.reliability.conftest import PAYLOAD

PRIVATE = ["http://127.0.0.1/x.mp4", "http://localhost/x.mp4", "http://10.1.2.3/x.mp4", "http://192.168.0.9/x.mp4",
           "http://169.254.169.254/latest/meta-data", "http://[::1]/x.mp4", "http://[::ffff:127.0.0.1]/x.mp4",
           "http://0.0.0.0/x.mp4"]
NOT_HTTP = ["file:///etc/passwd", "ftp://example.com/x.mp4", "gopher://example.com/", "data:video/mp4;base64,AAAA",
            "javascript:alert(1)"]


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Record (and refuse) every outgoing socket connection made by this process."""
    attempts: list[object] = []

    def refuse(self, address):  # noqa: ANN001, ANN202
        attempts.append(address)
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    return attempts


@pytest.mark.parametrize("url", PRIVATE)
def test_live_archive_refuses_loopback_and_private_hosts(url: str, tmp_path: Path, no_network) -> None:
    with pytest.raises(ArchiveError, match="private, loopback or link-local"):
        archive_result(url, tmp_path, "t1", allowed_urls=[url], allow_private=False)
    assert no_network == [] and not list(tmp_path.iterdir())


@pytest.mark.parametrize("url", NOT_HTTP)
def test_archive_refuses_non_http_links_even_in_sandbox_mode(url: str, tmp_path: Path, no_network) -> None:
    with pytest.raises(ArchiveError, match="Only http"):
        archive_result(url, tmp_path, "t1", allowed_urls=[url], allow_private=True)
    assert no_network == []


def test_archive_fetches_only_urls_the_api_returned(tmp_path: Path, no_network) -> None:
    with pytest.raises(ArchiveError, match="not returned by KIE"):
        archive_result("https://cdn.example.com/other.mp4", tmp_path, "t1",
                       allowed_urls=["https://cdn.example.com/result.mp4"])
    assert no_network == []


def test_archive_size_cap_stops_the_download(client, sandbox, tmp_path: Path) -> None:
    record = client.get_task(client.create_task(PAYLOAD))
    url = record.result_urls[0]
    with pytest.raises(ArchiveError, match="limit"):
        archive_result(url, tmp_path, record.task_id, allowed_urls=record.result_urls, allow_private=True,
                       max_bytes=1024)
    assert not list(tmp_path.glob("*.mp4")) and not list(tmp_path.glob("*.part"))


def test_archive_times_out_on_a_host_that_never_answers(tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/slow.mp4"
    try:
        with pytest.raises(ArchiveError, match="timed out|stalled"):
            archive_result(url, tmp_path, "t1", allowed_urls=[url], allow_private=True, timeout=(1.0, 0.3))
    finally:
        for s in accepted:
            s.close()
        listener.close()


@pytest.mark.parametrize("url", NOT_HTTP)
def test_url_upload_refuses_non_http_before_any_request(url: str, no_network) -> None:
    client = KieClient("k", "https://api.kie.ai", "https://kieai.redpandaai.co")
    with pytest.raises(KieError, match="not an http"):
        upload_file(client, url, file_name="x.png", upload_path="p", method="url")
    assert no_network == []


@pytest.mark.parametrize("foreign", ["https://example.com/a.png", "http://127.0.0.1:9/files/kieai/x.png",
                                     "http://169.254.169.254/latest/meta-data"])
def test_the_sandbox_url_upload_never_fetches_a_foreign_host(foreign: str, client, sandbox, monkeypatch) -> None:
    import requests

    fetched: list[str] = []
    real = requests.Session.request

    def spy(self, method, url, *args, **kwargs):  # noqa: ANN001, ANN202
        fetched.append(url)
        return real(self, method, url, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", spy)
    with pytest.raises(KieApiError, match="Failed to download"):
        upload_file(client, foreign, file_name="a.png", upload_path="p", method="url")
    assert all(u.startswith(sandbox.base_url) for u in fetched)  # only the upload call itself went out


def test_imported_element_urls_are_never_fetched(tmp_path: Path, no_network) -> None:
    library = ElementLibrary(tmp_path)
    library.create("dog", "a dog", urls=["https://cdn.example.com/a.png", "http://10.0.0.1/b.png"])  # no fetcher
    library.import_json('[{"name": "cat", "description": "c", "element_input_urls": '
                        '["https://cdn.example.com/c.png", "http://169.254.169.254/d.png"]}]')
    assert {e.name for e in library.list()} == {"dog", "cat"}
    assert no_network == []  # stored as sources for KIE's URL upload; this server fetched nothing


def test_the_elements_form_fetcher_never_connects_to_a_private_address(tmp_path: Path, no_network) -> None:
    """The Elements form keeps local copies of URL media (issue 16.13) through the one fetch rule: a private,
    loopback or link-local address is refused before any connection, and the element keeps only its address."""
    from lib.elements.copies import url_fetcher

    library = ElementLibrary(tmp_path)
    element = library.create("dog", "a dog", urls=["http://10.0.0.1/b.png", "http://169.254.169.254/d.png"],
                             fetch=url_fetcher(allow_private=False))
    assert no_network == []
    assert all(media.local_path is None and media.copy_note for media in element.media)


class CountingFile(io.RawIOBase):
    """A seekable file wrapper that counts the bytes actually read."""

    def __init__(self, handle) -> None:  # noqa: ANN001
        self.handle, self.read_bytes = handle, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # noqa: ANN001
        data = self.handle.read(len(buffer))
        buffer[: len(data)] = data
        self.read_bytes += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.handle.seek(offset, whence)

    def tell(self) -> int:
        return self.handle.tell()


@pytest.mark.parametrize(("check", "head", "size"), [
    (check_video, b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isommp41", 55 * 2**20),
    (check_image, b"\x89PNG\r\n\x1a\n" + b"\x00" * 24, 12 * 2**20),
])
def test_oversized_media_is_refused_from_its_header_not_read_whole(check, head: bytes, size: int, tmp_path) -> None:
    path = tmp_path / "big"
    with path.open("w+b") as handle:
        handle.write(head)
        handle.truncate(size)
        handle.seek(0)
        counted = CountingFile(handle)
        result = check("big", counted)
    assert not result.ok and any("at most" in p for p in result.problems)
    assert counted.read_bytes < 256 * 1024  # a header and a tail, never the whole file


def test_streamlit_upload_cap_is_set() -> None:
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == 60  # MB: a 50 MB video plus multipart overhead, no more
