"""Sending one element file to KIE: from its stored original, or by its web address; a failure is kept on the file."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from lib.elements.model import UPLOAD_PATH, Element, ElementError, ElementMedia, Uploader, iso_time, parse_time
from lib.kie.models import UPLOAD_LIFETIME, UploadedFile

log = logging.getLogger(__name__)

LocalFile = Callable[[ElementMedia], Path | None]


def failure_reason(exc: BaseException) -> str:
    """The error's message and its fix, as one line kept on the file."""
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    fix = getattr(exc, "fix", None)
    return f"{message} — {fix}" if fix else message


def upload_one(element: Element, media: ElementMedia, uploader: Uploader, method: str, now: datetime,
               local_file: LocalFile) -> ElementMedia:
    """The file with its new KIE URL and expiry, or with the reason the upload failed (never raises)."""
    try:
        result, used = _send(element, media, uploader, method, local_file)
    except Exception as exc:  # any failure is kept on the file, so the element stays a usable draft
        reason = failure_reason(exc)
        log.warning("upload of %s for element %s failed: %s", media.file_name, element.name, reason,
                    exc_info=not hasattr(exc, "fix"))
        return replace(media, upload_error=reason)
    uploaded = parse_time(getattr(result, "uploaded_at", None)) or now
    expires = parse_time(getattr(result, "expires_at", None)) or uploaded + UPLOAD_LIFETIME
    return replace(media, kie_url=str(result.download_url), uploaded_at=iso_time(uploaded),
                   expires_at=iso_time(expires), upload_error=None,
                   upload_method=getattr(result, "method", None) or used)


def _send(element: Element, media: ElementMedia, uploader: Uploader, method: str,
          local_file: LocalFile) -> tuple[UploadedFile, str]:
    path = local_file(media)
    upload_path = f"{UPLOAD_PATH}/{element.id}"
    if path is not None:
        with path.open("rb") as fh:
            return uploader(fh, file_name=media.file_name, upload_path=upload_path, method=method), method
    if media.source_url:
        return uploader(media.source_url, file_name=media.file_name, upload_path=upload_path, method="url"), "url"
    raise ElementError([f"{media.file_name}: the original file is gone ({media.local_path}) and there is no web "
                        "address to upload from: remove it and add the file again."])
