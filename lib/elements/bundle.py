"""A portable element bundle: one zip with library.json and the originals, exported here, imported elsewhere.

Layout: `library.json` (an element export whose media name their `bundle_file`) and `files/<element id>/<file
name>`. On import the zip is untrusted: it is bounded before anything is unpacked (size, member count, each
member's size and packing ratio), a member is only ever looked up by the name library.json gives (validated
first) and read into memory, never extracted by its own name, and every file passes the same media checks as
an upload (lib.kling.media.check_media).
"""

from __future__ import annotations

import io
import json
import logging
import re
import zipfile
import zlib
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lib.elements.model import (
    Element,
    ElementError,
    ElementMedia,
    ImportResult,
    Incoming,
    count_problems,
    description_problems,
    element_kind,
    safe_file_name,
    unique_file_name,
    url_media,
)
from lib.elements.transfer import add_imported, export_entry, new_element_id
from lib.kling import rules
from lib.kling.media import check_media
from lib.trust.limits import (
    MAX_BUNDLE_BYTES,
    MAX_BUNDLE_MEMBERS,
    MAX_JSON_IMPORT_BYTES,
    MAX_ZIP_RATIO,
    InputTooLarge,
    check_size,
    loads_bounded,
)

log = logging.getLogger(__name__)

FORMAT = "kling-studio-elements-bundle"
VERSION = 1
INDEX = "library.json"
MAX_MEMBER_BYTES = rules.VIDEO_MAX_BYTES  # no original may be larger than the largest file KIE takes
_MEMBER = re.compile(r"files/[A-Za-z0-9_-]{1,64}/[A-Za-z0-9][A-Za-z0-9._-]{0,79}")
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
ZIP_MAGIC = b"PK\x03\x04"


def is_bundle(data: bytes) -> bool:
    """True when the bytes are a zip (a bundle) rather than JSON."""
    return data[:4] == ZIP_MAGIC


# ---------------------------------------------------------------- export

def export_bundle(elements: Iterable[Element], local_file: Callable[[ElementMedia], Path | None]) -> bytes:
    """The elements as a zip: library.json plus each stored original under files/<id>/<file name>."""
    out, entries = io.BytesIO(), []
    with zipfile.ZipFile(out, "w") as zf:
        for index, element in enumerate(elements, 1):
            entry = export_entry(element)
            folder = element.id if _ID.fullmatch(element.id) else f"element{index}"
            entry["kling_studio"]["originals"] = "in this bundle, under files/"
            for meta, media in zip(entry["kling_studio"]["media"], element.media, strict=True):
                path = local_file(media)
                if path is not None:
                    meta["bundle_file"] = f"files/{folder}/{safe_file_name(media.file_name)}"
                    zf.write(path, meta["bundle_file"], compress_type=zipfile.ZIP_STORED)  # media is compressed
            entries.append(entry)
        index_json = json.dumps({"format": FORMAT, "version": VERSION, "elements": entries}, indent=2,
                                ensure_ascii=False)
        zf.writestr(INDEX, index_json, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


# ---------------------------------------------------------------- reading, bounded

@dataclass
class Bundle:
    """An opened, bounded bundle: its entries and a reader that looks members up by validated name."""

    entries: list[Any]
    zf: zipfile.ZipFile
    members: dict[str, zipfile.ZipInfo]

    def read(self, name: object) -> bytes:
        """The bytes of the member library.json names (never a path); raises ElementError."""
        if not isinstance(name, str) or not _MEMBER.fullmatch(name) or ".." in name:
            raise ElementError([f"names a bundled file {str(name)[:60]!r} that is not files/<id>/<file name>"])
        info = self.members.get(name)
        if info is None:
            raise ElementError([f"names {name[:80]!r}, which is not in the bundle"])
        return self._unpack(info)

    def read_index(self) -> bytes:
        """The bytes of library.json."""
        return self._unpack(self.members[INDEX])

    def _unpack(self, info: zipfile.ZipInfo) -> bytes:
        name = info.filename
        try:
            with self.zf.open(info) as fh:
                data = fh.read(info.file_size + 1)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
            raise ElementError([f"{name[:80]}: the bundled file is damaged ({exc})"]) from None
        if len(data) > info.file_size:
            raise ElementError([f"{name[:80]}: the bundled file is larger than the zip says; refused"])
        return data

    def close(self) -> None:
        """Close the zip."""
        self.zf.close()


def _bounded_members(zf: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """Every member checked from the zip's directory before any is unpacked; raises ElementError."""
    infos = zf.infolist()
    if len(infos) > MAX_BUNDLE_MEMBERS:
        raise ElementError([f"This bundle has {len(infos):,} files; at most {MAX_BUNDLE_MEMBERS:,} are read."])
    members: dict[str, zipfile.ZipInfo] = {}
    total = 0
    for info in infos:
        label = info.filename[:80]
        if info.filename in members:
            raise ElementError([f"This bundle holds {label!r} twice: refused (which one would be meant?)."])
        if info.flag_bits & 0x1:
            raise ElementError([f"{label} is encrypted: bundles are never encrypted; refused."])
        limit = MAX_JSON_IMPORT_BYTES if info.filename == INDEX else MAX_MEMBER_BYTES
        try:
            check_size(info.file_size, limit, f"{label} in this bundle")
        except InputTooLarge as exc:
            raise ElementError([str(exc)]) from None
        if info.file_size > 1024 * 1024 and info.file_size > MAX_ZIP_RATIO * max(info.compress_size, 1):
            raise ElementError([f"{label} unpacks to over {MAX_ZIP_RATIO}× its packed size (a zip bomb); refused."])
        total += info.file_size
        members[info.filename] = info
    if total > MAX_BUNDLE_BYTES:
        raise ElementError([f"This bundle unpacks to {total / 2**20:.0f} MB; the limit is "
                            f"{MAX_BUNDLE_BYTES // 2**20} MB. Export fewer elements per bundle."])
    return members


def open_bundle(data: bytes) -> Bundle:
    """A bundle from the bytes of a zip, bounded and with its library.json parsed; raises ElementError."""
    try:
        check_size(len(data), MAX_BUNDLE_BYTES, "This bundle")
    except InputTooLarge as exc:
        raise ElementError([str(exc)]) from None
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as exc:
        raise ElementError([f"This is not a readable zip ({exc}): export a bundle again."]) from None
    try:
        members = _bounded_members(zf)
        bundle = Bundle([], zf, members)
        if INDEX not in members:
            raise ElementError([f"This zip has no {INDEX}: it is not an element bundle."])
        index = loads_bounded(bundle.read_index(), what=f"The bundle's {INDEX}")
    except (ElementError, InputTooLarge, ValueError) as exc:
        zf.close()
        problems = exc.problems if isinstance(exc, ElementError) else [f"The bundle's {INDEX} is unreadable ({exc})."]
        raise ElementError(problems) from None
    if not isinstance(index, dict) or index.get("format") != FORMAT or not isinstance(index.get("elements"), list):
        zf.close()
        raise ElementError([f"The bundle's {INDEX} is not a Kling Studio element bundle."])
    bundle.entries = index["elements"]
    return bundle


# ---------------------------------------------------------------- elements from a bundle

def _bundled_media(raw: object, bundle: Bundle, taken: set[str]) -> tuple[ElementMedia, Incoming | None]:
    """One media entry: its bundled original (checked like an upload) or, failing that, its web address."""
    if not isinstance(raw, dict) or raw.get("kind") not in ("image", "video"):
        raise ElementError(["lists a file without a kind (image or video)"])
    name = safe_file_name(raw["file_name"]) if isinstance(raw.get("file_name"), str) else f"file.{raw['kind']}"
    name = unique_file_name(name, taken)
    source = url_media(raw.get("source_url"), raw["kind"])[0] if isinstance(raw.get("source_url"), str) else None
    url = source.source_url if source else None
    if "bundle_file" not in raw:
        if url is None:
            raise ElementError([f"{name}: neither a bundled file nor a web address to upload from"])
        return replace(source, file_name=name), None  # type: ignore[arg-type]
    data = bundle.read(raw["bundle_file"])
    check = check_media(name, io.BytesIO(data))
    if not check.ok or check.kind != raw["kind"]:
        raise ElementError(list(check.problems) or [f"{name}: the bundled file is not the {raw['kind']} it claims"])
    media = ElementMedia(file_name=name, local_path=None, source_url=url, kind=check.kind, mime_type=check.mime_type,
                         size=check.size, width=check.width, height=check.height)
    return media, Incoming(media, io.BytesIO(data))


def bundled_element(entry: object, stamp: str, bundle: Bundle) -> tuple[Element, list[Incoming]]:
    """An imported element (new id, not uploaded) and the originals to store for it; raises ElementError."""
    if not isinstance(entry, dict):
        raise ElementError(["is not an element object"])
    name, description = entry.get("name"), entry.get("description")
    problems = (rules.element_name_problems(name) if isinstance(name, str) else ["has no name"]) \
        + description_problems(description)
    meta = entry.get("kling_studio") if isinstance(entry.get("kling_studio"), dict) else {}
    raws = meta.get("media") if isinstance(meta.get("media"), list) else []
    media, incoming, taken = [], [], set()
    for raw in raws[:rules.ELEMENT_IMAGES_MAX + 1]:  # one past the rule, so the count check names the problem
        try:
            item, original = _bundled_media(raw, bundle, taken)
        except ElementError as exc:
            problems += exc.problems
            continue
        media.append(item)
        incoming += [original] if original else []
    problems += count_problems([m.kind for m in media]) if media or not problems else []
    if problems:
        raise ElementError(problems)
    element = Element(new_element_id(), str(name), str(description).strip(), element_kind(media), tuple(media),
                      stamp, stamp)
    return element, incoming


def add_bundled(elements: dict[str, Element], bundle: Bundle, stamp: str,
                on_clash: Mapping[str, str] | None = None,
                only: Collection[str] | None = None) -> tuple[ImportResult, dict[str, list[Incoming]]]:
    """Add the bundle's good elements to `elements` (rename / replace / skip as for a JSON import), and the
    originals to store for each added element id."""
    pending: dict[str, list[Incoming]] = {}

    def build(entry: object, entry_stamp: str) -> Element:
        element, incoming = bundled_element(entry, entry_stamp, bundle)
        pending[element.id] = incoming
        return element

    result = add_imported(elements, bundle.entries, stamp, on_clash=on_clash, only=only, build=build)
    return result, {eid: files for eid, files in pending.items() if eid in elements}


def with_stored(element: Element, stored: Iterable[ElementMedia]) -> Element:
    """The element with its stored originals' local paths filled in (matched by file name)."""
    by_name = {m.file_name: m for m in stored}
    return replace(element, media=tuple(by_name.get(m.file_name, m) for m in element.media))
