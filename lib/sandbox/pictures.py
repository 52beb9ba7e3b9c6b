"""Decode a sandbox input picture (an image, or a video's first frame) under the pixel cap, shrunk for drawing."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import av
from PIL import Image

from lib.trust.limits import check_pixels

logger = logging.getLogger(__name__)

PREVIEW_SIDE = 1024  # pictures are shrunk to this before drawing: a card is never bigger


def decode_picture(data: bytes | Path) -> Image.Image | None:
    """An image (or a video's first frame) as RGB, None when unreadable or over the pixel cap."""
    try:
        head = data.read_bytes()[:16] if isinstance(data, Path) else data[:16]
        if head[4:8] == b"ftyp":
            return _first_video_frame(data)
        with Image.open(data if isinstance(data, Path) else io.BytesIO(data)) as image:
            if problem := check_pixels(image.width, image.height, "A sandbox input image"):
                logger.warning("%s", problem)
                return None
            image.draft("RGB", (PREVIEW_SIDE, PREVIEW_SIDE))  # JPEG decodes at a reduced scale: cheap
            picture = image.convert("RGB")
    except (OSError, ValueError, av.FFmpegError) as exc:
        logger.warning("Ignoring an unreadable sandbox input (%s)", exc)
        return None
    picture.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
    return picture


def _first_video_frame(data: bytes | Path) -> Image.Image | None:
    with av.open(str(data) if isinstance(data, Path) else io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        if problem := check_pixels(stream.width, stream.height, "A sandbox input video"):
            logger.warning("%s", problem)
            return None
        picture = next(container.decode(stream)).to_image()
    picture.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
    return picture
