"""Render the sandbox's result video: a real H.264 (+ AAC) MP4 at the mode's resolution, 24 fps, the job's length.

Fast on two cores because almost nothing is drawn per frame: each shot's card is drawn once with Pillow
(lib.sandbox.cards) and converted to YUV once; a timecode pill is drawn once per second; each frame only
writes the growing progress bar into the YUV planes by numpy slicing. libx264 runs at preset ultrafast with a
high CRF: the picture is static, so P-frames are nearly free.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw

from lib.kling import rules
from lib.kling.pricing import RESOLUTIONS
from lib.sandbox.cards import (
    LAST_FRAME_WEIGHT,
    ElementCard,
    ShotCard,
    clock,
    draw_card,
    font,
)
from lib.sandbox.pictures import decode_picture
from lib.sandbox.soundtrack import AudioTrack, soundtrack

logger = logging.getLogger(__name__)

FPS = 24
# 4K renders at 12 fps: at 24 fps a 15 s 3840×2160 job took ~9 s to encode on the 2 shared cores we run on,
# longer than the sandbox's simulated generation time (KLING_SANDBOX_SECONDS, 8 s); 12 fps halves that
# (bench/bench_animatic.py prints the figures). std and pro keep KIE's 24 fps.
FPS_BY_MODE = {"std": FPS, "pro": FPS, "4K": 12}
X264_OPTIONS = {"preset": "ultrafast", "tune": "stillimage", "crf": "32"}
BAR = (255, 196, 0)
BAR_TRACK = (30, 30, 30)


@dataclass(frozen=True, eq=False)
class ShotSpec:
    """One shot to render: its prompt, whole seconds and the elements its prompt references."""

    prompt: str
    seconds: int
    elements: tuple[ElementCard, ...] = ()


@dataclass(frozen=True, eq=False)
class RenderSpec:
    """Everything the video shows: shots, ratio, mode, sound and the frame images (already decoded)."""

    shots: tuple[ShotSpec, ...]
    aspect_ratio: str = "16:9"
    mode: str = "std"
    sound: bool = False
    first_frame: Image.Image | None = None
    last_frame: Image.Image | None = None
    fps: int | None = None  # None: the mode's (FPS_BY_MODE)


def frame_size(mode: str, aspect_ratio: str) -> tuple[int, int]:
    """(width, height) KIE gives this mode in this ratio, read from lib.kling.pricing.RESOLUTIONS."""
    if mode not in RESOLUTIONS or aspect_ratio not in RESOLUTIONS[mode]:
        raise ValueError(f"no resolution for mode {mode!r} at aspect_ratio {aspect_ratio!r}")
    width, height = RESOLUTIONS[mode][aspect_ratio].split("×")
    return int(width), int(height)


def fps_for(mode: str) -> int:
    """Frames per second the sandbox renders this mode at."""
    return FPS_BY_MODE.get(mode, FPS)


def render_video(spec: RenderSpec) -> bytes:
    """Encode the spec as a playable, faststart H.264 yuv420p MP4 (AAC mono audio when sound is on)."""
    if spec.aspect_ratio not in rules.ASPECT_RATIOS:
        raise ValueError(f"aspect_ratio must be one of {rules.ASPECT_RATIOS}, got {spec.aspect_ratio!r}")
    if not spec.shots or any(int(shot.seconds) < 1 for shot in spec.shots):
        raise ValueError("a video needs at least one shot, each lasting 1 s or more")
    fps = spec.fps or fps_for(spec.mode)
    if fps < 1:
        raise ValueError("fps must be positive")
    size = frame_size(spec.mode, spec.aspect_ratio)
    # faststart (moov before mdat, so browsers start playing at once) needs a seekable real file
    with tempfile.TemporaryDirectory(prefix="animatic-") as tmp:
        path = Path(tmp) / "animatic.mp4"
        _encode(path, spec, size, fps)
        return path.read_bytes()


def render_animatic(shots: list[tuple[str, int]], aspect_ratio: str, first_frame: bytes | None = None,
                    fps: int | None = None, mode: str = "std", sound: bool = False) -> bytes:
    """A plain video of (prompt, seconds) shots (tests and the docs double use it for playable bytes)."""
    return render_video(RenderSpec(tuple(ShotSpec(p, int(s)) for p, s in shots), aspect_ratio, mode, sound,
                                   first_frame=decode_picture(first_frame) if first_frame else None, fps=fps))


def _encode(path: Path, spec: RenderSpec, size: tuple[int, int], fps: int) -> None:
    """Mux the video (and audio) a second at a time, so the two streams interleave."""
    total_s = sum(int(shot.seconds) for shot in spec.shots)
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = dict(X264_OPTIONS)
        audio = AudioTrack(container, soundtrack([int(s.seconds) for s in spec.shots])) if spec.sound else None
        canvas = _Canvas(size, total_s * fps)
        frame_index, start_s, stills = 0, 0, {}
        for index, shot in enumerate(spec.shots):
            seconds = int(shot.seconds)
            card = ShotCard(index, len(spec.shots), start_s, seconds, shot.prompt, shot.elements)
            for local_s in range(seconds):
                canvas.load(_picture_for(spec, size, card, local_s, stills), start_s + local_s, total_s)
                for _ in range(fps):
                    container.mux(stream.encode(canvas.frame(frame_index)))
                    frame_index += 1
                if audio:
                    audio.write_until(start_s + local_s + 1)
            start_s += seconds
        container.mux(stream.encode(None))
        if audio:
            audio.close()


Stills = dict[tuple[int, bool], Image.Image]


def _picture_for(spec: RenderSpec, size: tuple[int, int], card: ShotCard, local_s: int, cache: Stills) -> Image.Image:
    """The shot's still for this second, drawn once per shot (and once more for a last-frame ending)."""
    last_second = card.index == card.count - 1 and local_s == card.seconds - 1
    key = (card.index, bool(last_second and spec.last_frame is not None))
    if key not in cache:
        badge = (spec.mode, spec.sound)
        if key[1]:
            cache[key] = draw_card(size, card, badge, spec.last_frame, "last frame", LAST_FRAME_WEIGHT)
        elif card.index == 0 and spec.first_frame is not None:
            cache[key] = draw_card(size, card, badge, spec.first_frame, "first frame")
        else:
            cache[key] = draw_card(size, card, badge, None)
        cache.pop((card.index - 1, False), None)  # keep at most one shot's stills in memory (4K is 25 MB each)
    return cache[key]


class _Canvas:
    """The current still as YUV 4:2:0 planes; each frame adds the progress bar by slicing, nothing else."""

    def __init__(self, size: tuple[int, int], total_frames: int) -> None:
        self.width, self.height = size
        self.total_frames = total_frames
        self.bar_top = (self.height - max(4, self.height // 40)) & ~1
        self._still: Image.Image | None = None
        self._base = np.empty(0, np.uint8)
        self._work = np.empty(0, np.uint8)
        self._bar = _yuv_of(BAR)

    def load(self, still: Image.Image, second: int, total_s: int) -> None:
        """Take this second's picture: the shot's still with the timecode pill drawn on it."""
        if still is not self._still:
            self._still = still
            self._base = _to_yuv(_with_bar_track(still, self.bar_top))
        self._work = self._base.copy()
        self._paste_timecode(f"{clock(second)} / {clock(total_s)}")

    def frame(self, index: int) -> av.VideoFrame:
        """The video frame `index`: the bar is filled up to this frame's share of the whole video."""
        done = (round(self.width * (index + 1) / self.total_frames)) & ~1
        y, u, v = _planes(self._work, self.width, self.height)
        y[self.bar_top:, :done] = self._bar[0]
        u[self.bar_top // 2:, :done // 2] = self._bar[1]
        v[self.bar_top // 2:, :done // 2] = self._bar[2]
        frame = av.VideoFrame.from_ndarray(self._work, format="yuv420p")
        frame.pts = index
        return frame

    def _paste_timecode(self, text: str) -> None:
        face = font(max(10, round(min(self.width, self.height) * 0.035)))
        pad = face.size // 3
        width = (round(face.getlength(text)) + 2 * pad + 3) & ~3  # multiples of 4 keep the packed planes whole
        height = (face.size + 2 * pad + 3) & ~3
        pill = Image.new("RGB", (width, height), (20, 20, 20))
        ImageDraw.Draw(pill).text((pad, pad // 2), text, font=face, fill=(255, 255, 255))
        left = (self.width - width - 2 * pad) & ~1
        top = (self.bar_top - height - 2 * pad) & ~1
        patch = _to_yuv(pill)
        for target, source in zip(_planes(self._work, self.width, self.height), _planes(patch, width, height),
                                  strict=True):
            scale = source.shape[0] * 2 // height  # 2 for luma, 1 for chroma
            row, col = top * scale // 2, left * scale // 2
            target[row:row + source.shape[0], col:col + source.shape[1]] = source


def _with_bar_track(still: Image.Image, bar_top: int) -> Image.Image:
    picture = still.copy()
    ImageDraw.Draw(picture).rectangle((0, bar_top, picture.width, picture.height), fill=BAR_TRACK)
    return picture


def _to_yuv(image: Image.Image) -> np.ndarray:
    """An RGB picture as one yuv420p array (h·3/2 rows: Y, then U and V packed), converted by FFmpeg."""
    return av.VideoFrame.from_image(image).reformat(format="yuv420p").to_ndarray()


def _planes(data: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y, U and V planes inside one yuv420p array."""
    quarter = height // 4
    y = data[:height]
    u = data[height:height + quarter].reshape(height // 2, width // 2)
    v = data[height + quarter:height + 2 * quarter].reshape(height // 2, width // 2)
    return y, u, v


def _yuv_of(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    """A colour's (Y, U, V) as FFmpeg's conversion gives it."""
    y, u, v = _planes(_to_yuv(Image.new("RGB", (4, 4), colour)), 4, 4)
    return int(y[0, 0]), int(u[0, 0]), int(v[0, 0])
