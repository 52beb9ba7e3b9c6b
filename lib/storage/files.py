"""Today's storage: a CSV ledger, a JSON element library, a drafts file and a videos folder in one data folder."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from lib.compose.drafts import DraftStore
from lib.elements.library import ElementLibrary
from lib.history.ledger import Ledger
from lib.storage.base import Storage
from lib.trust.paths import existing_video, video_file, videos_dir

log = logging.getLogger(__name__)


class FileMedia:
    """Archived videos in `<data_dir>/videos/<task id>.mp4` (the name derived from the id, checked inside)."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.data_dir = Path(data_dir)

    def staging_dir(self) -> Path:
        """Downloads land in the videos folder itself (atomically renamed into place)."""
        return videos_dir(self.data_dir)  # created by the download itself, only once one succeeds

    def put_video(self, task_id: str, path: Path) -> None:
        """Move a downloaded file to the video's own name (a no-op when it is already there)."""
        target = video_file(self.data_dir, task_id)
        if Path(path).resolve() != target:
            os.replace(path, target)

    def video(self, task_id: str) -> Path | None:
        """The archived video of `task_id`, or None."""
        return existing_video(self.data_dir, task_id)

    def delete_video(self, task_id: str) -> bool:
        """Remove the archived video of `task_id` (only ever the app's own file)."""
        path = existing_video(self.data_dir, task_id)
        if path is None:
            return False
        path.unlink(missing_ok=True)
        log.info("deleted the archived video of %s", task_id)
        return True


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
