"""Card and form thumbnails: every image in the same square box, and a caption that fits on one line.

Pixels are decoded only after the header passed the pixel cap (lib.trust.limits via lib.kling.media), for stored
originals and for files just picked in the uploader alike.
"""

from __future__ import annotations

import os
from typing import IO

from lib.kling.media import check_media, thumbnail_jpeg

BOX_COLOR = (243, 241, 251)  # the theme's secondary background, so the padding reads as the box
MARGIN = 3  # white pixels round each box; st.image puts its images edge to edge
CAPTION_CHARS = 8  # what fits on one line under a 70 px thumbnail in the caption font


def boxed_thumbnail(source: str | os.PathLike[str] | IO[bytes], side: int) -> bytes | None:
    """A side×side JPEG with the image scaled into it (same height for every thumbnail), or None when the file
    is unreadable or over the pixel cap (media.thumbnail_jpeg checks the header before any pixel is decoded)."""
    return thumbnail_jpeg(source, side - 2 * MARGIN, box=(side, BOX_COLOR, MARGIN))


def picked_thumbnail(name: str, stream: IO[bytes], side: int) -> bytes | None:
    """The thumbnail of a file picked in the uploader, once the upload's media check read its header as an image
    (a too-small image still shows, so the user sees which file the message is about)."""
    stream.seek(0)
    check = check_media(name, stream)
    stream.seek(0)
    if check.kind != "image" or check.width is None:  # not an image, or its header is unreadable
        return None
    try:
        return boxed_thumbnail(stream, side)
    finally:
        stream.seek(0)


def short_caption(name: str, chars: int = CAPTION_CHARS) -> str:
    """The file name, cut with an ellipsis (the extension goes first) when longer than `chars`, so it stays on
    one line under a thumbnail; a word joiner keeps the ellipsis from wrapping onto a line of its own."""
    if len(name) <= chars:
        return name
    stem = name.rpartition(".")[0] or name
    return stem[: chars - 1] + "\u2060…"
