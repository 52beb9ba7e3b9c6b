"""Element originals in the team bucket: `elements/<element id>/<file name>`, with a deletable local cache.

The library writes a new original into the cache folder, then `publish` uploads it; `local_file` serves the
cached copy and fetches it from the bucket on a miss (another server made the element, or the cache was
deleted), like S3Media does for videos. Object names are built from the element id and the file name the app
gave the file, both checked against the app's own rules, so a record can never name an object outside
`elements/`.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable
from pathlib import Path

from lib.elements.model import ElementMedia
from lib.elements.originals import element_folder, original_parts
from lib.storage.s3 import S3Blobs

log = logging.getLogger(__name__)

PREFIX = "elements/"


def original_name(element_id: str, file_name: str) -> str:
    """The object name of one original."""
    return f"{PREFIX}{element_id}/{file_name}"


class S3Originals:
    """The Originals seam in a bucket; `files_dir` is this server's cache of them."""

    def __init__(self, blobs: S3Blobs, files_dir: Path) -> None:
        self.blobs = blobs
        self.files_dir = Path(files_dir)

    def folder(self, element_id: str) -> Path:
        """The cache folder new originals of `element_id` are written into before `publish`."""
        return element_folder(self.files_dir, element_id)

    def _name(self, media: ElementMedia) -> str | None:
        parts = original_parts(self.files_dir, media)
        return original_name(*parts) if parts else None

    def local_file(self, media: ElementMedia) -> Path | None:
        """The cached original, fetched from the bucket when this server has no copy; None when there is none."""
        name = self._name(media)
        if name is None or not media.local_path:
            return None
        path = Path(media.local_path)
        if path.is_file():
            return path
        return path if self.blobs.fetch(name, path) else None

    def publish(self, media: Iterable[ElementMedia]) -> list[ElementMedia]:
        """Upload the cached originals of `media` to the bucket; returns the ones uploaded."""
        done = []
        for item in media:
            name = self._name(item)
            if name is not None and item.local_path and Path(item.local_path).is_file():
                self.blobs.put_file(name, Path(item.local_path), item.mime_type or "application/octet-stream")
                done.append(item)
        return done

    def delete(self, media: Iterable[ElementMedia]) -> None:
        """Remove the originals from the bucket and from this server's cache."""
        for item in media:
            name = self._name(item)
            if name is not None and item.local_path:
                Path(item.local_path).unlink(missing_ok=True)
                self.blobs.delete(name)

    def delete_element(self, element_id: str) -> None:
        """Remove every original of the element (bucket and cache)."""
        folder = self.folder(element_id)
        shutil.rmtree(folder, ignore_errors=True)
        for name in list(self.blobs.names(original_name(element_id, ""))):
            self.blobs.delete(name)

    def names(self) -> set[str]:
        """Every original's object name in the bucket (one listing; used by the copy command)."""
        return set(self.blobs.names(PREFIX))

    def clear_cache(self) -> None:
        """Drop every cached original (the bucket keeps them)."""
        shutil.rmtree(self.files_dir, ignore_errors=True)
