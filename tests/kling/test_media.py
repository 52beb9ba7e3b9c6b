"""Local file checks on files the tests generate: content decides, headers only are read."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from lib.kling import rules
from lib.kling.media import check_image, check_media, check_video, jpeg_data_uri, sniff_format, thumbnail_jpeg
from tests.media_helpers import CountingReader

MIB = 1024 * 1024


def image_bytes(width: int, height: int, fmt: str = "PNG", noise: bool = False) -> bytes:
    if noise:
        image = Image.frombytes("RGB", (width, height), np.random.default_rng(1).bytes(width * height * 3))
    else:
        image = Image.new("RGB", (width, height), (200, 90, 30))
    buffer = io.BytesIO()
    image.save(buffer, fmt)
    return buffer.getvalue()


def png_of_size(total: int) -> bytes:
    """A valid 300×300 PNG padded to exactly `total` bytes with a private chunk after the pixels."""
    png = image_bytes(300, 300)
    body, iend = png[:-12], png[-12:]
    data = b"\0" * (total - len(png) - 12)
    chunk = struct.pack(">I", len(data)) + b"prVt" + data + struct.pack(">I", zlib.crc32(b"prVt" + data))
    return body + chunk + iend


def video_bytes(container: str) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as output:
        stream = output.add_stream("mpeg4", rate=8)
        stream.width, stream.height = 64, 64
        for _ in range(4):
            frame = av.VideoFrame.from_ndarray(np.zeros((64, 64, 3), np.uint8), format="rgb24")
            output.mux(stream.encode(frame))
        output.mux(stream.encode())
    return buffer.getvalue()


def check(fn, name, data):
    reader = CountingReader(io.BytesIO(data))
    result = fn(name, reader)
    assert reader.tell() == 0  # rewound for the uploader
    return result, reader.bytes_read


@pytest.mark.parametrize(
    ("name", "data", "ok", "message"),
    [
        ("ok.png", image_bytes(300, 300), True, None),
        ("ok.jpg", image_bytes(300, 400, "JPEG"), True, None),
        ("cat.png", image_bytes(299, 300), False, "cat.png is 299×300 px; elements need at least 300×300"),
        ("tall.png", image_bytes(300, 299), False, "tall.png is 300×299 px"),
        ("anim.png", image_bytes(300, 300, "GIF"), False, "anim.png is a GIF, not a JPG or PNG: save it as PNG or JPG"),
        ("pic.jpg", image_bytes(300, 300, "WEBP"), False, "pic.jpg is a WEBP, not a JPG or PNG"),
        ("pic.png", image_bytes(300, 300, "BMP"), False, "pic.png is a BMP"),
        ("cat.jpg", image_bytes(400, 400, "JPEG", noise=True)[:-1000], False, "cat.jpg is not a readable JPG or PNG image"),
        ("cut.png", image_bytes(400, 400, "PNG", noise=True)[:-1000], False, "cut.png is not a readable JPG or PNG image"),
        ("head.jpg", image_bytes(400, 400, "JPEG")[:60], False, "head.jpg is not a readable JPG or PNG image"),
        ("zero.jpg", b"", False, "zero.jpg is not a readable JPG or PNG image"),
        ("junk.jpg", b"this is not an image at all" * 10, False, "junk.jpg is not a readable JPG or PNG image"),
    ],
    ids=["300", "jpg", "299w", "299h", "gif", "webp", "bmp", "trunc-jpg", "trunc-png", "header-only", "zero", "junk"],
)
def test_check_image(name, data, ok, message):
    result, _ = check(check_image, name, data)
    assert result.ok is ok
    assert result.size == len(data)
    if message:
        assert any(message in problem for problem in result.problems), result.problems
    else:
        assert result.problems == () and result.kind == "image" and min(result.width, result.height) >= 300


@pytest.mark.parametrize(("extra", "ok"), [(0, True), (1, False)])
def test_image_size_limit_at_ten_megabytes(extra, ok):
    data = png_of_size(rules.IMAGE_MAX_BYTES + extra)
    result, bytes_read = check(check_image, "big.png", data)
    assert result.ok is ok and result.size == 10 * MIB + extra
    assert bytes_read < 128 * 1024  # header and tail, never the 10 MB body
    if not ok:
        assert result.problems == ("big.png is 10.0 MB (10,485,761 bytes); images may be at most 10 MB: resize it or save it as JPG.",)


def test_size_message_rounds_to_one_decimal():
    result, _ = check(check_image, "big.png", png_of_size(11 * MIB))
    assert result.problems[0].startswith("big.png is 11.0 MB; images may be at most 10 MB")


def test_min_side_can_be_turned_off_for_frames():
    assert check_image("small.png", io.BytesIO(image_bytes(100, 100)), min_side=None).ok


MP4_HEADER = struct.pack(">I", 24) + b"ftypisom" + b"\0\0\2\0" + b"isomiso2"
MOV_HEADER = struct.pack(">I", 20) + b"ftypqt  " + b"\0\0\2\0" + b"qt  "


@pytest.mark.parametrize(
    ("name", "data", "ok", "mime", "message"),
    [
        ("clip.mp4", video_bytes("mp4"), True, "video/mp4", None),
        ("clip.mov", video_bytes("mov"), True, "video/quicktime", None),
        ("head.mp4", MP4_HEADER + b"\0" * 64, True, "video/mp4", None),
        ("head.mov", MOV_HEADER + b"\0" * 64, True, "video/quicktime", None),
        ("old.mov", struct.pack(">I", 8) + b"wide" + struct.pack(">I", 16) + b"mdat" + b"\0" * 8, True, "video/quicktime", None),
        ("odd.mp4", struct.pack(">I", 24) + b"ftypXXXX\0\0\0\0mp42avc1", True, "video/mp4", None),
        ("notes.mp4", b"just some text, not a video\n" * 5, False, None, "notes.mp4 is not an MP4 or MOV video"),
        ("photo.mp4", image_bytes(300, 300), False, "image/png", "photo.mp4 is a PNG image, not an MP4 or MOV video"),
        ("photo.mov", struct.pack(">I", 24) + b"ftypheic\0\0\0\0mif1heic", False, "image/heic", "photo.mov is a HEIC image"),
        ("zero.mp4", b"", False, None, "zero.mp4 is not a readable MP4 or MOV video"),
    ],
)
def test_check_video(name, data, ok, mime, message):
    result, _ = check(check_video, name, data)
    assert result.ok is ok
    if ok:
        assert (result.kind, result.mime_type, result.problems) == ("video", mime, ())
    else:
        assert any(message in problem for problem in result.problems), result.problems


@pytest.mark.parametrize(("extra", "ok"), [(0, True), (1, False)])
def test_video_size_limit_at_fifty_megabytes(tmp_path: Path, extra, ok):
    path = tmp_path / "big.mp4"
    with path.open("wb") as handle:  # sparse: only the header is really written
        handle.write(MP4_HEADER)
        handle.truncate(rules.VIDEO_MAX_BYTES + extra)
    with path.open("rb") as handle:
        reader = CountingReader(handle)
        result = check_video("big.mp4", reader)
    assert result.ok is ok and result.size == 50 * MIB + extra
    assert reader.bytes_read <= 4096
    if not ok:
        assert result.problems[0].startswith("big.mp4 is 50.0 MB (52,428,801 bytes); videos may be at most 50 MB")


@pytest.mark.parametrize(
    ("name", "data", "kind"),
    [
        ("a.png", image_bytes(300, 300), "image"),
        ("a.bin", image_bytes(300, 300, "JPEG"), "image"),
        ("a.gif", image_bytes(300, 300, "GIF"), "image"),
        ("a.dat", video_bytes("mp4"), "video"),
        ("a.mov", MOV_HEADER, "video"),
        ("a.txt", b"hello", None),
        ("a.png", b"", None),
    ],
)
def test_check_media_decides_by_content(name, data, kind):
    result, _ = check(check_media, name, data)
    assert result.kind == kind
    if kind is None:
        assert not result.ok and "is not a readable image or video" in result.problems[0]


def test_real_files_on_disk_are_rewound(tmp_path: Path):
    path = tmp_path / "cat.png"
    path.write_bytes(image_bytes(320, 320))
    with path.open("rb") as handle:
        handle.seek(5)
        assert check_image("cat.png", handle).ok
        assert handle.tell() == 0


@pytest.mark.parametrize(
    ("head", "fmt"),
    [(b"\xff\xd8\xff\xe0", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"GIF89a", "GIF"), (b"RIFF\0\0\0\0WEBP", "WEBP"),
     (MP4_HEADER, "ISOBMFF"), (b"\0\0\0\x08mdat", "QT"), (b"", None), (b"%PDF-1.7", None)],
)
def test_sniff_format(head, fmt):
    assert sniff_format(head) == fmt


def test_a_thumbnail_becomes_a_data_address_and_nothing_else_does(tmp_path: Path):
    path = tmp_path / "cat.png"
    path.write_bytes(image_bytes(320, 320))
    jpeg = thumbnail_jpeg(path, 64)
    uri = jpeg_data_uri(jpeg)
    assert uri is not None and uri.startswith("data:image/jpeg;base64,")
    import base64
    assert base64.b64decode(uri.split(",", 1)[1]) == jpeg
    # only a JPEG is drawn this way: a PNG, an SVG or nothing gives no address
    assert jpeg_data_uri(path.read_bytes()) is None
    assert jpeg_data_uri(b"<svg onload=alert(1)>") is None and jpeg_data_uri(None) is None
