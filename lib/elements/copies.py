"""Local copies of URL-sourced element media: fetched once when the element is made, under the one fetch rule
(lib.trust.fetch: public addresses only, size and time capped), and checked like an upload. A failed fetch keeps
the web address (KIE's URL upload still works) and records, in plain words, why no copy was kept."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace

from lib.elements.model import ElementMedia, Incoming
from lib.kling import rules
from lib.kling.media import check_media
from lib.trust.fetch import Allowance, FetchRefused, fetch_bytes

log = logging.getLogger(__name__)

Fetcher = Callable[[str, int], bytes]  # (url, max bytes) -> the file's bytes; raises FetchRefused
CONNECT_READ_TIMEOUT = (5.0, 10.0)
MAX_SECONDS = 20.0  # one file; a create with four addresses waits at most about a minute and a half


def url_fetcher(allow_private: Allowance = False) -> Fetcher:
    """A Fetcher under the fetch rule; `allow_private` names the sandbox's own origin in sandbox mode."""
    def fetch(url: str, max_bytes: int) -> bytes:
        data, _ = fetch_bytes(url, max_bytes=max_bytes, allow_private=allow_private, timeout=CONNECT_READ_TIMEOUT,
                              max_seconds=MAX_SECONDS)
        return data

    return fetch


def _limit(kind: str) -> int:
    return rules.VIDEO_MAX_BYTES if kind == "video" else rules.IMAGE_MAX_BYTES


def fetch_copy(media: ElementMedia, fetch: Fetcher) -> Incoming | str:
    """The fetched original, checked like an upload, ready to store; or the sentence saying why there is none."""
    url = media.source_url or ""
    try:
        data = fetch(url, _limit(media.kind))
    except FetchRefused as exc:
        return f"No local copy kept: {exc}"
    except Exception as exc:  # noqa: BLE001 - any failure leaves the element usable through its address
        log.warning("fetching %s for a local copy failed: %s", url, exc)
        return f"No local copy kept: the download failed ({type(exc).__name__})."
    check = check_media(media.file_name, io.BytesIO(data))
    if not check.ok or check.kind != media.kind:
        why = check.problems[0] if check.problems else f"the address holds no {media.kind}"
        return f"No local copy kept: {why}"
    found = replace(media, mime_type=check.mime_type, size=check.size, width=check.width, height=check.height)
    return Incoming(found, io.BytesIO(data))


def fetch_copies(linked: Sequence[ElementMedia], fetch: Fetcher) -> tuple[list[Incoming], list[ElementMedia]]:
    """The addresses that gave a good copy (to store; the address stays as the source), and the rest with a note."""
    copied: list[Incoming] = []
    kept: list[ElementMedia] = []
    for media in linked:
        result = fetch_copy(media, fetch)
        if isinstance(result, str):
            kept.append(replace(media, copy_note=result))
        else:
            copied.append(result)
    return copied, kept
