"""What Compose may show for a frame given by URL (a fork's or a recipe's first frame): a thumbnail only from the
app's own file or an allowed KIE media host, otherwise a plain link that names the host (lib.trust.urls)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lib.kling.media import thumbnail_jpeg
from lib.trust.urls import link_target, playable_url

log = logging.getLogger(__name__)

THUMBNAIL_SIDE = 320
OwnFile = Callable[[str], Path | None]


class OwnFiles(Protocol):
    """A file store that knows its own URLs (the sandbox's upload host)."""

    def is_own_file_url(self, url: str) -> bool: ...  # noqa: D102
    def resolve_file(self, url_or_path: str) -> tuple[Path, str] | str | None: ...  # noqa: D102


@dataclass(frozen=True)
class FramePreview:
    """A thumbnail (JPEG bytes of an own file, or an https URL a browser may load), or a link, or nothing."""

    image: bytes | str | None = None
    link: tuple[str, str] | None = None  # (url, host)


def own_file_finder(store: OwnFiles | None) -> OwnFile | None:
    """The disk file behind one of `store`'s own URLs (found by its key, never a path from the URL's text)."""
    if store is None:
        return None

    def find(url: str) -> Path | None:
        found = store.resolve_file(url) if store.is_own_file_url(url) else None
        return found[0] if isinstance(found, tuple) else None
    return find


def frame_preview(url: str, own_file: OwnFile | None = None) -> FramePreview:
    """How to show the frame at `url`: the app's own copy as a thumbnail, an allowed media URL, or a plain link."""
    path = own_file(url) if own_file and url else None
    if path is not None and (jpeg := thumbnail_jpeg(path, THUMBNAIL_SIDE)) is not None:
        return FramePreview(image=jpeg)
    if (allowed := playable_url(url)) is not None:
        return FramePreview(image=allowed)
    return FramePreview(link=link_target(url))
