"""Element library: reusable subjects kept as local originals and re-uploaded to KIE before they expire.

KIE stores no elements and deletes uploaded files after 3 days, so the library keeps a record of every element
and a copy of every original. Where they live is two seams: records (lib.elements.records: `library.json` in the
data folder; PostgreSQL in team mode, lib.storage.sql_library) and originals (lib.elements.originals:
`<data_dir>/elements/files/<id>/`; the bucket with a local cache in team mode, lib.storage.s3_originals).
Records, names and status live in lib.elements.model and the JSON formats in lib.elements.transfer; their public names are
re-exported here so callers keep importing from lib.elements.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from lib.common.atomic import write_atomically
from lib.elements.bundle import add_bundled, export_bundle, open_bundle, with_stored
from lib.elements.copies import Fetcher, fetch_copies
from lib.elements.model import (
    LOCAL_METHODS,
    Element,
    ElementError,
    ElementMedia,
    FileInput,
    ImportResult,
    Incoming,
    Uploader,
    UploadStatus,
    copy_name,
    count_problems,
    description_problems,
    duplicate_problems,
    element_kind,
    inspect_files,
    inspect_urls,
    iso_time,
    needs_upload,
    safe_file_name,
    to_utc,
    unique_file_name,
    upload_status,
)
from lib.elements.originals import FolderOriginals, Originals
from lib.elements.records import ElementRecords, JsonRecords
from lib.elements.transfer import add_imported, export_entry, import_entries
from lib.elements.uploading import ensure_fresh, merge_uploads, upload_one
from lib.kling import rules

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- the library
class ElementLibrary:
    """The element library; by default `<data_dir>/elements/`: library.json under a file lock, originals beside it."""

    def __init__(self, data_dir: str | os.PathLike[str], records: ElementRecords | None = None,
                 originals: Originals | None = None) -> None:
        folder = Path(data_dir) / "elements"
        self.records = records or JsonRecords(folder / "library.json", folder)
        self.originals = originals or FolderOriginals(self.records.root / "files")
        self.root = self.records.root  # local paths in records are relative to it
        self.path: Path | None = getattr(self.records, "path", None)  # library.json; None in the database
        self.files_dir = self.originals.files_dir
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = self.records.lock
        self._seen = threading.local()  # what this thread last loaded: `_save` writes only the difference

    def version(self) -> object:
        """Changes whenever any element changes (on any server in team mode): a cache key for views."""
        return self.records.version()

    # reading ---------------------------------------------------------------
    def list(self) -> list[Element]:
        """Every element, sorted by name."""
        return sorted(self._load().values(), key=lambda e: (e.name.lower(), e.name))

    def get(self, element_id: str) -> Element | None:
        """The element with this id, or None."""
        return self._load().get(element_id)

    def by_name(self, name: str) -> Element | None:
        """The element with this name (names are unique ignoring case), or None."""
        found = [e for e in self._load().values() if e.name.lower() == name.lower()]
        return next((e for e in found if e.name == name), found[0] if found else None)

    def check_name(self, name: str, exclude_id: str | None = None) -> list[str]:
        """As-you-type messages for a name: its characters, length and uniqueness."""
        return rules.element_name_problems(name) + duplicate_problems(name, self._load().values(), exclude_id)

    def status(self, element: Element, now: datetime | None = None) -> UploadStatus:
        """The element's upload state at `now`."""
        return upload_status(element, now)

    def local_file(self, media: ElementMedia) -> Path | None:
        """A local file holding the stored original (in team mode fetched into the cache on demand), or None."""
        return self.originals.local_file(media)

    # editing ---------------------------------------------------------------
    def create(self, name: str, description: str, files: Iterable[FileInput] = (), urls: Iterable[str] = (),
               now: datetime | None = None, fetch: Fetcher | None = None) -> Element:
        """Check and save a new element as a draft (nothing uploaded yet); with `fetch`, each web address also
        gets a local copy (lib.elements.copies: a failed fetch keeps the address and says why). Raises ElementError."""
        stamp = iso_time(to_utc(now))
        incoming, kinds, file_problems = inspect_files(files)
        linked, url_problems = inspect_urls(urls)
        problems = (description_problems(description) + file_problems + url_problems
                    + count_problems(kinds + [m.kind for m in linked]))
        if fetch is not None and linked and not problems and not self.check_name(name):
            copied, linked = fetch_copies(linked, fetch)  # before the lock: a download may take seconds
            incoming += copied
        with self._lock:
            elements = self._load()
            problems = rules.element_name_problems(name) + duplicate_problems(name, elements.values(), None) + problems
            if problems:
                raise ElementError(problems)
            element_id = uuid.uuid4().hex[:12]
            taken: set[str] = set()
            try:
                stored = self._store(element_id, incoming, taken)
                media = tuple(stored + [replace(m, file_name=unique_file_name(m.file_name, taken)) for m in linked])
                element = Element(element_id, name, description.strip(), element_kind(media), media, stamp, stamp)
                elements[element_id] = element
                self._save(elements.values())
            except BaseException:
                shutil.rmtree(self._folder(element_id), ignore_errors=True)
                raise
        log.info("created element %s (%s)", element.name, element.id)
        return element

    def update(self, element_id: str, *, name: str | None = None, description: str | None = None,
               add_files: Iterable[FileInput] = (), add_urls: Iterable[str] = (),
               remove_media: Iterable[str] = (), now: datetime | None = None, fetch: Fetcher | None = None) -> Element:
        """Change the name, description or files (removing by file name); with `fetch`, added web addresses get a
        local copy as in `create`. Raises ElementError."""
        incoming, kinds, problems = inspect_files(add_files)
        linked, url_problems = inspect_urls(add_urls)
        link_kinds = [m.kind for m in linked]
        if fetch is not None and linked and not url_problems and not problems:
            copied, linked = fetch_copies(linked, fetch)  # before the lock: a download may take seconds
            incoming += copied
        with self._lock:
            elements = self._load()
            current = self._require(elements, element_id)
            remove = set(remove_media)
            names = [m.file_name for m in current.media]
            kept = [m for m in current.media if m.file_name not in remove]
            problems = ((rules.element_name_problems(name) + duplicate_problems(name, elements.values(), element_id) if name is not None else [])
                        + (description_problems(description) if description is not None else [])
                        + [f"'{f}' is not a file of '{current.name}': pick one of {', '.join(names)}."
                           for f in sorted(remove - set(names))]
                        + problems + url_problems + count_problems([m.kind for m in kept] + kinds + link_kinds))
            if problems:
                raise ElementError(problems)
            taken = {n.lower() for n in names}  # removed names too, so a new file never takes a doomed path
            stored = self._store(element_id, incoming, taken)
            media = tuple(kept + stored + [replace(m, file_name=unique_file_name(m.file_name, taken)) for m in linked])
            updated = replace(current, name=current.name if name is None else name,
                              description=current.description if description is None else description.strip(),
                              kind=element_kind(media), media=media, updated_at=iso_time(to_utc(now)))
            elements[element_id] = updated
            try:
                self._save(elements.values())
            except BaseException:
                for m in stored:
                    Path(m.local_path or "").unlink(missing_ok=True)
                raise
        self.originals.delete(m for m in current.media if m.file_name in remove)
        return updated

    def rename(self, element_id: str, new_name: str, now: datetime | None = None) -> Element:
        """Give an element a new name (its files and uploads stay)."""
        return self.update(element_id, name=new_name, now=now)

    def duplicate(self, element_id: str, now: datetime | None = None) -> Element:
        """Copy an element and its files under the name '<name>_copy' ('_copy2', … when taken)."""
        stamp = iso_time(to_utc(now))
        with self._lock:
            elements = self._load()
            source = self._require(elements, element_id)
            new_id = uuid.uuid4().hex[:12]
            folder = self._folder(new_id)
            try:
                media = tuple(self._copy_media(m, folder) for m in source.media)
                copy = replace(source, id=new_id, name=copy_name(source.name, elements.values()), media=media,
                               created_at=stamp, updated_at=stamp)
                elements[new_id] = copy
                self._save(elements.values())
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
        return copy

    def delete(self, element_id: str) -> None:
        """Remove an element and its stored originals."""
        with self._lock:
            elements = self._load()
            self._require(elements, element_id)
            del elements[element_id]
            self._save(elements.values())
        self.originals.delete_element(element_id)
        log.info("deleted element %s", element_id)

    # uploading -------------------------------------------------------------
    def upload(self, element_id: str, uploader: Uploader, method: str = "auto",
               now: datetime | None = None, force: Iterable[str] = ()) -> Element:
        """Upload every file that is missing, failed or expiring on KIE (and the files named in `force`, e.g.
        found gone by a liveness check); a failure is recorded, never raised."""
        if method not in LOCAL_METHODS:
            raise ValueError(f"Unknown upload method {method!r} for local files: use one of {', '.join(LOCAL_METHODS)}")
        now = to_utc(now)
        element = self._require(self._load(), element_id)
        # Upload outside the lock (it can take minutes), then merge into whatever is saved by then.
        forced = set(force)
        done = {m.file_name: upload_one(element, m, uploader, method, now, self.local_file)
                for m in element.media if needs_upload(m, now) or m.file_name in forced}
        if not done:
            return element
        with self._lock:
            elements = self._load()
            elements[element_id] = merge_uploads(self._require(elements, element_id), done)
            self._save(elements.values())
        return elements[element_id]

    def ensure_fresh(self, names: Iterable[str], uploader: Uploader, now: datetime | None = None,
                     method: str = "auto", is_alive: Callable[[str], bool] | None = None) -> list[Element]:
        """The named elements (names ignore case), re-uploaded first where expired or expiring, and where an
        upload older than 24 h is gone (`is_alive`, a cheap request) or older than 72 h; raises ElementError
        if any is unusable."""
        return ensure_fresh(self, names, uploader, to_utc(now), method, is_alive)

    # export and import -----------------------------------------------------
    def export_json(self) -> str:
        """The library as a `kling_elements` list plus our metadata under `kling_studio`; originals are not embedded."""
        return json.dumps([export_entry(e) for e in self.list()], indent=2, ensure_ascii=False)

    def import_json(self, text: str | bytes, now: datetime | None = None, on_clash: Mapping[str, str] | None = None,
                    only: Collection[str] | None = None) -> ImportResult:
        """Add the good entries of an export (or a kling_elements list); report the bad ones by name. A taken name
        is renamed or replaces the existing element when `on_clash` says so (lib.elements.transfer.add_imported)."""
        entries = import_entries(text)
        stamp = iso_time(to_utc(now))
        with self._lock:
            elements = self._load()
            result = add_imported(elements, entries, stamp, on_clash=on_clash, only=only)
            if result.added:
                self._save(elements.values())
        for element_id in result.replaced:
            self.originals.delete_element(element_id)
        return result

    def export_bundle(self) -> bytes:
        """The library as a portable zip: library.json plus the stored originals (lib.elements.bundle)."""
        return export_bundle(self.list(), self.local_file)

    def import_bundle(self, data: bytes, now: datetime | None = None, on_clash: Mapping[str, str] | None = None,
                      only: Collection[str] | None = None) -> ImportResult:
        """Add the good elements of a bundle with their originals (checked like uploads); clashes as for
        import_json. A refused bundle changes nothing."""
        bundle = open_bundle(data)
        stamp = iso_time(to_utc(now))
        try:
            with self._lock:
                elements = self._load()
                result, originals = add_bundled(elements, bundle, stamp, on_clash=on_clash, only=only)
                try:
                    for element_id, incoming in originals.items():
                        elements[element_id] = with_stored(elements[element_id], self._store(element_id, incoming, set()))
                    if result.added:
                        self._save(elements.values())
                except BaseException:
                    for element_id in originals:
                        self.originals.delete_element(element_id)
                    raise
        finally:
            bundle.close()
        for element_id in result.replaced:
            self.originals.delete_element(element_id)
        return result

    # storage ---------------------------------------------------------------
    def _load(self) -> dict[str, Element]:
        """Every saved element by id; remembered for this thread, so `_save` writes only what changed since."""
        elements = self.records.load()
        self._seen.elements = dict(elements)
        return elements

    def _save(self, elements: Iterable[Element]) -> None:
        """Store what changed since `_load` (per element): new originals first, then the records."""
        seen: dict[str, Element] = getattr(self._seen, "elements", {})
        wanted = {e.id: e for e in elements}
        changed = [e for element_id, e in wanted.items() if seen.get(element_id) != e]
        removed = [element_id for element_id in seen if element_id not in wanted]
        fresh = [m for e in changed for m in e.media if m.local_path and m.local_path not in
                 {old.local_path for old in (seen[e.id].media if e.id in seen else ())}]
        published = self.originals.publish(fresh)
        try:
            self.records.write(changed, removed)
        except BaseException:
            self.originals.delete(published)  # a record never names an original that is not kept, nor the reverse
            raise
        self._seen.elements = dict(wanted)

    def _require(self, elements: dict[str, Element], element_id: str) -> Element:
        if element_id not in elements:
            raise ElementError([f"No element with id '{element_id}': it may have been deleted. Reload the page."])
        return elements[element_id]

    def _folder(self, element_id: str) -> Path:
        return self.originals.folder(element_id)

    def _store(self, element_id: str, incoming: Sequence[Incoming], taken: set[str]) -> list[ElementMedia]:
        """Copy new originals into the element's folder; on failure the copies made so far are removed."""
        if not incoming:
            return []
        folder = self._folder(element_id)
        folder.mkdir(parents=True, exist_ok=True)
        stored: list[ElementMedia] = []
        try:
            for item in incoming:
                name = unique_file_name(safe_file_name(item.media.file_name), taken)
                write_atomically(folder / name, item.stream)
                stored.append(replace(item.media, file_name=name, local_path=str(folder / name)))
        except BaseException:
            for m in stored:
                Path(m.local_path or "").unlink(missing_ok=True)
            raise
        return stored

    def _copy_media(self, media: ElementMedia, folder: Path) -> ElementMedia:
        source = self.local_file(media)
        if source is None:
            return replace(media, local_path=None)
        folder.mkdir(parents=True, exist_ok=True)
        with source.open("rb") as fh:
            write_atomically(folder / source.name, fh)
        return replace(media, local_path=str(folder / source.name))

