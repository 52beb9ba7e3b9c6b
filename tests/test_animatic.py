"""The sandbox animatic: a real, playable H.264 MP4 with the right size, length and first frame."""

from __future__ import annotations

import io
import time

import av
import pytest
from PIL import Image

from lib.sandbox.animatic import render_animatic


def decode(data: bytes) -> tuple[tuple[str, int, int, str], float, list[Image.Image]]:
    """(stream facts, duration in seconds, decoded frames) of an MP4."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        facts = (stream.codec_context.name, stream.width, stream.height, stream.codec_context.pix_fmt)
        duration = container.duration / 1_000_000
        frames = [frame.to_image() for frame in container.decode(video=0)]
    return facts, duration, frames


def png(colour: tuple[int, int, int], size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize(("aspect", "size"), [("16:9", (384, 216)), ("9:16", (216, 384)), ("1:1", (288, 288))])
def test_size_follows_aspect_ratio(aspect: str, size: tuple[int, int]) -> None:
    (codec, width, height, pix_fmt), _, frames = decode(render_animatic([("a lighthouse at dawn", 1)], aspect))
    assert (codec, pix_fmt) == ("h264", "yuv420p")
    assert (width, height) == size and frames[0].size == size
    assert width % 2 == 0 and height % 2 == 0


@pytest.mark.parametrize(("shots", "fps"), [
    ([("one", 3)], 12),
    ([("one", 2), ("two", 1), ("three", 2)], 12),
    ([("slow", 2)], 6),
])
def test_duration_is_sum_of_shots(shots: list[tuple[str, int]], fps: int) -> None:
    _, duration, frames = decode(render_animatic(shots, "16:9", fps=fps))
    total = sum(seconds for _, seconds in shots)
    assert duration == pytest.approx(total, abs=0.1)
    assert len(frames) == total * fps


def test_shots_look_different() -> None:
    _, _, frames = decode(render_animatic([("first", 1), ("second", 1)], "1:1", fps=4))
    first, second = frames[0].getpixel((20, 150)), frames[-1].getpixel((20, 150))
    assert sum(abs(a - b) for a, b in zip(first, second, strict=True)) > 40


def test_first_frame_blends_into_first_shot_only() -> None:
    data = render_animatic([("red", 1), ("next", 1)], "16:9", first_frame=png((0, 230, 0), (160, 90)), fps=4)
    _, _, frames = decode(data)
    red, green, blue = frames[0].getpixel((40, 150))
    assert green > 120 and green > red + 50 and green > blue + 50
    red, green, blue = frames[-1].getpixel((40, 150))
    assert green < 120


def test_unreadable_first_frame_is_ignored() -> None:
    _, duration, _ = decode(render_animatic([("x", 1)], "1:1", first_frame=b"not an image"))
    assert duration == pytest.approx(1.0, abs=0.1)


def test_faststart_puts_moov_before_mdat() -> None:
    data = render_animatic([("x", 1)], "16:9")
    assert 0 < data.find(b"moov") < data.find(b"mdat")


@pytest.mark.parametrize(("shots", "aspect"), [([], "16:9"), ([("x", 0)], "16:9"), ([("x", 1)], "4:3")])
def test_bad_arguments(shots: list[tuple[str, int]], aspect: str) -> None:
    with pytest.raises(ValueError):
        render_animatic(shots, aspect)


def test_fifteen_seconds_encode_quickly() -> None:
    long_prompt = "A slow dolly shot through a neon-lit market in the rain, " * 8
    started = time.perf_counter()
    data = render_animatic([(long_prompt, 5), ("close up", 5), ("wide", 5)], "16:9", png((90, 90, 200), (320, 180)))
    assert time.perf_counter() - started < 5  # ~0.5 s alone; generous for a shared 2-core machine
    assert decode(data)[1] == pytest.approx(15.0, abs=0.1)
