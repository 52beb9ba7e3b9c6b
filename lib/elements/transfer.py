"""Elements as JSON: the library.json record format, and export/import of `kling_elements` lists."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from lib.elements.model import (
    Element,
    ElementError,
    ElementMedia,
    ImportResult,
    copy_name,
    count_problems,
    description_problems,
    duplicate_problems,
    element_kind,
    element_spec,
    parse_time,
    safe_file_name,
    unique_file_name,
    url_media,
)
from lib.kling import rules
from lib.kling.job import element_entry
from lib.trust.limits import MAX_JSON_IMPORT_BYTES, InputTooLarge, loads_bounded

log = logging.getLogger(__name__)

_EXPORT_MEDIA_FIELDS = ("file_name", "kind", "mime_type", "size", "width", "height", "source_url", "kie_url",
                        "uploaded_at", "expires_at")


def export_entry(element: Element) -> dict[str, Any]:
    """One element as a `kling_elements` entry plus our metadata under `kling_studio`."""
    urls = [m.kie_url or m.source_url for m in element.media if m.kie_url or m.source_url]
    media = [{f: getattr(m, f) for f in _EXPORT_MEDIA_FIELDS if getattr(m, f) is not None} for m in element.media]
    meta = {"id": element.id, "kind": element.kind, "originals": "not embedded (local copies stay on this machine)",
            "media": media}
    return {**element_entry(element_spec(element, urls)), "kling_studio": meta}


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}
    return names.get(type(value), "a number")


def import_entries(text: str | bytes) -> list[Any]:
    """The list of entries in an export, a kling_elements list or a createTask payload; raises ElementError."""
    try:
        data = loads_bounded(text, max_bytes=MAX_JSON_IMPORT_BYTES, what="This file")
    except InputTooLarge as exc:
        raise ElementError([str(exc)]) from None
    except (ValueError, TypeError) as exc:
        raise ElementError([f"This is not JSON ({exc}): paste an element export or a kling_elements list."]) from exc
    if isinstance(data, dict):
        inner = data["input"] if isinstance(data.get("input"), dict) else data
        data = inner["kling_elements"] if "kling_elements" in inner else [data] if "name" in data else data
    if not isinstance(data, list):
        raise ElementError([f"Expected a list of elements (an export or a kling_elements list), "
                            f"but this JSON is {_json_type(data)}."])
    if not data:
        raise ElementError(["The list is empty: there is nothing to import."])
    return data


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _with_meta(media: ElementMedia, url: str, meta: dict[str, Any] | None) -> ElementMedia:
    """Restore exported metadata; a still-valid KIE URL stays usable, every URL stays a source to re-upload from."""
    if not meta:
        return media
    text = {k: meta[k] if isinstance(meta.get(k), str) else None
            for k in ("file_name", "mime_type", "source_url", "kie_url", "uploaded_at", "expires_at")}
    source = text["source_url"] if text["source_url"] and url_media(text["source_url"], media.kind)[0] else url
    kept_upload = text["kie_url"] == url and parse_time(text["expires_at"]) is not None
    return replace(media, file_name=safe_file_name(text["file_name"]) if text["file_name"] else media.file_name,
                   source_url=source, mime_type=text["mime_type"], size=_int_or_none(meta.get("size")),
                   width=_int_or_none(meta.get("width")), height=_int_or_none(meta.get("height")),
                   kie_url=url if kept_upload else None,
                   uploaded_at=text["uploaded_at"] if kept_upload else None,
                   expires_at=text["expires_at"] if kept_upload else None)


def element_from_entry(entry: object, stamp: str) -> Element:
    """An imported element (new id) from one export or kling_elements entry; raises ElementError."""
    if not isinstance(entry, dict):
        raise ElementError([f"is {_json_type(entry)}, not an element object with name, description and URLs"])
    name, description = entry.get("name"), entry.get("description")
    problems = (rules.element_name_problems(name) if isinstance(name, str) else ["has no name"]) + description_problems(description)
    meta = entry.get("kling_studio") if isinstance(entry.get("kling_studio"), dict) else {}
    by_url: dict[str, dict[str, Any]] = {}
    for raw in meta.get("media") if isinstance(meta.get("media"), list) else []:
        for key in ("kie_url", "source_url"):
            if isinstance(raw, dict) and isinstance(raw.get(key), str):
                by_url.setdefault(raw[key], raw)
    media: list[ElementMedia] = []
    for key, kind in (("element_input_urls", None), ("element_input_video_urls", "video")):
        value = entry.get(key, [])
        if not isinstance(value, list):
            problems.append(f"{key} must be a list of URLs")
            continue
        for url in value:
            guess = kind or ("video" if isinstance(url, str) and rules.looks_like_video_url(url) else "image")
            item, errs = url_media(url, guess)
            problems.extend(errs)
            if item is not None:
                media.append(_with_meta(item, item.source_url or "", by_url.get(url)))
    if not media and meta.get("media"):
        problems.append("has no URLs: its files were never uploaded. Upload it in the library it came from, "
                        "then export again.")
    else:
        problems += count_problems([m.kind for m in media])
    if problems:
        raise ElementError(problems)
    taken: set[str] = set()
    media = [replace(m, file_name=unique_file_name(m.file_name, taken)) for m in media]
    return Element(new_element_id(), str(name), str(description).strip(), element_kind(media), tuple(media),
                   stamp, stamp)


def new_element_id() -> str:
    """A fresh element id (12 hex digits: also a safe folder name)."""
    return uuid.uuid4().hex[:12]


CLASH_CHOICES = ("rename", "replace", "skip")


def add_imported(elements: dict[str, Element], entries: Sequence[Any], stamp: str,
                 on_clash: Mapping[str, str] | None = None, only: Collection[str] | None = None,
                 build: Callable[[Any, str], Element] = element_from_entry) -> ImportResult:
    """Add each good entry to `elements` (keyed by id); the result names the added and the refused entries.
    `build` makes the element of one entry (a bundle's builder also reads its originals).

    A taken name (ignoring case) is a clash: refused unless `on_clash[name.lower()]` says "rename" (to a free
    name) or "replace" (the existing element goes). `only` limits the import to those names (ignoring case)."""
    result, choices = ImportResult(), {k.lower(): v for k, v in (on_clash or {}).items()}
    wanted = {n.lower() for n in only} if only is not None else None
    for index, entry in enumerate(entries, 1):
        label: str | int = entry["name"] if isinstance(entry, dict) and isinstance(entry.get("name"), str) \
            and entry["name"].strip() else index
        if wanted is not None and (not isinstance(label, str) or label.lower() not in wanted):
            continue
        try:
            element = build(entry, stamp)
            clash = next((e for e in elements.values() if e.name.lower() == element.name.lower()), None)
            choice = choices.get(element.name.lower(), "")
            if clash is not None and choice == "rename":
                element = replace(element, name=copy_name(element.name, elements.values()))
            elif clash is not None and choice == "replace":
                del elements[clash.id]
                result.replaced.append(clash.id)
            elif clash is not None:
                if choice != "skip":
                    result.clashes.append(element.name)
                raise ElementError(duplicate_problems(element.name, elements.values(), None))
        except ElementError as exc:
            result.bad.append((label, "; ".join(exc.problems)))
            continue
        elements[element.id] = element
        result.added.append(element.name)
    return result


def element_from_json(item: dict[str, Any], root: Path) -> Element:
    """An element from its library.json record (local paths are relative to `root`); raises ValueError/KeyError."""
    if item["kind"] not in ("images", "video"):
        raise ValueError(f"element {item.get('name')!r} has unknown kind {item['kind']!r}")
    media = []
    for raw in item["media"]:
        values = {f: raw.get(f) for f in ElementMedia.__dataclass_fields__}
        if not isinstance(values["file_name"], str) or values["kind"] not in ("image", "video"):
            raise ValueError(f"element {item.get('name')!r} has a file without a name or kind")
        if values["local_path"]:
            values["local_path"] = str(root / values["local_path"])
        media.append(ElementMedia(**values))
    return Element(id=str(item["id"]), name=str(item["name"]), description=str(item.get("description") or ""),
                   kind=item["kind"], media=tuple(media), created_at=str(item["created_at"]),
                   updated_at=str(item.get("updated_at") or item["created_at"]))


def element_to_json(element: Element, root: Path) -> dict[str, Any]:
    """The element's library.json record, with local paths stored relative to `root`."""
    data = {f: getattr(element, f) for f in ("id", "name", "description", "kind", "created_at", "updated_at")}
    data["media"] = [{f: getattr(m, f) for f in ElementMedia.__dataclass_fields__} for m in element.media]
    for raw in data["media"]:
        if raw["local_path"]:  # stored relative, so the data folder can move
            path = Path(raw["local_path"])
            raw["local_path"] = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
    return data
