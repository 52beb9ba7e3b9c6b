"""Thumbnails of archived videos in both media stores: made from the first frame when a video is stored, lazily
for videos archived by an earlier version, None (never an exception) for a video PyAV cannot decode."""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from lib.kling import frames
from lib.kling.frames import FrameError, first_frame_jpeg
from lib.storage.files import FileMedia
from lib.storage.s3 import MediaUrl, S3Blobs, S3Media, s3_client, thumbnail_name, video_name
from lib.trust.paths import video_file

RED, BLUE = (220, 20, 20), (20, 20, 220)
NOT_A_VIDEO = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64  # an MP4 header with nothing behind it


def make_clip(path: Path, size: tuple[int, int] = (320, 180), frames_n: int = 12) -> Path:
    """An H.264 MP4 whose first frame is red and every other frame blue."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.time_base = Fraction(1, 24)
        for i in range(frames_n):
            image = np.full((size[1], size[0], 3), RED if i == 0 else BLUE, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def _looks_red(path: Path, long_side: int = 160) -> bool:
    with Image.open(path) as image:
        assert image.format == "JPEG" and max(image.size) == long_side
        r, g, b = image.convert("RGB").getpixel((image.width // 2, image.height // 2))
    return r > 150 and b < 80


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clips") / "take.mp4")


def _staged(folder: Path, source: Path | bytes, name: str = "dl.mp4") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    target.write_bytes(source if isinstance(source, bytes) else source.read_bytes())
    return target


# --- the frame grabber ---------------------------------------------------------------------------------------

def test_the_first_frame_becomes_a_small_jpeg(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "t.jpg"
    out.write_bytes(first_frame_jpeg(clip))
    assert _looks_red(out)  # the first frame, not a later one
    with Image.open(out) as image:
        assert image.size == (160, 90)  # aspect kept


def test_a_portrait_video_keeps_its_long_side_at_160(tmp_path: Path) -> None:
    out = tmp_path / "p.jpg"
    out.write_bytes(first_frame_jpeg(make_clip(tmp_path / "p.mp4", size=(180, 320), frames_n=2)))
    with Image.open(out) as image:
        assert image.size == (90, 160)


def test_absurd_dimensions_are_refused_before_decoding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wide = make_clip(tmp_path / "wide.mp4", size=(640, 16), frames_n=2)
    monkeypatch.setattr(frames, "MAX_SIDE", 600)
    decoded: list[object] = []
    monkeypatch.setattr(frames.av.Packet, "decode", lambda self: decoded.append(self) or [], raising=False)
    with pytest.raises(FrameError, match="640×16"):
        first_frame_jpeg(wide)
    assert decoded == []


@pytest.mark.parametrize("content", [b"", NOT_A_VIDEO, b"GIF89a not a video at all"])
def test_an_unreadable_file_is_a_frame_error(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    with pytest.raises(FrameError):
        first_frame_jpeg(bad)
    assert frames.thumbnail_or_none(bad) is None


# --- FileMedia -----------------------------------------------------------------------------------------------

def test_put_video_makes_the_thumbnail(clip: Path, tmp_path: Path) -> None:
    media = FileMedia(tmp_path)
    media.put_video("task-1", _staged(media.staging_dir(), clip))
    made = tmp_path / "thumbnails" / "task-1.jpg"
    assert made.is_file() and _looks_red(made)
    assert media.thumbnail("task-1") == made


def test_a_video_archived_by_an_earlier_version_gets_one_on_first_call(clip: Path, tmp_path: Path) -> None:
    old = video_file(tmp_path, "old-task")
    _staged(old.parent, clip, old.name)  # what an earlier version left: a video, no thumbnail
    assert not (tmp_path / "thumbnails").exists()
    thumb = FileMedia(tmp_path).thumbnail("old-task")
    assert thumb == tmp_path / "thumbnails" / "old-task.jpg" and _looks_red(thumb)


def test_an_undecodable_video_gives_none_logged_at_debug_and_is_not_retried(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    media = FileMedia(tmp_path)
    with caplog.at_level(logging.DEBUG, logger="lib.kling.frames"):
        media.put_video("broken", _staged(media.staging_dir(), NOT_A_VIDEO))
    assert media.video("broken") is not None and media.thumbnail("broken") is None
    assert any("no thumbnail" in r.message and r.levelno == logging.DEBUG for r in caplog.records)
    tries: list[Path] = []
    monkeypatch.setattr(frames, "first_frame_jpeg", lambda path, side=160: tries.append(path) or b"")
    assert media.thumbnail("broken") is None and tries == []  # a table rerun does not decode it again


def test_no_video_no_thumbnail_and_a_hostile_id_stays_inside(clip: Path, tmp_path: Path) -> None:
    media = FileMedia(tmp_path / "data")
    assert media.thumbnail("never") is None and media.thumbnail("") is None
    media.put_video("../../outside", _staged(media.staging_dir(), clip))
    thumb = media.thumbnail("../../outside")
    assert thumb is not None and thumb.parent == (tmp_path / "data" / "thumbnails").resolve()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_deleting_the_video_deletes_its_thumbnail(clip: Path, tmp_path: Path) -> None:
    media = FileMedia(tmp_path)
    media.put_video("t1", _staged(media.staging_dir(), clip))
    assert media.delete_video("t1") is True
    assert media.thumbnail("t1") is None and not (tmp_path / "thumbnails" / "t1.jpg").exists()


# --- S3Media -------------------------------------------------------------------------------------------------

@pytest.fixture
def bucket_media(s3_env, tmp_path: Path) -> S3Media:
    return S3Media(S3Blobs(s3_client(), MediaUrl(s3_env.new_bucket(), "team/")), tmp_path / "cache-a")


def test_s3_put_video_stores_the_thumbnail_in_the_bucket_too(bucket_media: S3Media, clip: Path) -> None:
    bucket_media.put_video("t1", _staged(bucket_media.staging_dir(), clip))
    assert set(bucket_media.blobs.names()) == {video_name("t1"), thumbnail_name("t1")}
    thumb = bucket_media.thumbnail("t1")
    assert thumb is not None and thumb.is_relative_to(bucket_media.cache_dir) and _looks_red(thumb)


def test_another_server_fetches_the_thumbnail_without_decoding(bucket_media: S3Media, clip: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    bucket_media.put_video("t1", _staged(bucket_media.staging_dir(), clip))
    monkeypatch.setattr("lib.storage.files.thumbnail_or_none", lambda *a: pytest.fail("decoded again"))
    other = S3Media(bucket_media.blobs, tmp_path / "cache-b")
    thumb = other.thumbnail("t1")
    assert thumb is not None and thumb.is_relative_to(tmp_path / "cache-b") and _looks_red(thumb)
    assert not (tmp_path / "cache-b" / "videos").exists()  # the thumbnail alone needed no video download


def test_s3_a_video_archived_earlier_gets_its_thumbnail_made_and_stored(bucket_media: S3Media, clip: Path,
                                                                       tmp_path: Path) -> None:
    bucket_media.blobs.put_file(video_name("old"), clip, "video/mp4")  # an earlier version: no thumbnail
    thumb = bucket_media.thumbnail("old")
    assert thumb is not None and _looks_red(thumb)
    assert thumbnail_name("old") in set(bucket_media.blobs.names())  # made once, for every server
    bucket_media.clear_cache()
    assert bucket_media.thumbnail("old") is not None


def test_s3_undecodable_or_missing_gives_none(bucket_media: S3Media, tmp_path: Path) -> None:
    bucket_media.put_video("broken", _staged(bucket_media.staging_dir(), NOT_A_VIDEO))
    assert bucket_media.thumbnail("broken") is None
    assert thumbnail_name("broken") not in set(bucket_media.blobs.names())
    assert bucket_media.thumbnail("never") is None


def test_s3_a_task_without_video_is_asked_about_once_per_interval(bucket_media: S3Media, clip: Path) -> None:
    now = [1000.0]
    bucket_media.clock = lambda: now[0]
    asked: list[str] = []
    fetch = bucket_media.blobs.fetch
    bucket_media.blobs.fetch = lambda name, target: asked.append(name) or fetch(name, target)  # type: ignore[method-assign]
    assert bucket_media.thumbnail("later") is None and bucket_media.thumbnail("later") is None
    assert asked == [thumbnail_name("later"), video_name("later")]  # the table's next rerun costs no request
    bucket_media.blobs.put_file(video_name("later"), clip, "video/mp4")  # another server archives it
    now[0] += 31
    assert bucket_media.thumbnail("later") is not None


def test_s3_delete_removes_the_thumbnail_everywhere(bucket_media: S3Media, clip: Path, tmp_path: Path) -> None:
    bucket_media.put_video("t1", _staged(bucket_media.staging_dir(), clip))
    assert bucket_media.thumbnail("t1") is not None
    assert bucket_media.delete_video("t1") is True
    assert list(bucket_media.blobs.names()) == [] and bucket_media.thumbnail("t1") is None
