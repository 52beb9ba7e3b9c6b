"""The element library's part of the copy command: records and originals from one library into another.

An element is added when its id is not at the destination yet (its name free there, ignoring case); an original is
copied when the destination lacks it. So running the copy twice adds nothing. Records keep every field; only the
local paths are re-rooted to the destination's files folder (`files/<id>/<name>` either way).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from lib.elements.library import ElementLibrary
from lib.elements.model import Element, ElementMedia
from lib.elements.originals import original_parts
from lib.storage.s3_originals import S3Originals, original_name

log = logging.getLogger(__name__)

Counts = tuple[int, int]  # (added, already there)


def _rebased(element: Element, source: ElementLibrary, target: ElementLibrary) -> Element:
    """The element with each stored original's local path inside the target's files folder."""
    def move(media: ElementMedia) -> ElementMedia:
        parts = original_parts(source.files_dir, media)
        return replace(media, local_path=str(target.files_dir.joinpath(*parts)) if parts else None)
    return replace(element, media=tuple(move(m) if m.local_path else m for m in element.media))


def _present(target: ElementLibrary) -> set[str] | None:
    """The bucket's original names (one listing), or None when the target keeps originals in a folder."""
    return target.originals.names() if isinstance(target.originals, S3Originals) else None


def _copy_originals(pairs: Iterable[tuple[ElementMedia, ElementMedia]], source: ElementLibrary,
                    target: ElementLibrary) -> Counts:
    """Copy each (source media, target media) original the target lacks; the target publishes what it got."""
    listed, added, there = _present(target), 0, 0
    for theirs, ours in pairs:
        parts = original_parts(target.files_dir, ours)
        if parts is None or ours.local_path is None:
            continue
        if (original_name(*parts) in listed) if listed is not None else Path(ours.local_path).is_file():
            there += 1
            continue
        local = source.local_file(theirs)
        if local is None:  # the source has lost it too: nothing to copy
            continue
        Path(ours.local_path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local, ours.local_path)
        target.originals.publish([ours])
        added += 1
    return added, there


def copy_library(source: ElementLibrary, target: ElementLibrary, originals: bool = True) -> tuple[Counts, Counts]:
    """Copy elements (by id) and, when `originals`, their files; ((elements), (originals)) as (added, there)."""
    with target.records.lock:
        existing = target.records.load()
        taken = {e.name.lower() for e in existing.values()}
        new: list[Element] = []
        known = 0
        for element in source.records.load().values():
            if element.id in existing:
                known += 1
            elif element.name.lower() in taken:
                log.warning("element %s (%s) not copied: the name is taken at the destination", element.name,
                            element.id)
            else:
                new.append(_rebased(element, source, target))
                taken.add(element.name.lower())
        files = (0, 0)
        if originals:
            mine = {e.id: e for e in source.records.load().values()}
            wanted = [*new, *existing.values()]
            files = _copy_originals(((t, o) for e in wanted if e.id in mine
                                     for t in mine[e.id].media for o in e.media
                                     if t.file_name == o.file_name and t.local_path), source, target)
        if new:
            target.records.write(new, ())
    return (len(new), known), files
