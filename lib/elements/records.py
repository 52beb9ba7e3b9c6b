"""Where element records live: the seam ElementLibrary saves through, and today's library.json behind it.

A records store loads every element, writes only the elements that changed (and removes the ones deleted), and
offers a lock the library holds around load-modify-save. lib.storage.sql_library keeps the same records in
PostgreSQL for team mode. Local paths inside a record are stored relative to `root` (`files/<id>/<name>`), so a
record means the same on any server and after the data folder moves.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Hashable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from filelock import FileLock

from lib.common.atomic import write_atomically
from lib.elements.model import SCHEMA_VERSION, Element, ElementError
from lib.elements.transfer import element_from_json, element_to_json

log = logging.getLogger(__name__)


class ElementRecords(Protocol):
    """Element records: loaded whole, written per element, guarded by one lock for load-modify-save."""

    root: Path
    lock: AbstractContextManager[object]

    def version(self) -> Hashable:
        """Changes whenever any record changes: a cache key for views of the library."""

    def load(self) -> dict[str, Element]:
        """Every stored element by id (a fresh dict the caller may change)."""

    def write(self, changed: Sequence[Element], removed: Collection[str]) -> None:
        """Store `changed` (new or edited) and drop the ids in `removed`; other elements are left as they are."""


class JsonRecords:
    """Today's records: `library.json` (one file, replaced atomically) under a file lock beside it."""

    def __init__(self, path: Path, root: Path) -> None:
        self.path, self.root = Path(path), Path(root)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.lock = FileLock(str(self.path) + ".lock", timeout=30)
        self._memo: tuple[tuple[int, int, int], dict[str, Element]] | None = None

    def version(self) -> Hashable:
        """library.json's (mtime, size, inode); None when there is no file yet."""
        try:
            info = self.path.stat()
        except OSError:
            return None
        return (info.st_mtime_ns, info.st_size, info.st_ino)

    def load(self) -> dict[str, Element]:
        """The saved elements; re-parsed only when library.json changed (writes replace it: a new inode)."""
        if not self.path.exists():
            return {}
        signature = self.version()
        if isinstance(signature, tuple) and self._memo and self._memo[0] == signature:
            return dict(self._memo[1])
        elements = self._parse()
        if isinstance(signature, tuple):
            self._memo = (signature, elements)
        return dict(elements)

    def write(self, changed: Sequence[Element], removed: Collection[str]) -> None:
        """Rewrite library.json with the changes applied (callers hold `lock`, so nothing else is lost)."""
        elements = self._parse()
        for element in changed:
            elements[element.id] = element
        for element_id in removed:
            elements.pop(element_id, None)
        payload = {"version": SCHEMA_VERSION, "elements": [element_to_json(e, self.root) for e in elements.values()]}
        write_atomically(self.path, json.dumps(payload, indent=2, ensure_ascii=False).encode("utf-8"))

    def _parse(self) -> dict[str, Element]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise ElementError([f"Cannot read the element library {self.path} ({exc}): check the file's "
                                "permissions."]) from exc
        try:
            data = json.loads(raw.decode("utf-8"))
            if not isinstance(data, dict) or not isinstance(data.get("elements"), list):
                raise ValueError("no 'elements' list")
            if int(data.get("version", 0)) > SCHEMA_VERSION:
                raise ValueError(f"written by a newer Kling Studio (version {data['version']})")
            elements = [element_from_json(item, self.root) for item in data["elements"]]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ElementError([f"The element library {self.path} is damaged ({exc}). It was left untouched: "
                                "restore it from a backup, or move it away to start an empty library."]) from exc
        return {e.id: e for e in elements}
