"""Element library: reusable subjects kept as local originals and re-uploaded to KIE before they expire.

KIE stores no elements and deletes uploaded files after 3 days, so the library keeps
`<data_dir>/elements/library.json` plus a copy of every original in `<data_dir>/elements/files/<id>/`.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import tempfile
import unicodedata
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any
from urllib.parse import unquote, urlparse

from filelock import FileLock

from lib import rules

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
NAME_MAX_CHARS = 40  # app decision: KIE documents no limit (kie-api.md §13.6); keeps @name short in prompts
REFRESH_MARGIN = timedelta(hours=6)  # re-upload when fewer hours than this are left
UPLOAD_LIFETIME = timedelta(days=3)  # only used when an uploader reports no expiry
UPLOAD_PATH = "kling-studio/elements"
LOCAL_METHODS = ("auto", "stream", "base64")
_NAME_RE = re.compile(rf"[{rules.ELEMENT_NAME_CHARS}]+")
_NAME_CHAR_RE = re.compile(rf"[{rules.ELEMENT_NAME_CHARS}]")
# Letters that look Latin but are not (Cyrillic, Greek): the usual way a name "looks right" and fails.
_LOOKALIKES = dict(zip("асеіјоррѕхуАВСЕНІЈКМНОРЅТХУΑΒΕΖΗΙΚΜΝΟΡΤΥΧοντ",
                       "aceijoppsxyABCEHIJKMHOPSTXYABEZHIKMNOPTYXovt", strict=True))

FileInput = tuple[str, "bytes | IO[bytes]"]
Uploader = Callable[..., Any]


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


# ---------------------------------------------------------------- times and small helpers

def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(timezone.utc)
    return now.replace(tzinfo=timezone.utc) if now.tzinfo is None else now.astimezone(timezone.utc)


def _iso(moment: datetime) -> str:
    return _utc(moment).isoformat(timespec="seconds")


def _parse_time(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return _utc(value)
    if isinstance(value, str) and value:
        try:
            return _utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
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


def _unique_name(name: str, taken: set[str]) -> str:
    stem, dot, ext = name.rpartition(".")
    stem, ext = (stem, f".{ext}") if dot else (name, "")
    candidate, n = name, 2
    while candidate.lower() in taken:
        candidate, n = f"{stem}_{n}{ext}", n + 1
    taken.add(candidate.lower())
    return candidate


def _url_file_name(url: str) -> str:
    return safe_file_name(unquote(urlparse(url).path.rsplit("/", 1)[-1]) or "file")


# ---------------------------------------------------------------- names and counts

def suggest_name(name: str) -> str:
    """The nearest valid name: look-alikes made Latin, accents dropped, spaces to _, others removed."""
    text = "".join(_LOOKALIKES.get(c, c) for c in name.strip())
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"\s+", "_", text)
    text = "".join(_NAME_CHAR_RE.findall(text))[:NAME_MAX_CHARS]
    return text or "element_1"


def name_problems(name: str) -> list[str]:
    """Why a name cannot be used as @name (empty list when it can); ignores other elements."""
    if not name or not name.strip():
        return ["Name is empty: type a short name such as 'my_cat' (letters, digits, _ or -)."]
    if _NAME_RE.fullmatch(name) and len(name) <= NAME_MAX_CHARS:
        return []
    hint = suggest_name(name)
    problems = []
    if any(c.isspace() for c in name):
        problems.append(f"Name '{name}' has a space: use letters, digits, _ or -, e.g. '{hint}'")
    for char in dict.fromkeys(c for c in name if c in _LOOKALIKES):
        label = unicodedata.name(char, "non-Latin letter").title()
        problems.append(f"Name '{name}' has '{char}' ({label}), which looks like the Latin '{_LOOKALIKES[char]}' "
                        f"but is not: retype it as '{hint}'")
    others = [c for c in dict.fromkeys(name) if not c.isspace() and c not in _LOOKALIKES and not _NAME_CHAR_RE.match(c)]
    if others:
        shown = " ".join(f"'{c}'" for c in others)
        problems.append(f"Name '{name}' has {shown}, which @name cannot use: use letters, digits, _ or -, e.g. '{hint}'")
    if len(name) > NAME_MAX_CHARS:
        problems.append(f"Name '{name[:20]}…' is {len(name)} characters long: use at most {NAME_MAX_CHARS}, "
                        f"e.g. '{hint}'")
    return problems


def _duplicate_problems(name: str, elements: Iterable[Element], exclude_id: str | None) -> list[str]:
    others = [e for e in elements if e.id != exclude_id]
    taken = {e.name.lower() for e in others}
    clash = next((e for e in others if e.name.lower() == name.lower()), None)
    if clash is None:
        return []
    n = 2
    while f"{name[:NAME_MAX_CHARS - 1 - len(str(n))]}_{n}".lower() in taken:
        n += 1
    free = f"{name[:NAME_MAX_CHARS - 1 - len(str(n))]}_{n}"
    return [f"An element named '{clash.name}' already exists: pick another name, e.g. '{free}'"]


def count_problems(kinds: Sequence[str]) -> list[str]:
    """Why a set of media kinds cannot make an element: 2–4 images or exactly 1 video, never both."""
    images, videos = kinds.count("image"), kinds.count("video")
    low, high = rules.ELEMENT_IMAGES_MIN, rules.ELEMENT_IMAGES_MAX
    if images and videos:
        return [f"An element takes images or one video, not both: remove the video, or remove the {images} "
                f"image{'s' if images > 1 else ''} and keep the video."]
    if videos > rules.ELEMENT_VIDEOS:
        return [f"{videos} videos: an element takes exactly {rules.ELEMENT_VIDEOS} video. Keep one and remove the rest."]
    if videos:
        return []
    if images == 0:
        return [f"No reference files: add {low}–{high} images (JPG/PNG) or 1 video (MP4/MOV)."]
    if images < low:
        return [f"Only {images} image: add {low - images}–{high - images} more (an element takes {low}–{high} "
                "images), or use 1 video instead."]
    if images > high:
        return [f"{images} images is too many: remove {images - high} (an element takes {low}–{high} images)."]
    return []


def _description_problems(description: object) -> list[str]:
    if not isinstance(description, str) or not description.strip():
        return ["Description is empty: say in a few words what the element is, e.g. 'a ginger cat with a white chest'."]
    return []


# ---------------------------------------------------------------- media intake

@dataclass
class _Incoming:
    """A file being added: its checked metadata and the open stream to copy from."""

    media: ElementMedia
    stream: IO[bytes]


def _inspect_files(files: Iterable[FileInput]) -> tuple[list[_Incoming], list[str], list[str]]:
    """Check each file; returns the good ones, the kind of every recognised file, and the problems."""
    from lib.media import check_media  # lazily: media checks are their own module

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
        incoming.append(_Incoming(media, stream))
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
    if urlparse(text).scheme.lower() not in rules.URL_SCHEMES or not urlparse(text).netloc:
        return None, [f"'{shown}' is not a web address: use a full URL starting with https://."]
    if kind is None:
        path = urlparse(text).path.lower()
        kind = "video" if rules.looks_like_video_url(text) else "image" if path.endswith(rules.IMAGE_URL_SUFFIXES) else None
    if kind is None:
        return None, [f"'{shown}' does not end in .jpg, .png, .mp4 or .mov: link to the image or video file itself."]
    return ElementMedia(file_name=_url_file_name(text), local_path=None, source_url=text, kind=kind), []


def _inspect_urls(urls: Iterable[str]) -> tuple[list[ElementMedia], list[str]]:
    found, problems = [], []
    for url in urls:
        media, errs = url_media(url)
        problems.extend(errs)
        if media:
            found.append(media)
    return found, problems


def _element_kind(media: Sequence[ElementMedia]) -> str:
    return "video" if any(m.kind == "video" for m in media) else "images"


# ---------------------------------------------------------------- status

def needs_upload(media: ElementMedia, now: datetime | None = None) -> bool:
    """True when a file is not on KIE, failed, or expires within REFRESH_MARGIN."""
    expires = _parse_time(media.expires_at)
    return not media.kie_url or bool(media.upload_error) or expires is None or expires - _utc(now) < REFRESH_MARGIN


def upload_status(element: Element, now: datetime | None = None) -> UploadStatus:
    """The element's upload state; the soonest-expiring file decides."""
    now = _utc(now)
    failed = [m for m in element.media if m.upload_error]
    if failed:
        return UploadStatus("failed", f"failed: {failed[0].file_name}: {failed[0].upload_error}")
    missing = [m for m in element.media if not m.kie_url or _parse_time(m.expires_at) is None]
    if missing or not element.media:
        total = len(element.media)
        detail = "not uploaded yet" if len(missing) == total else f"{len(missing)} of {total} files not uploaded yet"
        return UploadStatus("not uploaded", detail)
    expires = min(_parse_time(m.expires_at) for m in element.media)  # type: ignore[type-var]
    hours = (expires - now).total_seconds() / 3600
    if hours <= 0:
        ago = f"{int(-hours)} h" if hours <= -1 else "less than 1 h"
        return UploadStatus("expired", f"expired {ago} ago: re-uploaded on next use", hours)
    left = f"{int(hours)} h" if hours >= 1 else f"{int(hours * 60)} min"
    if expires - now < REFRESH_MARGIN:
        return UploadStatus("expires soon", f"expires in {left}: re-uploaded on next use", hours)
    return UploadStatus("uploaded", f"expires in {left}", hours)


def to_spec(element: Element) -> dict[str, Any]:
    """The element's `kling_elements` entry with its KIE URLs; raises if a file is not uploaded."""
    missing = [m.file_name for m in element.media if not m.kie_url]
    if missing:
        raise ElementError([f"Element '{element.name}' is not uploaded yet ({', '.join(missing)}): upload it first."])
    urls = [m.kie_url for m in element.media]
    key = rules.VIDEO_FIELD_BY_SCHEMA[rules.video_element_schema()] if element.kind == "video" else "element_input_urls"
    return {"name": element.name, "description": element.description, key: urls}


def to_element_spec(element: Element) -> Any:
    """The element as a `lib.jobs.ElementSpec` with its KIE URLs (for building a Job)."""
    from lib.jobs import ElementSpec

    spec = to_spec(element)
    urls = tuple(m.kie_url for m in element.media if m.kie_url)
    return ElementSpec(name=spec["name"], description=spec["description"],
                       image_urls=urls if element.kind == "images" else (),
                       video_urls=urls if element.kind == "video" else ())


def _failure_reason(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    fix = getattr(exc, "fix", None)
    return f"{message} — {fix}" if fix else message

def _atomic_write(path: Path, source: bytes | IO[bytes]) -> None:
    """Write a file so it is never half-written: temp file, fsync, then os.replace."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            if isinstance(source, bytes):
                fh.write(source)
            else:
                shutil.copyfileobj(source, fh, 1024 * 1024)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _copy_name(name: str, elements: Iterable[Element]) -> str:
    taken = {e.name.lower() for e in elements}
    n = 1
    while True:
        suffix = "_copy" if n == 1 else f"_copy{n}"
        candidate = name[: NAME_MAX_CHARS - len(suffix)] + suffix
        if candidate.lower() not in taken:
            return candidate
        n += 1


# ---------------------------------------------------------------- the library

class ElementLibrary:
    """The element library in `<data_dir>/elements/`: library.json under a file lock, originals beside it."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.root = Path(data_dir) / "elements"
        self.path = self.root / "library.json"
        self.files_dir = self.root / "files"
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(self.path) + ".lock", timeout=30)

    # reading ---------------------------------------------------------------
    def list(self) -> list[Element]:
        """Every element, sorted by name."""
        return sorted(self._load().values(), key=lambda e: (e.name.lower(), e.name))

    def get(self, element_id: str) -> Element | None:
        """The element with this id, or None."""
        return self._load().get(element_id)

    def by_name(self, name: str) -> Element | None:
        """The element with this name (names are unique ignoring case), or None."""
        found = [e for e in self._load().values() if e.name.lower() == name.lower()]
        return next((e for e in found if e.name == name), found[0] if found else None)

    def check_name(self, name: str, exclude_id: str | None = None) -> list[str]:
        """As-you-type messages for a name: its characters, length and uniqueness."""
        return name_problems(name) + _duplicate_problems(name, self._load().values(), exclude_id)

    def status(self, element: Element, now: datetime | None = None) -> UploadStatus:
        """The element's upload state at `now`."""
        return upload_status(element, now)

    def to_spec(self, element: Element) -> dict[str, Any]:
        """The element's `kling_elements` entry with its KIE URLs."""
        return to_spec(element)

    def local_file(self, media: ElementMedia) -> Path | None:
        """The stored original of a file, when it is still on disk."""
        path = Path(media.local_path) if media.local_path else None
        return path if path and path.is_file() else None

    # editing ---------------------------------------------------------------
    def create(self, name: str, description: str, files: Iterable[FileInput] = (), urls: Iterable[str] = (),
               now: datetime | None = None) -> Element:
        """Check and save a new element as a draft (nothing uploaded yet); raises ElementError."""
        stamp = _iso(_utc(now))
        with self._lock:
            elements = self._load()
            incoming, kinds, file_problems = _inspect_files(files)
            linked, url_problems = _inspect_urls(urls)
            problems = (name_problems(name) + _duplicate_problems(name, elements.values(), None)
                        + _description_problems(description) + file_problems + url_problems
                        + count_problems(kinds + [m.kind for m in linked]))
            if problems:
                raise ElementError(problems)
            element_id = uuid.uuid4().hex[:12]
            taken: set[str] = set()
            try:
                stored = self._store(element_id, incoming, taken)
                media = tuple(stored + [replace(m, file_name=_unique_name(m.file_name, taken)) for m in linked])
                element = Element(element_id, name, description.strip(), _element_kind(media), media, stamp, stamp)
                elements[element_id] = element
                self._save(elements.values())
            except BaseException:
                shutil.rmtree(self._folder(element_id), ignore_errors=True)
                raise
        log.info("created element %s (%s)", element.name, element.id)
        return element

    def update(self, element_id: str, *, name: str | None = None, description: str | None = None,
               add_files: Iterable[FileInput] = (), add_urls: Iterable[str] = (),
               remove_media: Iterable[str] = (), now: datetime | None = None) -> Element:
        """Change the name, description or files (removing by file name); raises ElementError."""
        with self._lock:
            elements = self._load()
            current = self._require(elements, element_id)
            remove = set(remove_media)
            names = [m.file_name for m in current.media]
            kept = [m for m in current.media if m.file_name not in remove]
            incoming, kinds, problems = _inspect_files(add_files)
            linked, url_problems = _inspect_urls(add_urls)
            problems = ((name_problems(name) + _duplicate_problems(name, elements.values(), element_id) if name is not None else [])
                        + (_description_problems(description) if description is not None else [])
                        + [f"'{f}' is not a file of '{current.name}': pick one of {', '.join(names)}."
                           for f in sorted(remove - set(names))]
                        + problems + url_problems + count_problems([m.kind for m in kept] + kinds + [m.kind for m in linked]))
            if problems:
                raise ElementError(problems)
            taken = {n.lower() for n in names}  # removed names too, so a new file never takes a doomed path
            stored = self._store(element_id, incoming, taken)
            media = tuple(kept + stored + [replace(m, file_name=_unique_name(m.file_name, taken)) for m in linked])
            updated = replace(current, name=current.name if name is None else name,
                              description=current.description if description is None else description.strip(),
                              kind=_element_kind(media), media=media, updated_at=_iso(_utc(now)))
            elements[element_id] = updated
            try:
                self._save(elements.values())
            except BaseException:
                for m in stored:
                    Path(m.local_path or "").unlink(missing_ok=True)
                raise
        for m in current.media:
            if m.file_name in remove and m.local_path and self._inside_files(Path(m.local_path)):
                Path(m.local_path).unlink(missing_ok=True)
        return updated

    def rename(self, element_id: str, new_name: str, now: datetime | None = None) -> Element:
        """Give an element a new name (its files and uploads stay)."""
        return self.update(element_id, name=new_name, now=now)

    def duplicate(self, element_id: str, now: datetime | None = None) -> Element:
        """Copy an element and its files under the name '<name>_copy' ('_copy2', … when taken)."""
        stamp = _iso(_utc(now))
        with self._lock:
            elements = self._load()
            source = self._require(elements, element_id)
            new_id = uuid.uuid4().hex[:12]
            folder = self._folder(new_id)
            try:
                media = tuple(self._copy_media(m, folder) for m in source.media)
                copy = replace(source, id=new_id, name=_copy_name(source.name, elements.values()), media=media,
                               created_at=stamp, updated_at=stamp)
                elements[new_id] = copy
                self._save(elements.values())
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
        return copy

    def delete(self, element_id: str) -> None:
        """Remove an element and its stored originals."""
        with self._lock:
            elements = self._load()
            self._require(elements, element_id)
            del elements[element_id]
            self._save(elements.values())
        shutil.rmtree(self._folder(element_id), ignore_errors=True)
        log.info("deleted element %s", element_id)

    # uploading -------------------------------------------------------------
    def upload(self, element_id: str, uploader: Uploader, method: str = "auto",
               now: datetime | None = None) -> Element:
        """Upload every file that is missing, failed or expiring on KIE; a failure is recorded, never raised."""
        if method not in LOCAL_METHODS:
            raise ValueError(f"Unknown upload method {method!r} for local files: use one of {', '.join(LOCAL_METHODS)}")
        now = _utc(now)
        element = self._require(self._load(), element_id)
        # Upload outside the lock (it can take minutes), then merge into whatever is saved by then.
        done = {m.file_name: self._upload_one(element, m, uploader, method, now)
                for m in element.media if needs_upload(m, now)}
        if not done:
            return element
        fields = ("kie_url", "uploaded_at", "expires_at", "upload_error", "upload_method")
        with self._lock:
            elements = self._load()
            current = self._require(elements, element_id)
            media = tuple(
                replace(m, **{f: getattr(done[m.file_name], f) for f in fields})
                if m.file_name in done and (m.local_path, m.source_url) == (done[m.file_name].local_path,
                                                                             done[m.file_name].source_url)
                else m
                for m in current.media)
            elements[element_id] = replace(current, media=media)
            self._save(elements.values())
        return elements[element_id]

    def ensure_fresh(self, names: Iterable[str], uploader: Uploader, now: datetime | None = None,
                     method: str = "auto") -> list[Element]:
        """The named elements, re-uploaded first where expired or expiring; raises ElementError if any is unusable."""
        now = _utc(now)
        wanted = list(dict.fromkeys(names))
        found = {name: self.by_name(name) for name in wanted}
        problems = [f"No element named '{n}': create it on the Elements page or remove @{n} from the prompt."
                    for n, e in found.items() if e is None]
        problems += [f"@{n} does not match the element '{e.name}' exactly: write @{e.name} (KIE matches names exactly)."
                     for n, e in found.items() if e is not None and e.name != n]
        if problems:
            raise ElementError(problems)
        ready = []
        for element in found.values():
            assert element is not None
            if any(needs_upload(m, now) for m in element.media):
                element = self.upload(element.id, uploader, method=method, now=now)
            ready.append(element)
        problems = [f"@{e.name}: {st.detail}" for e in ready if (st := upload_status(e, now)).label != "uploaded"]
        if problems:
            raise ElementError(problems)
        return ready

    def _upload_one(self, element: Element, media: ElementMedia, uploader: Uploader, method: str,
                    now: datetime) -> ElementMedia:
        try:
            result, used = self._send(element, media, uploader, method)
        except Exception as exc:  # any failure is kept on the file, so the element stays a usable draft
            reason = _failure_reason(exc)
            log.warning("upload of %s for element %s failed: %s", media.file_name, element.name, reason,
                        exc_info=not hasattr(exc, "fix"))
            return replace(media, upload_error=reason)
        uploaded = _parse_time(getattr(result, "uploaded_at", None)) or now
        expires = _parse_time(getattr(result, "expires_at", None)) or uploaded + UPLOAD_LIFETIME
        return replace(media, kie_url=str(result.download_url), uploaded_at=_iso(uploaded), expires_at=_iso(expires),
                       upload_error=None, upload_method=getattr(result, "method", None) or used)

    def _send(self, element: Element, media: ElementMedia, uploader: Uploader, method: str) -> tuple[Any, str]:
        path = self.local_file(media)
        upload_path = f"{UPLOAD_PATH}/{element.id}"
        if path is not None:
            with path.open("rb") as fh:
                return uploader(fh, file_name=media.file_name, upload_path=upload_path, method=method), method
        if media.source_url:
            return uploader(media.source_url, file_name=media.file_name, upload_path=upload_path, method="url"), "url"
        raise ElementError([f"{media.file_name}: the original file is gone ({media.local_path}) and there is no web "
                            "address to upload from: remove it and add the file again."])

    # export and import -----------------------------------------------------
    def export_json(self) -> str:
        """The library as a `kling_elements` list plus our metadata under `kling_studio`; originals are not embedded."""
        return json.dumps([_export_entry(e) for e in self.list()], indent=2, ensure_ascii=False)

    def import_json(self, text: str | bytes, now: datetime | None = None) -> ImportResult:
        """Add the good entries of an export (or a kling_elements list); report the bad ones by name."""
        entries = _import_entries(text)
        stamp = _iso(_utc(now))
        result = ImportResult()
        with self._lock:
            elements = self._load()
            for index, entry in enumerate(entries, 1):
                label: str | int = entry["name"] if isinstance(entry, dict) and isinstance(entry.get("name"), str) \
                    and entry["name"].strip() else index
                try:
                    element = _element_from_entry(entry, stamp)
                    problems = _duplicate_problems(element.name, elements.values(), None)
                    if problems:
                        raise ElementError(problems)
                except ElementError as exc:
                    result.bad.append((label, "; ".join(exc.problems)))
                    continue
                elements[element.id] = element
                result.added.append(element.name)
            if result.added:
                self._save(elements.values())
        return result

    # storage ---------------------------------------------------------------
    def _load(self) -> dict[str, Element]:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise ElementError([f"Cannot read the element library {self.path} ({exc}): check the file's permissions."]) from exc
        try:
            data = json.loads(raw.decode("utf-8"))
            if not isinstance(data, dict) or not isinstance(data.get("elements"), list):
                raise ValueError("no 'elements' list")
            if int(data.get("version", 0)) > SCHEMA_VERSION:
                raise ValueError(f"written by a newer Kling Studio (version {data['version']})")
            elements = [self._element_from_json(item) for item in data["elements"]]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ElementError([f"The element library {self.path} is damaged ({exc}). It was left untouched: "
                                "restore it from a backup, or move it away to start an empty library."]) from exc
        return {e.id: e for e in elements}

    def _save(self, elements: Iterable[Element]) -> None:
        payload = {"version": SCHEMA_VERSION, "elements": [self._element_to_json(e) for e in elements]}
        _atomic_write(self.path, json.dumps(payload, indent=2, ensure_ascii=False).encode("utf-8"))

    def _element_from_json(self, item: dict[str, Any]) -> Element:
        if item["kind"] not in ("images", "video"):
            raise ValueError(f"element {item.get('name')!r} has unknown kind {item['kind']!r}")
        media = []
        for raw in item["media"]:
            values = {f: raw.get(f) for f in ElementMedia.__dataclass_fields__}
            if not isinstance(values["file_name"], str) or values["kind"] not in ("image", "video"):
                raise ValueError(f"element {item.get('name')!r} has a file without a name or kind")
            if values["local_path"]:
                values["local_path"] = str(self.root / values["local_path"])
            media.append(ElementMedia(**values))
        return Element(id=str(item["id"]), name=str(item["name"]), description=str(item.get("description") or ""),
                       kind=item["kind"], media=tuple(media), created_at=str(item["created_at"]),
                       updated_at=str(item.get("updated_at") or item["created_at"]))

    def _element_to_json(self, element: Element) -> dict[str, Any]:
        data = {f: getattr(element, f) for f in ("id", "name", "description", "kind", "created_at", "updated_at")}
        data["media"] = [{f: getattr(m, f) for f in ElementMedia.__dataclass_fields__} for m in element.media]
        for raw in data["media"]:
            if raw["local_path"]:  # stored relative, so the data folder can move
                path = Path(raw["local_path"])
                raw["local_path"] = path.relative_to(self.root).as_posix() if path.is_relative_to(self.root) else str(path)
        return data

    def _require(self, elements: dict[str, Element], element_id: str) -> Element:
        if element_id not in elements:
            raise ElementError([f"No element with id '{element_id}': it may have been deleted. Reload the page."])
        return elements[element_id]

    def _folder(self, element_id: str) -> Path:
        if not re.fullmatch(r"[A-Za-z0-9_-]+", element_id):
            raise ElementError([f"Element id '{element_id}' is not valid: ids are letters, digits, _ or -."])
        return self.files_dir / element_id

    def _inside_files(self, path: Path) -> bool:
        return path.resolve().is_relative_to(self.files_dir.resolve())

    def _store(self, element_id: str, incoming: Sequence[_Incoming], taken: set[str]) -> list[ElementMedia]:
        """Copy new originals into the element's folder; on failure the copies made so far are removed."""
        if not incoming:
            return []
        folder = self._folder(element_id)
        folder.mkdir(parents=True, exist_ok=True)
        stored: list[ElementMedia] = []
        try:
            for item in incoming:
                name = _unique_name(safe_file_name(item.media.file_name), taken)
                _atomic_write(folder / name, item.stream)
                stored.append(replace(item.media, file_name=name, local_path=str(folder / name)))
        except BaseException:
            for m in stored:
                Path(m.local_path or "").unlink(missing_ok=True)
            raise
        return stored

    def _copy_media(self, media: ElementMedia, folder: Path) -> ElementMedia:
        source = self.local_file(media)
        if source is None:
            return replace(media, local_path=None)
        folder.mkdir(parents=True, exist_ok=True)
        with source.open("rb") as fh:
            _atomic_write(folder / source.name, fh)
        return replace(media, local_path=str(folder / source.name))


# ---------------------------------------------------------------- export/import helpers

_EXPORT_MEDIA_FIELDS = ("file_name", "kind", "mime_type", "size", "width", "height", "source_url", "kie_url",
                        "uploaded_at", "expires_at")


def _export_entry(element: Element) -> dict[str, Any]:
    urls = [m.kie_url or m.source_url for m in element.media if m.kie_url or m.source_url]
    key = rules.VIDEO_FIELD_BY_SCHEMA[rules.video_element_schema()] if element.kind == "video" else "element_input_urls"
    media = [{f: getattr(m, f) for f in _EXPORT_MEDIA_FIELDS if getattr(m, f) is not None} for m in element.media]
    meta = {"id": element.id, "kind": element.kind, "originals": "not embedded (local copies stay on this machine)",
            "media": media}
    return {"name": element.name, "description": element.description, key: urls, "kling_studio": meta}


def _json_type(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}
    return names.get(type(value), "a number")


def _import_entries(text: str | bytes) -> list[Any]:
    try:
        data = json.loads(text)
    except (ValueError, TypeError) as exc:
        raise ElementError([f"This is not JSON ({exc}): paste an element export or a kling_elements list."]) from exc
    if isinstance(data, dict):
        inner = data["input"] if isinstance(data.get("input"), dict) else data
        data = inner["kling_elements"] if "kling_elements" in inner else [data] if "name" in data else data
    if not isinstance(data, list):
        raise ElementError([f"Expected a list of elements (an export or a kling_elements list), "
                            f"but this JSON is {_json_type(data)}."])
    if not data:
        raise ElementError(["The list is empty: there is nothing to import."])
    return data


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _with_meta(media: ElementMedia, url: str, meta: dict[str, Any] | None) -> ElementMedia:
    """Restore exported metadata; a still-valid KIE URL stays usable, every URL stays a source to re-upload from."""
    if not meta:
        return media
    text = {k: meta[k] if isinstance(meta.get(k), str) else None
            for k in ("file_name", "mime_type", "source_url", "kie_url", "uploaded_at", "expires_at")}
    source = text["source_url"] if text["source_url"] and url_media(text["source_url"], media.kind)[0] else url
    kept_upload = text["kie_url"] == url and _parse_time(text["expires_at"]) is not None
    return replace(media, file_name=safe_file_name(text["file_name"]) if text["file_name"] else media.file_name,
                   source_url=source, mime_type=text["mime_type"], size=_int_or_none(meta.get("size")),
                   width=_int_or_none(meta.get("width")), height=_int_or_none(meta.get("height")),
                   kie_url=url if kept_upload else None,
                   uploaded_at=text["uploaded_at"] if kept_upload else None,
                   expires_at=text["expires_at"] if kept_upload else None)


def _element_from_entry(entry: object, stamp: str) -> Element:
    """An imported element (new id) from one export or kling_elements entry; raises ElementError."""
    if not isinstance(entry, dict):
        raise ElementError([f"is {_json_type(entry)}, not an element object with name, description and URLs"])
    name, description = entry.get("name"), entry.get("description")
    problems = (name_problems(name) if isinstance(name, str) else ["has no name"]) + _description_problems(description)
    meta = entry.get("kling_studio") if isinstance(entry.get("kling_studio"), dict) else {}
    by_url: dict[str, dict[str, Any]] = {}
    for raw in meta.get("media") if isinstance(meta.get("media"), list) else []:
        for key in ("kie_url", "source_url"):
            if isinstance(raw, dict) and isinstance(raw.get(key), str):
                by_url.setdefault(raw[key], raw)
    media: list[ElementMedia] = []
    for key, kind in (("element_input_urls", None), ("element_input_video_urls", "video")):
        value = entry.get(key, [])
        if not isinstance(value, list):
            problems.append(f"{key} must be a list of URLs")
            continue
        for url in value:
            guess = kind or ("video" if isinstance(url, str) and rules.looks_like_video_url(url) else "image")
            item, errs = url_media(url, guess)
            problems.extend(errs)
            if item is not None:
                media.append(_with_meta(item, item.source_url or "", by_url.get(url)))
    if not media and meta.get("media"):
        problems.append("has no URLs: its files were never uploaded. Upload it in the library it came from, "
                        "then export again.")
    else:
        problems += count_problems([m.kind for m in media])
    if problems:
        raise ElementError(problems)
    taken: set[str] = set()
    media = [replace(m, file_name=_unique_name(m.file_name, taken)) for m in media]
    return Element(uuid.uuid4().hex[:12], str(name), str(description).strip(), _element_kind(media), tuple(media),
                   stamp, stamp)
