"""Uploads to the sandbox's file host by stream, base64 and URL, with the typed result."""

from __future__ import annotations

import hashlib
import io
import re
from datetime import timedelta

import pytest
import requests
from PIL import Image

from lib.kie.client import KieClient
from lib.kie.errors import KieApiError, KieError
from lib.kie.uploads import (
    BASE64_MAX_BYTES,
    _MultipartStream,
    choose_method,
    clean_upload_path,
    content_digest,
    unique_upload_name,
    upload_file,
)


def png_bytes(w: int = 320, h: int = 320) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), (200, 40, 90)).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize("method", ["auto", "stream", "base64"])
def test_local_file_upload_returns_typed_result(client, method: str) -> None:
    data = png_bytes()
    up = upload_file(client, io.BytesIO(data), file_name="cat.png", upload_path="/elements/cat/", method=method)
    assert up.method == ("stream" if method == "auto" else method)
    assert up.size == len(data) and up.mime_type == "image/png"
    assert up.expires_at - up.uploaded_at == timedelta(days=3)
    assert "elements/cat" in up.file_path and up.download_url.startswith("http")
    assert client.session.get(up.download_url, timeout=5).content == data


def test_url_upload_of_a_hosted_file_and_refusal_of_a_foreign_one(client) -> None:
    first = upload_file(client, io.BytesIO(png_bytes()), file_name="a.png", upload_path="x")
    again = upload_file(client, first.download_url, file_name="b.png", upload_path="x")
    assert again.method == "url" and again.size == first.size
    with pytest.raises(KieApiError) as err:
        upload_file(client, "https://example.com/cat.png", file_name="c.png", upload_path="x")
    assert err.value.code == 400


def test_base64_refuses_over_10_mb_before_sending(client, sandbox) -> None:
    big = io.BytesIO(b"\0" * (BASE64_MAX_BYTES + 1))
    with pytest.raises(KieError, match="at most 10 MB"):
        upload_file(client, big, file_name="big.png", upload_path="x", method="base64")
    assert sandbox.backend.state()["files"] == 0


def test_upload_host_auth_failure_is_401(sandbox) -> None:
    sandbox.backend.configure(required_key="right")
    wrong = KieClient("wrong", sandbox.base_url, sandbox.base_url)
    with pytest.raises(KieApiError) as err:
        upload_file(wrong, io.BytesIO(png_bytes()), file_name="a.png", upload_path="x")
    assert err.value.code == 401


@pytest.mark.parametrize(("source", "method", "expected"), [
    ("https://x/y.png", "auto", "url"), (io.BytesIO(b"x"), "auto", "stream"), (io.BytesIO(b"x"), "base64", "base64"),
    (io.BytesIO(b"x"), "stream", "stream"), ("http://x/y.png", "url", "url"),
])
def test_method_choice(source, method: str, expected: str) -> None:
    assert choose_method(source, method) == expected


@pytest.mark.parametrize(("source", "method"), [("https://x/y", "stream"), (io.BytesIO(b"x"), "url")])
def test_impossible_method_is_refused_with_a_fix(source, method: str) -> None:
    with pytest.raises(KieError) as err:
        choose_method(source, method)
    assert "Choose" in err.value.fix


def test_non_http_url_is_refused(client) -> None:
    with pytest.raises(KieError, match="not an http"):
        upload_file(client, "file:///etc/passwd", file_name="p", upload_path="x")


@pytest.mark.parametrize(("raw", "clean"), [("/a/b/", "a/b"), ("a//b", "a/b"), ("", "kling-studio"), ("a b", "a-b")])
def test_upload_path_is_cleaned(raw: str, clean: str) -> None:
    assert clean_upload_path(raw) == clean


def test_multipart_stream_length_matches_its_bytes_and_reads_in_chunks() -> None:
    payload = b"a" * (600 * 1024)
    src = io.BytesIO(payload)
    body = _MultipartStream(src, 'we"ird.mp4', {"uploadPath": "p"})
    chunks = list(body)
    assert sum(map(len, chunks)) == body.length
    assert max(len(c) for c in chunks) <= 256 * 1024  # never the whole file in one piece
    assert b'filename="we_ird.mp4"' in chunks[0]


@pytest.mark.parametrize("size", [0, 1, 2, 3, 196_607, 196_608, 196_609, 700_001])
def test_base64_body_is_valid_json_of_exact_length_even_with_short_reads(size: int) -> None:
    import base64
    import json

    from lib.kie.uploads import _Base64JsonStream

    class ShortReads(io.BytesIO):
        def read(self, n: int = -1) -> bytes:  # like a socket: fewer bytes than asked
            return super().read(min(n, 1000) if n and n > 0 else n)

    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    body = _Base64JsonStream(ShortReads(data), size, "x.png", {"uploadPath": "p", "fileName": "x.png"})
    raw = b"".join(body)
    assert len(raw) == body.length
    parsed = json.loads(raw)
    assert base64.b64decode(parsed["base64Data"].split(",", 1)[1]) == data and parsed["uploadPath"] == "p"


@pytest.mark.parametrize(("size", "expected"), [("2048", 2048), (2048.0, 2048), ("about 2 KB", 0), (None, 0), ("NaN", 0)])
def test_odd_file_sizes_from_the_upload_host_never_raise(size, expected: int) -> None:
    from lib.kie.models import UploadedFile

    data = {"downloadUrl": "https://tempfile.example/a.png", "fileSize": size, "uploadedAt": "2026-03-01T10:00:00"}
    result = UploadedFile.from_json(data, "stream")
    assert result.size == expected
    assert result.uploaded_at.utcoffset() == timedelta(0) and result.uploaded_at.hour == 10  # naive means UTC


@pytest.mark.parametrize("url", ["https://exa mple.com/a.png", "https:///a.png", "https://:443/a.png"])
def test_malformed_web_addresses_are_refused_before_sending(client, sandbox, url: str) -> None:
    with pytest.raises(KieError, match="not an http"):
        upload_file(client, url, file_name="a.png", upload_path="x")
    assert sandbox.backend.state()["files"] == 0


class _CapturingSession(requests.Session):
    """A session that records the prepared request (headers as they go on the wire) and answers OK."""

    def send(self, request, **kwargs):
        self.sent = request
        body = b"".join(request.body) if not isinstance(request.body, bytes) else request.body
        self.body = body
        resp = requests.Response()
        resp.status_code, resp.url = 200, request.url
        resp._content = b'{"code":200,"msg":"ok","data":{"downloadUrl":"https://x/a.png","fileSize":3}}'
        return resp


@pytest.mark.parametrize("method", ["stream", "base64"])
def test_streamed_bodies_are_framed_by_content_length_only(method: str) -> None:
    # Both headers at once is a malformed request: proxies parse the raw body as chunked, or refuse it.
    session = _CapturingSession()
    client = KieClient("k", "https://api.example", "https://upload.example", session=session)
    upload_file(client, io.BytesIO(b"abc"), file_name="a.png", upload_path="x", method=method)
    headers = {k.lower(): v for k, v in session.sent.headers.items()}
    assert "transfer-encoding" not in headers
    assert int(headers["content-length"]) == len(session.body)


# ---------------------------------------------------------------- unique names (issue 15.1)

def test_unique_upload_name_shape() -> None:
    digest = content_digest(b"abc")
    assert digest == hashlib.sha256(b"abc").hexdigest()
    assert unique_upload_name("First Frame.PNG", digest, token="0badf00d") == f"{digest[:16]}-0badf00d.png"
    assert unique_upload_name("no-extension", digest, token="01234567") == f"{digest[:16]}-01234567"
    assert unique_upload_name("evil.p/h\\p", digest, token="01234567") == f"{digest[:16]}-01234567"
    names = {unique_upload_name("a.png", digest) for _ in range(200)}
    assert len(names) == 200 and all(re.fullmatch(r"[0-9a-f]{16}-[0-9a-f]{8}\.png", n) for n in names)


def test_content_digest_of_a_stream_restores_its_position() -> None:
    stream = io.BytesIO(b"headbody")
    stream.seek(4)
    assert content_digest(stream) == hashlib.sha256(b"body").hexdigest() and stream.tell() == 4
    assert content_digest("https://x.test/a.png") != content_digest(b"https://x.test/a.png")


@pytest.mark.parametrize("method", ["stream", "base64"])
def test_two_uploads_with_the_same_name_get_different_urls_and_the_first_still_serves(client, method) -> None:
    first_bytes, second_bytes = png_bytes(320, 320), png_bytes(400, 300)
    first = upload_file(client, io.BytesIO(first_bytes), file_name="first_frame.png",
                        upload_path="kling-studio/frames", method=method)
    second = upload_file(client, io.BytesIO(second_bytes), file_name="first_frame.png",
                         upload_path="kling-studio/frames", method=method)
    assert first.download_url != second.download_url
    assert first.original_name == second.original_name == "first_frame.png" and first.file_name != "first_frame.png"
    assert client.session.get(first.download_url, timeout=5).content == first_bytes
    assert client.session.get(second.download_url, timeout=5).content == second_bytes


def test_url_upload_gets_a_unique_name_too(client) -> None:
    source = upload_file(client, io.BytesIO(png_bytes()), file_name="a.png", upload_path="x")
    one = upload_file(client, source.download_url, file_name="a.png", upload_path="x")
    two = upload_file(client, source.download_url, file_name="a.png", upload_path="x")
    assert len({source.download_url, one.download_url, two.download_url}) == 3 and one.method == "url"


def test_liveness_checks_go_through_the_fetch_rule(sandbox, client) -> None:
    from lib.kie.uploads import is_upload_alive, liveness_checker, upload_file

    up = upload_file(client, io.BytesIO(png_bytes()), file_name="a.png", upload_path="t")
    url = str(up.download_url)
    assert is_upload_alive(requests.Session(), url)
    # the sandbox is on loopback: refused by the fetch rule unless its own origin is allowed
    assert liveness_checker()(url) is False
    assert liveness_checker((sandbox.base_url,))(url) is True
    assert liveness_checker((sandbox.base_url,))(url.replace("/files/", "/files/gone-")) is False
    assert liveness_checker((sandbox.base_url,))("http://169.254.169.254/latest/meta-data") is False
