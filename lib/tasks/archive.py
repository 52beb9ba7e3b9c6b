"""Save a task's result video into `<data_dir>/videos/` before KIE's URL expires (capped, timed, http(s) only).

The download goes through the one server-side fetch (`lib.trust.fetch`); the file name comes from the task id
(`lib.trust.paths`), never from the URL or a row.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from collections.abc import Callable, Collection
from pathlib import Path

import requests

from lib.trust import fetch
from lib.trust.fetch import Allowance, FetchRefused
from lib.trust.paths import UnsafePath, safe_id

logger = logging.getLogger(__name__)


MAX_VIDEO_BYTES = 200 * 2**20
DEFAULT_TIMEOUT = (5.0, 60.0)
MAX_SECONDS = 600.0


class ArchiveError(FetchRefused):
    """A result video could not be saved; the message says why in plain words."""


def _size(n: int) -> str:
    return f"{n / 2**20:.0f} MB" if n >= 2**20 else f"{n / 2**10:.0f} KB"


def safe_task_id(task_id: str) -> str:
    """A file-name-safe form of a task id (no path separators or dots); altered ids get a short hash suffix."""
    try:
        return safe_id(task_id)
    except UnsafePath:
        raise ArchiveError("The task id is empty, so the video has no file name.") from None


def archived_path(dest_dir: Path, task_id: str) -> Path:
    """Where archive_result saves the video of `task_id`."""
    return Path(dest_dir) / f"{safe_task_id(task_id)}.mp4"


def _check_response(response: requests.Response, max_bytes: int) -> None:
    if response.status_code != 200:
        hint = " The link has probably expired (KIE keeps results about 24 hours)." if response.status_code in (
            403, 404, 410) else ""
        raise ArchiveError(f"The result server answered HTTP {response.status_code}.{hint}")
    length = response.headers.get("Content-Length", "")
    if length.strip().isdigit() and int(length) > max_bytes:
        raise ArchiveError(
            f"The video is {_size(int(length))}, over the {_size(max_bytes)} limit; not downloaded."
        )


def archive_result(
    url: str, dest_dir: Path, task_id: str, *, allowed_urls: Collection[str], max_bytes: int = MAX_VIDEO_BYTES,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT, session: requests.Session | None = None,
    allow_private: Allowance = False, max_seconds: float = MAX_SECONDS, clock: Callable[[], float] = time.monotonic,
) -> Path:
    """Download the result video of `task_id` to `dest_dir/<task_id>.mp4` atomically and return its path.

    Only a URL that KIE returned for this task (`allowed_urls`) is fetched, under the fetch rules of
    lib.trust.fetch: public addresses only, except the origins `allow_private` names (the sandbox's own).
    """
    target = archived_path(dest_dir, task_id)
    try:
        fetch.check_url(url, allow_private=True)  # scheme and host now; the address rule runs on every hop
        if url not in allowed_urls:
            raise ArchiveError(f"This link was not returned by KIE for task {task_id}; it will not be downloaded.")
        response = fetch.open_url(url, allow_private=allow_private, timeout=timeout, session=session)
        try:
            _check_response(response, max_bytes)
            target.parent.mkdir(parents=True, exist_ok=True)
            _download(response, target, max_bytes, clock() + max_seconds, clock)
        finally:
            fetch.close(response)
    except ArchiveError:
        raise
    except FetchRefused as exc:
        raise ArchiveError(str(exc)) from None
    logger.info("Archived the video of task %s to %s", task_id, target)
    return target


def _download(response: requests.Response, target: Path, max_bytes: int, deadline: float,
              clock: Callable[[], float]) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            size = fetch.stream_capped(response, fh, max_bytes, deadline, clock, what="The video")
            fh.flush()
            os.fsync(fh.fileno())
        if size == 0:
            raise ArchiveError("The result server sent an empty file.")
        with open(tmp, "rb") as fh:
            head = fh.read(12)
        if head[4:8] != b"ftyp":
            raise ArchiveError(f"The download is not an MP4 video (it starts with {head[:12]!r}).")
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
