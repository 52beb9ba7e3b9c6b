"""History's thumbnail column: the archived video's first frame as a small inline data: URI (no Streamlit).

The bytes come only from the media store's own thumbnail, found by task id (never a path or URL from a row), are
bounded in size and must be a JPEG, so the table's ImageColumn never makes the viewer's browser load anything.
"""

from __future__ import annotations

import logging
from pathlib import Path

from lib.kling.media import jpeg_data_uri

log = logging.getLogger(__name__)

MAX_THUMBNAIL_BYTES = 96_000  # the store writes ~160 px JPEGs of a few KB; anything larger is not one of ours


def _small_file(path: Path) -> bytes | None:
    """The thumbnail file's bytes when it is no larger than ours are (jpeg_data_uri checks that they are a JPEG)."""
    try:
        if path.stat().st_size > MAX_THUMBNAIL_BYTES:
            return None
        data = path.read_bytes()
    except OSError as exc:
        log.debug("thumbnail %s unreadable: %s", path.name, exc)
        return None
    return data if len(data) <= MAX_THUMBNAIL_BYTES else None


def thumbnail_uri(media: object, task_id: str) -> str | None:
    """`data:image/jpeg;base64,…` of the run's thumbnail, or None (no video, not decodable, or a store without
    thumbnails)."""
    make = getattr(media, "thumbnail", None)
    if make is None:
        return None
    try:
        path = make(task_id)
    except (OSError, ValueError) as exc:  # a store problem costs the picture, never the table
        log.debug("no thumbnail for %s: %s", task_id, exc)
        return None
    return jpeg_data_uri(_small_file(Path(path))) if path is not None else None


def thumbnail_column(media: object, task_ids: list[str]) -> list[str | None]:
    """One thumbnail URI (or None) per task id, for one page of the table."""
    return [thumbnail_uri(media, task_id) for task_id in task_ids]
