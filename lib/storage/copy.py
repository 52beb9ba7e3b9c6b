"""Move a data folder into team storage and back: `python -m lib.storage.copy --from DIR --to DATABASE_URL`.

    python -m lib.storage.copy --from ./data --to postgresql+psycopg://u@db/kling --media s3://bucket/kling
    python -m lib.storage.copy --from postgresql+psycopg://u@db/kling --media s3://bucket/kling --to ./data

History rows, drafts, the element library and, with `--media`, archived videos and element originals are copied;
anything already at the destination is left as it is, so running it twice adds nothing. Rows and element records
keep every field (imported rows stay records). The source is never changed.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lib.compose.drafts import DraftStore
from lib.elements.library import ElementLibrary
from lib.history.transfer import ImportReport
from lib.storage.base import DraftsStore, MediaStore, Storage
from lib.storage.copy_library import copy_library
from lib.storage.open import StorageChoice, build_storage
from lib.storage.s3 import S3Media, video_name
from lib.storage.sql import SqlDrafts, redacted

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CopyReport:
    """How many of each kind were added at the destination, and how many were already there."""

    rows: tuple[int, int]
    drafts: tuple[int, int]
    videos: tuple[int, int]
    elements: tuple[int, int] = (0, 0)
    originals: tuple[int, int] = (0, 0)

    def lines(self) -> list[str]:
        return [f"{what}: {new} added, {old} already there"
                for what, (new, old) in (("history rows", self.rows), ("drafts", self.drafts),
                                         ("videos", self.videos), ("elements", self.elements),
                                         ("element originals", self.originals))]


def _is_url(text: str) -> bool:
    return "://" in text


def _copy_drafts(source: DraftsStore, target: DraftsStore) -> tuple[int, int]:
    every = source.all() if isinstance(source, DraftStore | SqlDrafts) else {}
    there = set(target.names())
    todo = [(name, entry) for name, entry in every.items() if name not in there]
    if isinstance(target, SqlDrafts):
        added = target.put_raw((name, str(e.get("saved_at", "")), dict(e.get("form", {}))) for name, e in todo)
    else:
        added = [target.save(name, source.load(name)) for name, _ in todo]
    return len(added), len(every) - len(added)


def _video_ids(media: MediaStore, task_ids: Sequence[str]) -> set[str]:
    """The task ids (of `task_ids`) whose video `media` holds; one listing for a bucket, not a request each."""
    if isinstance(media, S3Media):
        names = set(media.blobs.names("videos/"))
        return {t for t in task_ids if video_name(t) in names}
    return {t for t in task_ids if media.video(t) is not None}


def _copy_videos(source: MediaStore, target: MediaStore, task_ids: Sequence[str]) -> tuple[int, int]:
    have = _video_ids(source, task_ids)
    there = _video_ids(target, sorted(have))
    for task_id in sorted(have - there):
        local = source.video(task_id)
        if local is None:  # removed meanwhile
            continue
        staging = target.staging_dir()
        staging.mkdir(parents=True, exist_ok=True)
        staged = staging / f".copy-{uuid.uuid4().hex}.mp4"
        shutil.copyfile(local, staged)  # put_video moves its file: never hand it the source's own
        target.put_video(task_id, staged)
    return len(have - there), len(there)


def copy_storage(source: Storage, target: Storage, media: bool = True) -> CopyReport:
    """Copy history, drafts and the element library from `source` to `target`, adding only what is missing; with
    `media`, videos and element originals too (without a bucket the team side keeps no files worth copying to)."""
    rows = source.ledger.rows()
    merged = target.ledger.merge(ImportReport(rows_ok=rows))
    videos = _copy_videos(source.media, target.media, [r.task_id for r in rows]) if media else (0, 0)
    elements, originals = (0, 0), (0, 0)
    if isinstance(source.library, ElementLibrary) and isinstance(target.library, ElementLibrary):
        elements, originals = copy_library(source.library, target.library, originals=media)
    return CopyReport((len(merged.added), len(merged.skipped)), _copy_drafts(source.drafts, target.drafts),
                      videos, elements, originals)


def _choices(args: argparse.Namespace, scratch: Path) -> tuple[StorageChoice, StorageChoice]:
    """(source, target); the team side caches in `scratch`, so neither folder gains a cache."""
    if _is_url(args.source) == _is_url(args.target):
        raise SystemExit("Give one data folder and one database URL: --from DIR --to URL, or --from URL --to DIR.")
    if _is_url(args.target):
        folder = Path(args.source)
        if not folder.is_dir():
            raise SystemExit(f"{folder} is not a folder.")
        return StorageChoice(folder), StorageChoice(scratch, args.target, args.media)
    return StorageChoice(scratch, args.source, args.media), StorageChoice(Path(args.target))


def main(argv: Sequence[str] | None = None) -> int:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m lib.storage.copy", description=__doc__.split("\n")[0])
    parser.add_argument("--from", dest="source", required=True, help="a data folder or a database URL")
    parser.add_argument("--to", dest="target", required=True, help="a database URL or a data folder")
    parser.add_argument("--media", help="the team bucket, s3://bucket/prefix (videos stay in the folder without it)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="kling-copy-") as scratch:
        source_choice, target_choice = _choices(args, Path(scratch))
        report = copy_storage(build_storage(source_choice), build_storage(target_choice), media=bool(args.media))
    where = redacted(args.target) if _is_url(args.target) else args.target
    print(f"Copied into {where}:")
    for line in report.lines():
        print(f"  {line}")
    if not args.media:
        print("  (no --media given: videos and element originals stay in the data folder)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
