"""Element model: the element and media records, name and file-count rules, media intake checks, upload status."""

from __future__ import annotations

import difflib
import io
import logging
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import IO
from urllib.parse import unquote, urlparse

from lib.common.clock import parse_time as parse_iso_time
from lib.kie.models import UploadedFile
from lib.kie.uploads import upload_check_needed
from lib.kling import rules
from lib.kling.job import ElementSpec
from lib.kling.media import check_media
from lib.kling.problems import url_problem

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
REFRESH_MARGIN = timedelta(hours=6)  # re-upload when fewer hours than this are left
UPLOAD_PATH = "kling-studio/elements"
LOCAL_METHODS = ("auto", "stream", "base64")

FileInput = tuple[str, "bytes | IO[bytes]"]
Uploader = Callable[..., UploadedFile]  # lib.kie.uploads.upload_file, bound to a client


class ElementError(Exception):
    """One or more problems with an element or the library; each message names the field and the fix."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


@dataclass(frozen=True)
class ElementMedia:
    """One reference file: where its original is and its upload state on KIE."""

    file_name: str
    local_path: str | None
    source_url: str | None
    kind: str  # "image" | "video"
    mime_type: str | None = None
    size: int | None = None
    width: int | None = None
    height: int | None = None
    kie_url: str | None = None
    uploaded_at: str | None = None
    expires_at: str | None = None
    upload_error: str | None = None
    upload_method: str | None = None
    copy_note: str | None = None  # why a web address has no local copy (lib.elements.copies); None before 16.13


@dataclass(frozen=True)
class Element:
    """A named subject (2–4 images or 1 video) used in prompts as @name."""

    id: str
    name: str
    description: str
    kind: str  # "images" | "video"
    media: tuple[ElementMedia, ...]
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class UploadStatus:
    """How an element stands on KIE: label is uploaded|expires soon|expired|not uploaded|failed."""

    label: str
    detail: str
    hours_left: float | None = None


@dataclass(frozen=True)
class ImportResult:
    """Names added, and each refused entry as (name, or 1-based position when it has none; reason)."""

    added: list[str] = field(default_factory=list)
    bad: list[tuple[str | int, str]] = field(default_factory=list)
    clashes: list[str] = field(default_factory=list)  # refused only because the name is taken: rename or replace
    replaced: list[str] = field(default_factory=list)  # ids of elements an import replaced (their files go too)


# ---------------------------------------------------------------- times and small helpers

def to_utc(now: datetime | None) -> datetime:
    """The moment in UTC (now when None; naive means UTC)."""
    if now is None:
        return datetime.now(timezone.utc)
    return now.replace(tzinfo=timezone.utc) if now.tzinfo is None else now.astimezone(timezone.utc)


def iso_time(moment: datetime) -> str:
    """ISO 8601 UTC to the second, as stored in library.json."""
    return to_utc(moment).isoformat(timespec="seconds")


def parse_time(value: object) -> datetime | None:
    """A stored time (ISO text or datetime) in UTC, or None when missing or unreadable."""
    if isinstance(value, datetime):
        return to_utc(value)
    if isinstance(value, str) and value.strip():
        try:
            return parse_iso_time(value)
        except ValueError:
            return None
    return None


def safe_file_name(name: str) -> str:
    """A file name safe to store: no folders, only [A-Za-z0-9._-], never hidden, at most 80 chars."""
    base = re.split(r"[\\/]", name)[-1]
    base = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode("ascii")
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._") or "file"
    stem, dot, ext = base.rpartition(".")
    if dot and len(ext) <= 5:
        return f"{stem[:74]}.{ext}"
    return base[:80]


def unique_file_name(name: str, taken: set[str]) -> str:
    """The name, or name_2, name_3… so it is unique (ignoring case) among `taken`; records it there."""
    stem, dot, ext = name.rpartition(".")
    stem, ext = (stem, f".{ext}") if dot else (name, "")
    candidate, n = name, 2
    while candidate.lower() in taken:
        candidate, n = f"{stem}_{n}{ext}", n + 1
    taken.add(candidate.lower())
    return candidate


def _url_file_name(url: str) -> str:
    return safe_file_name(unquote(urlparse(url).path.rsplit("/", 1)[-1]) or "file")


# ---------------------------------------------------------------- names and counts (the rules: lib.kling.rules)

def duplicate_problems(name: str, elements: Iterable[Element], exclude_id: str | None) -> list[str]:
    """Why `name` clashes with another element (ignoring case), with a free name to use instead."""
    others = [e for e in elements if e.id != exclude_id]
    taken = {e.name.lower() for e in others}
    clash = next((e for e in others if e.name.lower() == name.lower()), None)
    if clash is None:
        return []
    n = 2
    while f"{name[:rules.ELEMENT_NAME_MAX_CHARS - 1 - len(str(n))]}_{n}".lower() in taken:
        n += 1
    free = f"{name[:rules.ELEMENT_NAME_MAX_CHARS - 1 - len(str(n))]}_{n}"
    return [f"An element named '{clash.name}' already exists: pick another name, e.g. '{free}'"]


def find_by_name(name: str, names: Iterable[str]) -> str | None:
    """The library name `name` stands for, ignoring case (names are unique ignoring case), or None."""
    return next((n for n in names if n.lower() == name.lower()), None)


def reference_advice(ref: str, names: Iterable[str]) -> str:
    """What to tell someone who wrote @ref: the exact spelling of the same element, else the nearest name."""
    names = list(names)
    same = find_by_name(ref, names)
    if same is not None:
        return f"@{ref} is the element '{same}': write @{same} exactly (KIE matches names letter for letter)."
    lowered = {n.lower(): n for n in names}
    close = difflib.get_close_matches(ref.lower(), list(lowered), n=1, cutoff=0.5)
    if close:
        return (f"No element named '{ref}'. Did you mean @{lowered[close[0]]}? Otherwise create '{ref}' on the "
                f"Elements page or remove @{ref}.")
    return f"No element named '{ref}': create it on the Elements page or remove @{ref} from the prompt."


def count_problems(kinds: Sequence[str]) -> list[str]:
    """The file-count rule (lib.kling.rules) for a list of media kinds, as the library's list of messages."""
    problem = rules.element_count_problem(kinds.count("image"), kinds.count("video"))
    return [problem.message] if problem else []


def description_problems(description: object) -> list[str]:
    """Why a description cannot be used (empty list when it can)."""
    if not isinstance(description, str) or not description.strip():
        return ["Description is empty: say in a few words what the element is, e.g. 'a ginger cat with a white chest'."]
    return []


# ---------------------------------------------------------------- media intake

@dataclass
class Incoming:
    """A file being added: its checked metadata and the open stream to copy from."""

    media: ElementMedia
    stream: IO[bytes]


def inspect_files(files: Iterable[FileInput]) -> tuple[list[Incoming], list[str], list[str]]:
    """Check each file; returns the good ones, the kind of every recognised file, and the problems."""
    incoming, kinds, problems = [], [], []
    for file_name, data in files:
        stream = io.BytesIO(bytes(data)) if isinstance(data, bytes | bytearray | memoryview) else data
        stream.seek(0)
        check = check_media(file_name, stream)
        stream.seek(0)
        if check.kind in ("image", "video"):
            kinds.append(check.kind)
        if not check.ok or check.kind not in ("image", "video"):
            found = [p if file_name in p else f"{file_name}: {p}" for p in check.problems]
            problems.extend(found or [f"{file_name}: not a JPG/PNG image or MP4/MOV video: pick another file."])
            continue
        size = check.size if check.size is not None else _stream_size(stream)
        media = ElementMedia(file_name=file_name, local_path=None, source_url=None, kind=check.kind,
                             mime_type=check.mime_type, size=size, width=check.width, height=check.height)
        incoming.append(Incoming(media, stream))
    return incoming, kinds, problems


def _stream_size(stream: IO[bytes]) -> int:
    stream.seek(0, os.SEEK_END)
    size = stream.tell()
    stream.seek(0)
    return size


def url_media(url: object, kind: str | None = None) -> tuple[ElementMedia | None, list[str]]:
    """Media for a web address (uploaded later by URL upload), or the problems with the address."""
    text = url.strip() if isinstance(url, str) else ""
    shown = text[:80] or repr(url)[:80]
    if url_problem(text):
        return None, [f"'{shown}' is not a web address: use a full URL starting with https://."]
    if kind is None:
        path = urlparse(text).path.lower()
        kind = "video" if rules.looks_like_video_url(text) else "image" if path.endswith(rules.IMAGE_URL_SUFFIXES) else None
    if kind is None:
        return None, [f"'{shown}' does not end in .jpg, .png, .mp4 or .mov: link to the image or video file itself."]
    return ElementMedia(file_name=_url_file_name(text), local_path=None, source_url=text, kind=kind), []


def inspect_urls(urls: Iterable[str]) -> tuple[list[ElementMedia], list[str]]:
    """Media for each web address, and the problems with the addresses that cannot be used."""
    found, problems = [], []
    for url in urls:
        media, errs = url_media(url)
        problems.extend(errs)
        if media:
            found.append(media)
    return found, problems


def element_kind(media: Sequence[ElementMedia]) -> str:
    """"video" when any file is a video, else "images"."""
    return "video" if any(m.kind == "video" for m in media) else "images"


# ---------------------------------------------------------------- status

def needs_upload(media: ElementMedia, now: datetime | None = None) -> bool:
    """True when a file is not on KIE, failed, or expires within REFRESH_MARGIN."""
    expires = parse_time(media.expires_at)
    return not media.kie_url or bool(media.upload_error) or expires is None or expires - to_utc(now) < REFRESH_MARGIN


def stale_uploads(element: Element, now: datetime | None = None,
                  is_alive: Callable[[str], bool] | None = None) -> list[str]:
    """File names whose upload must be redone before use: older than 72 h, or older than 24 h and found gone by
    `is_alive` (KIE's docs disagree on 24 h or 3 days; without a checker a 24–72 h upload is trusted)."""
    gone = []
    for media in element.media:
        if not media.kie_url or media.upload_error:
            continue  # needs_upload covers these
        policy = upload_check_needed(media.uploaded_at, to_utc(now))
        if policy == "reupload" or (policy == "check" and is_alive is not None and not is_alive(media.kie_url)):
            gone.append(media.file_name)
    return gone


def check_before_use(element: Element, now: datetime | None = None) -> bool:
    """True while an upload is 24–72 h old: it may be gone already, so it is checked before a submit."""
    return any(m.kie_url and upload_check_needed(m.uploaded_at, to_utc(now)) == "check" for m in element.media)


def upload_status(element: Element, now: datetime | None = None) -> UploadStatus:
    """The element's upload state; the soonest-expiring file decides."""
    now = to_utc(now)
    failed = [m for m in element.media if m.upload_error]
    if failed:
        return UploadStatus("failed", f"failed: {failed[0].file_name}: {failed[0].upload_error}")
    missing = [m for m in element.media if not m.kie_url or parse_time(m.expires_at) is None]
    if missing or not element.media:
        total = len(element.media)
        detail = "not uploaded yet" if len(missing) == total else f"{len(missing)} of {total} files not uploaded yet"
        return UploadStatus("not uploaded", detail)
    expires = min(parse_time(m.expires_at) for m in element.media)  # type: ignore[type-var]
    hours = (expires - now).total_seconds() / 3600
    if hours <= 0:
        ago = f"{int(-hours)} h" if hours <= -1 else "less than 1 h"
        return UploadStatus("expired", f"expired {ago} ago: re-uploaded on next use", hours)
    left = f"{int(hours)} h" if hours >= 1 else f"{int(hours * 60)} min"
    if expires - now < REFRESH_MARGIN:
        return UploadStatus("expires soon", f"expires in {left}: re-uploaded on next use", hours)
    return UploadStatus("uploaded", f"expires in {left}", hours)


def element_spec(element: Element, urls: Sequence[str]) -> ElementSpec:
    """The element as a Job's ElementSpec with these URLs (its images, or its one video)."""
    found = tuple(urls)
    return ElementSpec(name=element.name, description=element.description,
                       image_urls=found if element.kind == "images" else (),
                       video_urls=found if element.kind == "video" else ())


def to_element_spec(element: Element) -> ElementSpec:
    """The element as an ElementSpec with its KIE URLs (for building a Job); raises if a file is not uploaded."""
    missing = [m.file_name for m in element.media if not m.kie_url]
    if missing:
        raise ElementError([f"Element '{element.name}' is not uploaded yet ({', '.join(missing)}): upload it first."])
    return element_spec(element, [m.kie_url for m in element.media if m.kie_url])


def copy_name(name: str, elements: Iterable[Element]) -> str:
    """A free name for a copy: '<name>_copy', then '_copy2', '_copy3'…"""
    taken = {e.name.lower() for e in elements}
    n = 1
    while True:
        suffix = "_copy" if n == 1 else f"_copy{n}"
        candidate = name[: rules.ELEMENT_NAME_MAX_CHARS - len(suffix)] + suffix
        if candidate.lower() not in taken:
            return candidate
        n += 1
