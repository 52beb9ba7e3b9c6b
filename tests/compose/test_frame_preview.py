"""A frame given by URL is shown only from the app's own file or an allowed media host, else as a plain link."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from lib.compose import form as cp
from lib.compose.frame_preview import FramePreview, frame_preview, own_file_finder


def png(width: int, height: int | None = None) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height or width), "red").save(buf, "PNG")
    return buf.getvalue()


class Store:
    """A file store that owns one URL (as the sandbox's upload host owns its /files/ URLs)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def is_own_file_url(self, url: str) -> bool:
        return url.startswith("http://127.0.0.1:9/files/")

    def resolve_file(self, url_or_path: str) -> tuple[Path, str] | str | None:
        return (self.path, "image/png") if url_or_path.endswith("/frame.png") else None


def test_the_apps_own_file_becomes_a_jpeg_thumbnail(tmp_path: Path) -> None:
    (tmp_path / "f.png").write_bytes(png(640, 360))
    preview = frame_preview("http://127.0.0.1:9/files/u/frame.png", own_file_finder(Store(tmp_path / "f.png")))
    assert isinstance(preview.image, bytes) and preview.image[:3] == b"\xff\xd8\xff"
    assert max(Image.open(io.BytesIO(preview.image)).size) <= 320


@pytest.mark.parametrize(("url", "expected"), [
    ("https://tempfile.aiquickdraw.com/k/f.png", FramePreview(image="https://tempfile.aiquickdraw.com/k/f.png")),
    ("http://tempfile.aiquickdraw.com/k/f.png", FramePreview(link=("http://tempfile.aiquickdraw.com/k/f.png",
                                                                   "tempfile.aiquickdraw.com"))),
    ("https://evil.test/track.png", FramePreview(link=("https://evil.test/track.png", "evil.test"))),
    ("http://127.0.0.1:9/files/u/other.png", FramePreview(link=("http://127.0.0.1:9/files/u/other.png", "127.0.0.1"))),
    ("javascript:alert(1)", FramePreview()),
])
def test_an_outside_url_is_loaded_by_the_browser_only_from_a_media_host(tmp_path: Path, url: str,
                                                                       expected: FramePreview) -> None:
    (tmp_path / "f.png").write_bytes(png(400))
    assert frame_preview(url, own_file_finder(Store(tmp_path / "f.png"))) == expected


def test_without_a_file_store_only_the_url_rules_apply() -> None:
    assert own_file_finder(None) is None
    assert frame_preview("https://evil.test/a.png").link == ("https://evil.test/a.png", "evil.test")


class Uploader:
    def __call__(self, source, *, file_name: str, upload_path: str, method: str):
        return type("Up", (), {"download_url": f"https://tempfile.aiquickdraw.com/{file_name}", "expires_at": None})()


def _form_with(upload: dict) -> dict:
    form = cp.default_form()
    form.update(compose_prompt="a fox", compose_first_source="upload", compose_first_upload=upload)
    return form


@pytest.mark.parametrize(("width", "height", "warned"), [(200, 640, True), (640, 299, True), (300, 300, False),
                                                         (1280, 720, False)])
def test_a_frame_under_300_px_is_warned_about_from_its_header(width: int, height: int, warned: bool) -> None:
    upload = cp.upload_frame(Uploader(), "small.png", png(width, height))
    assert upload.url and (upload.width, upload.height) == (width, height)
    problems = cp.form_problems(_form_with(upload.to_state()), [])
    found = [p for p in problems if p.rule == "frame_size"]
    assert bool(found) is warned
    if warned:
        (problem,) = found
        assert problem.level == "warning" and problem.path == "input.image_urls[0]"
        assert f"{width}×{height} px" in problem.message and "Would a live job be refused? Not known" in problem.message
        assert cp.field_of(problem.path) == "first_frame"  # shown under the first frame's field


def test_a_frame_saved_before_sizes_were_kept_still_loads_without_a_warning() -> None:
    old = {"name": "f.png", "sha": "abc", "url": "https://tempfile.aiquickdraw.com/f.png", "expires_at": None,
           "problems": []}
    assert cp.form_problems(_form_with(old), []) == []
