"""Data is never a path: the app reads, serves and deletes only files it wrote, found by ids it made."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

_SAFE_CHARS = re.compile(r"[^A-Za-z0-9_-]")
MAX_ID_CHARS = 100


class UnsafePath(ValueError):
    """A path built from data would leave the data folder (or an id is unusable as a file name)."""


def safe_id(text: str) -> str:
    """A file-name-safe form of an id (letters, digits, _ and - only); altered ids get a short hash suffix,
    so two different ids never share a file name."""
    text = str(text).strip()
    if not text:
        raise UnsafePath("The id is empty, so it cannot name a file.")
    safe = _SAFE_CHARS.sub("_", text)[:MAX_ID_CHARS]
    if safe != text:
        safe += "-" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return safe


def inside(root: str | os.PathLike[str], *parts: str) -> Path:
    """`root/part/...` resolved, or UnsafePath when the result is not strictly inside `root`
    (absolute parts, `..`, NUL bytes and symlinks that point outside are all refused)."""
    base = Path(root).resolve()
    for part in parts:
        if not part or "\x00" in part or Path(part).is_absolute():
            raise UnsafePath(f"{part[:60]!r} is not a plain name inside the data folder.")
    target = base.joinpath(*parts).resolve()
    if target == base or not target.is_relative_to(base):
        raise UnsafePath(f"{'/'.join(parts)[:80]!r} would leave the data folder; refused.")
    return target


def is_inside(root: str | os.PathLike[str], path: str | os.PathLike[str]) -> bool:
    """True when `path` (resolved, symlinks followed) lies strictly inside `root`."""
    try:
        base, target = Path(root).resolve(), Path(path).resolve()
    except (OSError, ValueError):
        return False
    return target != base and target.is_relative_to(base)


def videos_dir(data_dir: str | os.PathLike[str]) -> Path:
    """The folder that holds archived result videos: `<data_dir>/videos`."""
    return Path(data_dir) / "videos"


def video_file(data_dir: str | os.PathLike[str], task_id: str) -> Path:
    """Where the app archives the result video of `task_id` (derived from the id, checked to be inside)."""
    return inside(data_dir, "videos", f"{safe_id(task_id)}.mp4")


def existing_video(data_dir: str | os.PathLike[str], task_id: str) -> Path | None:
    """The archived video of `task_id` when the app saved one; never a path taken from a row or an import."""
    try:
        path = video_file(data_dir, task_id)
    except UnsafePath:
        return None
    return path if path.is_file() else None
