"""Save a task's result video into `<data_dir>/videos/` before KIE's URL expires (capped, timed, http(s) only)."""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import os
import re
import socket
import tempfile
import time
from collections.abc import Callable, Collection
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import requests
from urllib3.exceptions import ReadTimeoutError

logger = logging.getLogger(__name__)

MAX_VIDEO_BYTES = 200 * 2**20
DEFAULT_TIMEOUT = (5.0, 60.0)
MAX_SECONDS = 600.0
MAX_REDIRECTS = 5
_CHUNK = 256 * 1024
_SAFE_ID = re.compile(r"[^A-Za-z0-9_-]")


class ArchiveError(Exception):
    """A result video could not be saved; the message says why in plain words."""


def _size(n: int) -> str:
    return f"{n / 2**20:.0f} MB" if n >= 2**20 else f"{n / 2**10:.0f} KB"


def videos_dir(data_dir: Path) -> Path:
    """The folder that holds archived videos: `<data_dir>/videos`."""
    return Path(data_dir) / "videos"


def safe_task_id(task_id: str) -> str:
    """A file-name-safe form of a task id (no path separators or dots); altered ids get a short hash suffix."""
    task_id = str(task_id).strip()
    if not task_id:
        raise ArchiveError("The task id is empty, so the video has no file name.")
    safe = _SAFE_ID.sub("_", task_id)[:100]
    if safe != task_id:
        safe += "-" + hashlib.sha256(task_id.encode("utf-8")).hexdigest()[:10]
    return safe


def archived_path(dest_dir: Path, task_id: str) -> Path:
    """Where archive_result saves the video of `task_id`."""
    return Path(dest_dir) / f"{safe_task_id(task_id)}.mp4"


def is_public_ip(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """A global unicast address (IPv4-mapped IPv6 judged by its IPv4 part): what a live KIE result uses."""
    mapped = getattr(address, "ipv4_mapped", None)
    address = mapped if mapped is not None else address
    return address.is_global and not address.is_multicast


def check_public_host(host: str, port: int | None = None) -> None:
    """Raise ArchiveError unless every address `host` resolves to is a public (global unicast) address."""
    try:
        infos = socket.getaddrinfo(host, port or 443, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ArchiveError(f"Cannot find the host {host!r} ({exc}). Check your connection and try again.") from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if not is_public_ip(address):
            raise ArchiveError(
                f"Refusing to download from {host} ({address}): it is a private, loopback or link-local address, "
                "which a live KIE result never uses."
            )


def _check_url(url: str, allow_private: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https"):
        raise ArchiveError(f"Only http(s) links can be archived, not {parts.scheme or 'this'!r} links.")
    if not parts.hostname:
        raise ArchiveError("The result link has no host name.")
    if not allow_private:
        check_public_host(parts.hostname, parts.port)


def _open(session: requests.Session, url: str, timeout: tuple[float, float], allow_private: bool) -> requests.Response:
    """GET with redirects followed by hand, so every hop is checked like the first."""
    for _ in range(MAX_REDIRECTS + 1):
        _check_url(url, allow_private)
        try:
            response = session.get(url, stream=True, timeout=timeout, allow_redirects=False)
        except requests.Timeout:
            raise ArchiveError(f"The download from {urlsplit(url).hostname} timed out. Try again later.") from None
        except requests.RequestException as exc:
            raise ArchiveError(f"Could not connect to {urlsplit(url).hostname}: {exc.__class__.__name__}.") from None
        location = response.headers.get("Location")
        if response.status_code in (301, 302, 303, 307, 308) and location:
            response.close()
            url = urljoin(url, location)
            continue
        return response
    raise ArchiveError(f"The result link redirected more than {MAX_REDIRECTS} times.")


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


def _stream_to(response: requests.Response, fh: object, max_bytes: int, deadline: float,
               clock: Callable[[], float]) -> int:
    total = 0
    try:
        for chunk in response.iter_content(chunk_size=_CHUNK):
            total += len(chunk)
            if total > max_bytes:
                raise ArchiveError(f"The video is larger than the {_size(max_bytes)} limit; download stopped.")
            if clock() > deadline:
                raise ArchiveError("The download took too long and was stopped. Try again later.")
            fh.write(chunk)  # type: ignore[attr-defined]
    except requests.RequestException as exc:
        # requests reports a read timeout mid-body as a ConnectionError wrapping urllib3's ReadTimeoutError.
        if isinstance(exc, requests.Timeout) or any(isinstance(a, ReadTimeoutError) for a in exc.args):
            raise ArchiveError("The download stalled (no data within the timeout) and was stopped.") from None
        raise ArchiveError(f"The download broke off ({exc.__class__.__name__}). Try again.") from None
    return total


def archive_result(
    url: str, dest_dir: Path, task_id: str, *, allowed_urls: Collection[str], max_bytes: int = MAX_VIDEO_BYTES,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT, session: requests.Session | None = None,
    allow_private: bool = False, max_seconds: float = MAX_SECONDS, clock: Callable[[], float] = time.monotonic,
) -> Path:
    """Download the result video of `task_id` to `dest_dir/<task_id>.mp4` atomically and return its path.

    Only a URL that KIE returned for this task (`allowed_urls`) is fetched. Live mode refuses private,
    loopback and link-local hosts (the sandbox passes allow_private=True). The name is resolved once for
    the check and again by the HTTP library, so DNS rebinding is not fully excluded.
    """
    target = archived_path(dest_dir, task_id)
    _check_url(url, allow_private=True)  # scheme and host now; the private-host check runs on every hop
    if url not in allowed_urls:
        raise ArchiveError(f"This link was not returned by KIE for task {task_id}; it will not be downloaded.")
    own_session = session is None
    session = session or requests.Session()
    try:
        response = _open(session, url, timeout, allow_private)
        try:
            _check_response(response, max_bytes)
            target.parent.mkdir(parents=True, exist_ok=True)
            _download(response, target, max_bytes, clock() + max_seconds, clock)
        finally:
            response.close()
    finally:
        if own_session:
            session.close()
    logger.info("Archived the video of task %s to %s", task_id, target)
    return target


def _download(response: requests.Response, target: Path, max_bytes: int, deadline: float,
              clock: Callable[[], float]) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            size = _stream_to(response, fh, max_bytes, deadline, clock)
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
