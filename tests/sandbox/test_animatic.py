"""The sandbox result video: KIE's resolution per mode and ratio, 24 fps, exact length, sound, visible elements."""

from __future__ import annotations

import io
import time

import av
import numpy as np
import pytest
from PIL import Image

from lib.sandbox.animatic import RenderSpec, ShotSpec, fps_for, frame_size, render_animatic, render_video
from lib.sandbox.cards import ElementCard

MAGENTA = (230, 0, 200)


def probe(data: bytes) -> dict:
    """Stream facts of an MP4, read back with PyAV."""
    with av.open(io.BytesIO(data)) as container:
        video = container.streams.video[0]
        return {"codec": video.codec_context.name, "size": (video.width, video.height),
                "pix_fmt": video.codec_context.pix_fmt, "fps": float(video.average_rate),
                "duration": container.duration / 1_000_000, "frames": video.frames,
                "audio": [(a.codec_context.name, a.sample_rate) for a in container.streams.audio]}


def frames(data: bytes) -> list[np.ndarray]:
    with av.open(io.BytesIO(data)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def png(colour: tuple[int, int, int], size: tuple[int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def share_near(frame: np.ndarray, colour: tuple[int, int, int], tolerance: int = 40) -> float:
    """The fraction of a frame's pixels within `tolerance` of a colour on every channel."""
    return float(np.all(np.abs(frame.astype(int) - colour) <= tolerance, axis=-1).mean())


@pytest.mark.parametrize(("mode", "aspect", "size"), [
    ("std", "16:9", (1280, 720)), ("std", "9:16", (720, 1280)), ("std", "1:1", (720, 720)),
    ("pro", "16:9", (1920, 1080)), ("pro", "9:16", (1080, 1920)), ("pro", "1:1", (1080, 1080)),
    ("4K", "16:9", (3840, 2160)), ("4K", "9:16", (2160, 3840)), ("4K", "1:1", (2160, 2160)),
])
def test_resolution_is_the_modes_in_the_ratio(mode: str, aspect: str, size: tuple[int, int]) -> None:
    assert frame_size(mode, aspect) == size
    facts = probe(render_video(RenderSpec((ShotSpec("a lighthouse at dawn", 1),), aspect, mode)))
    assert (facts["codec"], facts["pix_fmt"]) == ("h264", "yuv420p")
    assert facts["size"] == size and facts["fps"] == fps_for(mode)


def test_std_and_pro_are_24_fps_and_4k_documents_its_lower_rate() -> None:
    assert fps_for("std") == fps_for("pro") == 24
    assert 1 <= fps_for("4K") <= 24


@pytest.mark.parametrize("shots", [[("one", 3)], [("one", 2), ("two", 1), ("three", 2)], [("long", 15)]])
def test_duration_and_frame_count_are_exact(shots: list[tuple[str, int]]) -> None:
    facts = probe(render_animatic(shots, "16:9"))
    total = sum(seconds for _, seconds in shots)
    assert facts["duration"] == pytest.approx(total, abs=0.1)
    assert facts["frames"] == total * 24 and facts["fps"] == 24


@pytest.mark.parametrize("sound", [True, False])
def test_an_aac_track_exactly_when_sound_is_on(sound: bool) -> None:
    facts = probe(render_video(RenderSpec((ShotSpec("a", 2), ShotSpec("b", 1)), "1:1", "std", sound)))
    assert facts["audio"] == ([("aac", 48_000)] if sound else [])
    assert facts["duration"] == pytest.approx(3.0, abs=0.1)


def test_the_sound_has_a_bed_and_a_cue_at_the_cut() -> None:
    from lib.sandbox.soundtrack import SAMPLE_RATE, soundtrack

    samples = soundtrack([2, 1])
    assert len(samples) == 3 * SAMPLE_RATE and np.abs(samples).max() <= 1.0
    around_cut = np.abs(samples[2 * SAMPLE_RATE:2 * SAMPLE_RATE + 2000]).max()
    before_cut = np.abs(samples[SAMPLE_RATE:SAMPLE_RATE + 2000]).max()
    assert around_cut > before_cut + 0.1 and before_cut > 0.02


def test_an_elements_colour_shows_in_the_shot_that_references_it_only() -> None:
    hero = ElementCard("hero", (Image.new("RGB", (400, 400), MAGENTA),))
    spec = RenderSpec((ShotSpec("a wide street", 1), ShotSpec("@hero waves", 1, (hero,)), ShotSpec("empty", 1)),
                      "16:9", "std")
    decoded = frames(render_video(spec))
    shares = [share_near(decoded[second * 24 + 12], MAGENTA) for second in range(3)]
    assert shares[1] > 0.02, "the @hero card must show in shot 2"
    assert shares[0] < 0.001 and shares[2] < 0.001


def test_first_and_last_frames_show_where_they_belong() -> None:
    spec = RenderSpec((ShotSpec("one", 2), ShotSpec("two", 2)), "16:9", "std",
                      first_frame=Image.new("RGB", (160, 90), (0, 230, 0)),
                      last_frame=Image.new("RGB", (160, 90), (0, 0, 240)))
    decoded = frames(render_video(spec))
    red, green, blue = decoded[0][400, 800]
    assert green > 120 and green > red + 50 and green > blue + 50
    red, green, blue = decoded[-1][400, 800]
    assert blue > 120 and blue > red + 50 and blue > green + 50
    assert decoded[60][400, 800][1] < 120 and decoded[60][400, 800][2] < 120  # shot 2's start: neither


def test_a_mode_by_sound_grid_has_four_different_first_frames() -> None:
    firsts = []
    for mode in ("std", "pro"):
        for sound in (True, False):
            first = frames(render_video(RenderSpec((ShotSpec("same prompt", 1),), "16:9", mode, sound)))[0]
            firsts.append(np.asarray(Image.fromarray(first).resize((640, 360))).astype(int))
    for i in range(4):
        for j in range(i + 1, 4):
            assert np.abs(firsts[i] - firsts[j]).mean() > 0.2, f"variants {i} and {j} look the same"


def test_unreadable_first_frame_is_ignored() -> None:
    assert probe(render_animatic([("x", 1)], "1:1", first_frame=b"not an image"))["duration"] == \
        pytest.approx(1.0, abs=0.1)


def test_images_over_the_pixel_cap_are_never_decoded(monkeypatch: pytest.MonkeyPatch) -> None:
    import lib.sandbox.pictures as pictures

    monkeypatch.setattr(pictures, "check_pixels", lambda w, h, name: "too big")
    assert pictures.decode_picture(png((1, 2, 3), (64, 64))) is None


def test_faststart_puts_moov_before_mdat() -> None:
    data = render_animatic([("x", 1)], "16:9")
    assert 0 < data.find(b"moov") < data.find(b"mdat")


@pytest.mark.parametrize(("shots", "aspect"), [([], "16:9"), ([("x", 0)], "16:9"), ([("x", 1)], "4:3")])
def test_bad_arguments(shots: list[tuple[str, int]], aspect: str) -> None:
    with pytest.raises(ValueError):
        render_animatic(shots, aspect)


def test_a_15_s_pro_job_renders_inside_the_simulated_generation_time() -> None:
    hero = ElementCard("hero", (Image.new("RGB", (400, 400), MAGENTA),))
    long_prompt = "A slow dolly shot through a neon-lit market in the rain @hero " * 6
    spec = RenderSpec((ShotSpec(long_prompt, 5, (hero,)), ShotSpec("close up", 5), ShotSpec("wide", 5)),
                      "16:9", "pro", True, first_frame=Image.new("RGB", (320, 180), (90, 90, 200)))
    started = time.perf_counter()
    data = render_video(spec)
    assert time.perf_counter() - started < 8  # the default KLING_SANDBOX_SECONDS; ~3 s on 2 shared cores
    assert probe(data)["duration"] == pytest.approx(15.0, abs=0.1)
