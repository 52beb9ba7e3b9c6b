"""A still of a video's first frame (PyAV), small enough for a table cell: History's thumbnails.

Decoding is bounded: the stream's declared size is checked before any frame is decoded, only the first frame is
decoded (giving up after a few packets), and the frame is scaled down by FFmpeg before it becomes an image. A
file PyAV cannot read gives None (logged at debug), never an exception.
"""

from __future__ import annotations

import io
import logging
import os

import av

from lib.trust.limits import MAX_IMAGE_PIXELS

log = logging.getLogger(__name__)

THUMBNAIL_SIDE = 160      # px on the long side
MAX_SIDE = 8192           # a video wider or taller than this is refused (Kling makes ≤ 1920 px)
MAX_PACKETS = 64          # a first frame needs a handful of packets; a stream that yields none is given up on
JPEG_QUALITY = 80


class FrameError(ValueError):
    """The video gives no first frame within the bounds; the message says why."""


def _scaled(width: int, height: int, side: int) -> tuple[int, int]:
    """(width, height) with the long side at most `side`, even numbers (what FFmpeg's scalers like)."""
    scale = min(1.0, side / max(width, height))
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def _check_size(width: int, height: int) -> None:
    if width <= 0 or height <= 0:
        raise FrameError("the video declares no picture size")
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_IMAGE_PIXELS:
        raise FrameError(f"the video is {width}×{height}, over the {MAX_SIDE} px / {MAX_IMAGE_PIXELS:,} px limit")


def _first_frame(container: av.container.InputContainer) -> av.VideoFrame:
    stream = container.streams.video[0]
    _check_size(stream.codec_context.width, stream.codec_context.height)
    for count, packet in enumerate(container.demux(stream)):
        if count >= MAX_PACKETS:
            break
        for frame in packet.decode():
            return frame
    raise FrameError(f"no frame in the first {MAX_PACKETS} packets")


def first_frame_jpeg(path: str | os.PathLike[str], side: int = THUMBNAIL_SIDE) -> bytes:
    """The first frame of the video at `path` as a JPEG whose long side is at most `side` px; FrameError when
    the file is not a readable video within the bounds."""
    try:
        with av.open(os.fspath(path), mode="r") as container:
            if not container.streams.video:
                raise FrameError("the file has no video stream")
            frame = _first_frame(container)
            _check_size(frame.width, frame.height)  # the decoded size, in case the header lied
            width, height = _scaled(frame.width, frame.height, side)
            image = frame.reformat(width=width, height=height, format="rgb24").to_image()
    except (av.FFmpegError, OSError, IndexError) as exc:
        raise FrameError(f"not a readable video ({exc.__class__.__name__})") from None
    out = io.BytesIO()
    image.save(out, "JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def thumbnail_or_none(path: str | os.PathLike[str], side: int = THUMBNAIL_SIDE) -> bytes | None:
    """`first_frame_jpeg`, or None (logged at debug) when the video cannot give one."""
    try:
        return first_frame_jpeg(path, side)
    except FrameError as exc:
        log.debug("no thumbnail for %s: %s", os.fspath(path), exc)
        return None
