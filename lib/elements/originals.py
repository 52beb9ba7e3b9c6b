"""Where element originals live: the seam ElementLibrary keeps files through, and today's files/ folder behind it.

Every original has a local file `<files_dir>/<element id>/<file name>`: the library writes new originals there and
reads them from there. In the folder that file is the original itself; in team mode (lib.storage.s3_originals) it
is a deletable cache of an object in the bucket, fetched again on demand. A stored path is honoured only when it
is that shape inside `files_dir` (never a path a record names elsewhere).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from lib.elements.model import ElementError, ElementMedia, safe_file_name
from lib.trust.paths import is_inside

_ID = re.compile(r"[A-Za-z0-9_-]+")


class Originals(Protocol):
    """The originals of element files, found through their local path."""

    files_dir: Path

    def folder(self, element_id: str) -> Path:
        """The local folder new originals of `element_id` are written into; raises ElementError for a bad id."""

    def local_file(self, media: ElementMedia) -> Path | None:
        """A local file holding the original of `media`, or None when there is none."""

    def publish(self, media: Iterable[ElementMedia]) -> list[ElementMedia]:
        """Keep newly written local originals for good; returns those it stored (for `delete` on failure)."""

    def delete(self, media: Iterable[ElementMedia]) -> None:
        """Remove these originals."""

    def delete_element(self, element_id: str) -> None:
        """Remove every original of `element_id`."""


def element_folder(files_dir: Path, element_id: str) -> Path:
    """`<files_dir>/<element_id>`, for an id the app made (letters, digits, _ or -)."""
    if not _ID.fullmatch(element_id):
        raise ElementError([f"Element id '{element_id}' is not valid: ids are letters, digits, _ or -."])
    return files_dir / element_id


def original_parts(files_dir: Path, media: ElementMedia) -> tuple[str, str] | None:
    """(element id, file name) of a stored local path `<files_dir>/<id>/<name>` the app could have written."""
    if not media.local_path:
        return None
    path = Path(media.local_path)
    if not is_inside(files_dir, path):
        return None
    try:
        parts = path.resolve().relative_to(files_dir.resolve()).parts
    except (OSError, ValueError):
        return None
    if len(parts) != 2 or not _ID.fullmatch(parts[0]) or safe_file_name(parts[1]) != parts[1]:
        return None
    return parts[0], parts[1]


class FolderOriginals:
    """Today's originals: `<data_dir>/elements/files/<id>/<name>`, the files themselves."""

    def __init__(self, files_dir: Path) -> None:
        self.files_dir = Path(files_dir)

    def folder(self, element_id: str) -> Path:
        """The element's own folder (made by whoever writes into it)."""
        return element_folder(self.files_dir, element_id)

    def local_file(self, media: ElementMedia) -> Path | None:
        """The stored original, when it is still on disk inside the files folder."""
        path = Path(media.local_path) if media.local_path else None
        # only a file the library wrote itself, inside its files folder (never a path a record names elsewhere)
        return path if path and is_inside(self.files_dir, path) and path.is_file() else None

    def publish(self, media: Iterable[ElementMedia]) -> list[ElementMedia]:
        """Nothing to do: the local file is the original."""
        return []

    def delete(self, media: Iterable[ElementMedia]) -> None:
        """Unlink the files (only ever inside the files folder)."""
        for item in media:
            if item.local_path and is_inside(self.files_dir, item.local_path):
                Path(item.local_path).unlink(missing_ok=True)

    def delete_element(self, element_id: str) -> None:
        """Remove the element's folder."""
        shutil.rmtree(self.folder(element_id), ignore_errors=True)
