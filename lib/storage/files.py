"""Today's storage: a CSV ledger, a JSON element library, a drafts file and a videos folder in one data folder."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from lib.common.atomic import write_atomically
from lib.compose.drafts import DraftStore
from lib.elements.library import ElementLibrary
from lib.history.ledger import Ledger
from lib.kling.frames import thumbnail_or_none
from lib.storage.base import Storage
from lib.trust.paths import UnsafePath, existing_video, inside, safe_id, video_file, videos_dir

log = logging.getLogger(__name__)

THUMBNAILS = "thumbnails"


def thumbnail_file(root: str | os.PathLike[str], task_id: str) -> Path | None:
    """Where the thumbnail of `task_id` lives under `root`: `thumbnails/<safe id>.jpg` (None for an unusable id)."""
    try:
        return inside(root, THUMBNAILS, f"{safe_id(task_id)}.jpg")
    except UnsafePath:
        return None


def write_thumbnail(video: Path, target: Path) -> bool:
    """Make `target` from the first frame of `video`; False (logged at debug) when the video gives none."""
    jpeg = thumbnail_or_none(video)
    if jpeg is None:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(target, jpeg, fsync=False)  # a lost thumbnail is simply made again
    return True


class FileMedia:
    """Archived videos in `<data_dir>/videos/<task id>.mp4` (the name derived from the id, checked inside)."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.data_dir = Path(data_dir)
        self._undecodable: dict[str, int] = {}  # task id -> mtime of a video that gave no frame (not retried)

    def staging_dir(self) -> Path:
        """Downloads land in the videos folder itself (atomically renamed into place)."""
        return videos_dir(self.data_dir)  # created by the download itself, only once one succeeds

    def put_video(self, task_id: str, path: Path) -> None:
        """Move a downloaded file to the video's own name (a no-op when it is already there)."""
        target = video_file(self.data_dir, task_id)
        if Path(path).resolve() != target:
            os.replace(path, target)
        self._drop_thumbnail(task_id)  # a new video gets a new thumbnail
        self.thumbnail(task_id)

    def video(self, task_id: str) -> Path | None:
        """The archived video of `task_id`, or None."""
        return existing_video(self.data_dir, task_id)

    def delete_video(self, task_id: str) -> bool:
        """Remove the archived video of `task_id` (only ever the app's own file)."""
        path = existing_video(self.data_dir, task_id)
        if path is None:
            return False
        path.unlink(missing_ok=True)
        self._drop_thumbnail(task_id)
        log.info("deleted the archived video of %s", task_id)
        return True

    def _drop_thumbnail(self, task_id: str) -> None:
        self._undecodable.pop(task_id, None)
        thumb = thumbnail_file(self.data_dir, task_id)
        if thumb is not None:
            thumb.unlink(missing_ok=True)

    def thumbnail(self, task_id: str) -> Path | None:
        """A small JPEG of the archived video's first frame, made on first use (videos archived before
        thumbnails existed get one then); None when there is no video or it cannot be decoded."""
        video, target = existing_video(self.data_dir, task_id), thumbnail_file(self.data_dir, task_id)
        if video is None or target is None:
            return None
        if target.is_file():
            return target
        mtime = video.stat().st_mtime_ns
        if self._undecodable.get(task_id) == mtime or not write_thumbnail(video, target):
            self._undecodable[task_id] = mtime
            return None
        return target


def open_file_storage(data_dir: str | os.PathLike[str]) -> Storage:
    """The file-based storage of one data folder (the default; KLING_STUDIO_DATA)."""
    folder = Path(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return Storage(ledger=Ledger.in_dir(folder), library=ElementLibrary(folder), drafts=DraftStore(folder),
                   media=FileMedia(folder))


_shared: dict[str, Storage] = {}
_shared_lock = threading.Lock()


def shared_file_storage(data_dir: str | os.PathLike[str]) -> Storage:
    """One storage per data folder and process, shared by the server's follower and every session."""
    key = str(Path(data_dir).resolve())
    with _shared_lock:
        if key not in _shared:
            _shared[key] = open_file_storage(key)
        return _shared[key]
