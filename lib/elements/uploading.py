"""Uploading element files to KIE: one file from its stored original or by its web address (a failure is kept on
the file), merging results into what is saved by then, and making named elements fresh before a job uses them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Protocol

from lib.elements.model import (
    UPLOAD_PATH,
    Element,
    ElementError,
    ElementMedia,
    Uploader,
    iso_time,
    needs_upload,
    parse_time,
    reference_advice,
    stale_uploads,
    upload_status,
)
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


_UPLOAD_FIELDS = ("kie_url", "uploaded_at", "expires_at", "upload_error", "upload_method")


def merge_uploads(current: Element, done: Mapping[str, ElementMedia]) -> Element:
    """`current` (as saved now) with the upload results in `done` (by file name), for files that are still the
    same original; a file replaced or removed meanwhile keeps what is saved."""
    def merged(m: ElementMedia) -> ElementMedia:
        new = done.get(m.file_name)
        if new is None or (m.local_path, m.source_url) != (new.local_path, new.source_url):
            return m
        return replace(m, **{f: getattr(new, f) for f in _UPLOAD_FIELDS})
    return replace(current, media=tuple(merged(m) for m in current.media))


class FreshLibrary(Protocol):
    """What `ensure_fresh` needs of a library."""

    def by_name(self, name: str) -> Element | None: ...
    def list(self) -> list[Element]: ...
    def upload(self, element_id: str, uploader: Uploader, method: str = "auto", now: datetime | None = None,
               force: Iterable[str] = ()) -> Element: ...


def ensure_fresh(library: FreshLibrary, names: Iterable[str], uploader: Uploader, now: datetime, method: str,
                 is_alive: Callable[[str], bool] | None) -> list[Element]:
    """The named elements, re-uploaded first where needed (ElementLibrary.ensure_fresh); raises ElementError."""
    wanted = list(dict.fromkeys(names))
    found = {name: library.by_name(name) for name in wanted}
    known = [e.name for e in library.list()]
    problems = [reference_advice(n, known) for n, e in found.items() if e is None or e.name != n]
    if problems:
        raise ElementError(problems)
    ready = []
    for element in found.values():
        assert element is not None
        gone = stale_uploads(element, now, is_alive)
        if gone or any(needs_upload(m, now) for m in element.media):
            element = library.upload(element.id, uploader, method=method, now=now, force=gone)
        ready.append(element)
    problems = [f"@{e.name}: {st.detail}" for e in ready if (st := upload_status(e, now)).label != "uploaded"]
    if problems:
        raise ElementError(problems)
    return ready
