"""Video work on archived takes with PyAV: a take's last frame, and takes joined into one MP4 with chapters.

Only the app's own archived files are read (found by task id through the MediaStore); the output is written to
a temporary file and returned as bytes, so nothing outside the data folder is touched.
"""

from __future__ import annotations

import csv
import io
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from lib.trust.limits import MAX_IMAGE_PIXELS

log = logging.getLogger(__name__)

FPS = 24
MAX_CLIPS = 50
X264 = {"preset": "veryfast", "crf": "23"}


class ReelError(ValueError):
    """A take cannot be read or joined; the message names it."""


def last_frame_png(path: Path) -> bytes:
    """The last decodable frame of a video as PNG bytes (the first frame of a continuing take)."""
    last = None
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            if stream.width * stream.height > MAX_IMAGE_PIXELS:
                raise ReelError(f"{path.name} is too large a video to take a frame from.")
            for frame in container.decode(stream):
                last = frame
    except av.FFmpegError as exc:
        raise ReelError(f"{path.name} cannot be read as a video ({exc.__class__.__name__}).") from None
    if last is None:
        raise ReelError(f"{path.name} has no frames.")
    out = io.BytesIO()
    last.to_image().save(out, "PNG")
    return out.getvalue()


@dataclass(frozen=True)
class Clip:
    """One take in a reel: its label (task id) and its archived file."""

    label: str
    path: Path


@dataclass(frozen=True)
class Chapter:
    """Where a take starts in the reel."""

    start_s: float
    label: str
    seconds: float


def _frames(path: Path) -> list[np.ndarray]:
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            return [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    except av.FFmpegError as exc:
        raise ReelError(f"{path.name} cannot be read as a video ({exc.__class__.__name__}).") from None


def _fit(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Letterbox a frame into width×height (nearest-neighbour scale, black bars): takes of other sizes join."""
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    scale = min(width / w, height / h)
    new_w, new_h = max(2, int(w * scale)) // 2 * 2, max(2, int(h * scale)) // 2 * 2
    ys = (np.arange(new_h) * (h / new_h)).astype(int)
    xs = (np.arange(new_w) * (w / new_w)).astype(int)
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    top, left = (height - new_h) // 2, (width - new_w) // 2
    canvas[top:top + new_h, left:left + new_w] = image[ys][:, xs]
    return canvas


def export_reel(clips: Sequence[Clip], fps: int = FPS) -> tuple[bytes, list[Chapter]]:
    """Join the takes back to back into one H.264 MP4 (re-encoded at the first take's size and `fps`)."""
    if not clips:
        raise ReelError("Pick at least one finished take with a saved video.")
    if len(clips) > MAX_CLIPS:
        raise ReelError(f"A reel holds at most {MAX_CLIPS} takes.")
    with av.open(str(clips[0].path)) as first:
        width, height = first.streams.video[0].width, first.streams.video[0].height
    chapters, start = [], 0.0
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "reel.mp4"
        with av.open(str(target), "w") as out:
            stream = out.add_stream("libx264", rate=fps, options=X264)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.time_base = Fraction(1, fps)
            index = 0
            for clip in clips:
                frames = _frames(clip.path)
                chapters.append(Chapter(round(start, 3), clip.label, round(len(frames) / fps, 3)))
                for image in frames:
                    frame = av.VideoFrame.from_ndarray(_fit(image, width, height), format="rgb24")
                    frame.pts = index
                    index += 1
                    out.mux(stream.encode(frame))
                start += len(frames) / fps
            out.mux(stream.encode(None))
        return target.read_bytes(), chapters


def chapters_csv(chapters: Sequence[Chapter]) -> bytes:
    """The chapter list: start time (s), task id, length (s)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(["start_s", "task_id", "seconds"])
    for chapter in chapters:
        label = chapter.label if not chapter.label.startswith(("=", "+", "-", "@")) else "'" + chapter.label
        writer.writerow([f"{chapter.start_s:.3f}", label, f"{chapter.seconds:.3f}"])
    return buffer.getvalue().encode("utf-8")


def duration_s(path: Path) -> float:
    """A video's length in seconds (frames / rate)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = stream.frames or sum(1 for _ in container.decode(stream))
        rate = float(stream.average_rate or FPS)
        return frames / rate
