"""Take chains: continue a finished take from its last frame, keeping its elements and settings."""

from __future__ import annotations

import copy
from typing import Any

from lib.compose.form import upload_frame
from lib.elements.model import Uploader
from lib.history.row import HistoryRow
from lib.reel.clips import ReelError, last_frame_png
from lib.storage.base import MediaStore
from lib.trust.paths import safe_id


def continue_fork(row: HistoryRow, media: MediaStore, uploader: Uploader) -> dict[str, Any]:
    """What Compose's fork hand-off needs to continue `row`: its payload with the take's last frame (uploaded
    like any frame) as the first frame; no last frame, no callback, the same elements and settings."""
    video = media.video(row.task_id)
    if video is None:
        raise ReelError(f"Take {row.task_id} has no saved video: save it locally first.")
    upload = upload_frame(uploader, f"{safe_id(row.task_id)}-last.png", last_frame_png(video))
    if upload.url is None:
        raise ReelError("; ".join(upload.problems) or "The last frame could not be uploaded.")
    payload = copy.deepcopy(row.payload)
    payload.pop("callBackUrl", None)
    inner = payload.setdefault("input", {})
    inner["image_urls"] = [upload.url]
    inner.pop("aspect_ratio", None)  # the frame decides the ratio
    return {"payload": payload, "task_id": row.task_id}
