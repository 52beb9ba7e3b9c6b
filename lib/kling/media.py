"""Check local images and videos against Kling 3.0's limits before uploading, reading headers only."""

from __future__ import annotations

import base64
import io
import logging
import os
import struct
from dataclasses import dataclass
from typing import IO

from PIL import Image

from lib.kling import rules
from lib.trust.limits import MAX_IMAGE_PIXELS, check_pixels

log = logging.getLogger(__name__)

MIB = 1024 * 1024
HEAD_BYTES = 32
TAIL_BYTES = 64 * 1024  # end markers sit at the very end; camera trailers can add a few KB
FTYP_MAX_BYTES = 4096

_IMAGE_SIGNATURES = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)
_MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp", "BMP": "image/bmp",
         "TIFF": "image/tiff", "HEIC": "image/heic", "AVIF": "image/avif", "MP4": "video/mp4", "MOV": "video/quicktime"}
_QUICKTIME_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}
_MOV_BRANDS = {b"qt  "}
_MP4_BRANDS = {b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"mp71", b"avc1", b"M4V ",
               b"M4VH", b"M4VP", b"mmp4", b"MSNV", b"dash", b"f4v ", b"XAVC", b"NDAS", b"mp4x"}
_IMAGE_BRANDS = {b"heic": "HEIC", b"heix": "HEIC", b"mif1": "HEIC", b"msf1": "HEIC", b"avif": "AVIF", b"avis": "AVIF"}
_END_MARKERS = {"JPEG": b"\xff\xd9", "PNG": b"\x00\x00\x00\x00IEND"}


@dataclass(frozen=True)
class MediaCheck:
    """What a local file is and whether Kling 3.0 accepts it; `problems` say why not."""

    ok: bool
    kind: str | None  # "image", "video" or None when the content is neither
    mime_type: str | None
    width: int | None
    height: int | None
    size: int
    problems: tuple[str, ...] = ()


def _size(fileobj: IO[bytes]) -> int:
    fileobj.seek(0, io.SEEK_END)
    return fileobj.tell()


def _read_at(fileobj: IO[bytes], offset: int, count: int) -> bytes:
    fileobj.seek(offset)
    return fileobj.read(count) or b""


def sniff_format(head: bytes) -> str | None:
    """The format named by a file's first bytes: JPEG, PNG, GIF, WEBP, BMP, TIFF, or ISOBMFF/QT for videos."""
    for signature, name in _IMAGE_SIGNATURES:
        if head.startswith(signature):
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:8] == b"ftyp":
        return "ISOBMFF"
    if head[4:8] in _QUICKTIME_ATOMS:
        return "QT"
    return None


def _megabytes(size: int, limit: int) -> str:
    text = f"{size / MIB:.1f} MB"
    # 10 MB + 1 byte still rounds to "10.0 MB": then the bytes show why it is refused.
    return f"{text} ({size:,} bytes)" if size > limit and round(size / MIB, 1) <= limit / MIB else text


def _unreadable(name: str, why: str) -> str:
    return f"{name} is not a readable JPG or PNG image: {why}"


def _image_size(name: str, fileobj: IO[bytes], fmt: str) -> tuple[int, int] | str:
    """(width, height) from the header only, or the problem that stopped reading it."""
    fileobj.seek(0)
    try:
        with Image.open(fileobj, formats=[fmt]) as image:  # parses the header; pixels stay unread
            return image.size
    except Image.DecompressionBombError:
        return f"{name} has far too many pixels to use: resize it to a few thousand pixels a side."
    except Exception as exc:  # Pillow raises many types for broken headers
        log.debug("header of %s unreadable: %s", name, exc)
        return _unreadable(name, "its header is damaged. Export or download it again.")


def _is_complete(fileobj: IO[bytes], fmt: str, size: int) -> bool:
    """True when the file ends with its format's end marker (a cut-off download does not)."""
    start = max(0, size - TAIL_BYTES)
    return _END_MARKERS[fmt] in _read_at(fileobj, start, size - start)


def _wrong_image_kind(name: str, fmt: str | None, head: bytes) -> str:
    if fmt in ("GIF", "WEBP", "BMP", "TIFF"):
        return f"{name} is a {fmt}, not a JPG or PNG: save it as PNG or JPG."
    if fmt in ("ISOBMFF", "QT"):
        video = _video_brand(head)
        if video in _IMAGE_BRANDS.values():
            return f"{name} is a {video} image, not a JPG or PNG: save it as PNG or JPG."
        return f"{name} is a video, not a JPG or PNG image: choose an image, or use it as a video element."
    return _unreadable(name, "the file is empty." if not head else "choose a JPG or PNG file.")


def check_image(name: str, fileobj: IO[bytes], *, min_side: int | None = rules.IMAGE_MIN_SIDE) -> MediaCheck:
    """Check an image by content: JPG/PNG, complete, at least 300×300 px, at most 10 MB."""
    try:
        size = _size(fileobj)
        head = _read_at(fileobj, 0, HEAD_BYTES)
        fmt = sniff_format(head)
        problems = []
        if size > rules.IMAGE_MAX_BYTES:
            problems.append(f"{name} is {_megabytes(size, rules.IMAGE_MAX_BYTES)}; images may be at most "
                            f"{rules.IMAGE_MAX_BYTES // MIB} MB: resize it or save it as JPG.")
        if fmt not in rules.IMAGE_FORMATS:
            problems.insert(0, _wrong_image_kind(name, fmt, head))
            kind = "image" if fmt in _MIME else None
            return MediaCheck(False, kind, _MIME.get(fmt or ""), None, None, size, tuple(problems))
        dimensions = _image_size(name, fileobj, fmt)
        if isinstance(dimensions, str):
            return MediaCheck(False, "image", _MIME[fmt], None, None, size, (dimensions, *problems))
        width, height = dimensions
        if (too_big := check_pixels(width, height, name)) is not None:  # before anything decodes it
            return MediaCheck(False, "image", _MIME[fmt], width, height, size, (too_big, *problems))
        if not _is_complete(fileobj, fmt, size):
            problems.insert(0, _unreadable(name, "it looks cut off (an incomplete download?). Export or download it again."))
        if min_side and (width < min_side or height < min_side):
            problems.append(f"{name} is {width}×{height} px; elements need at least {min_side}×{min_side} px: use a larger image.")
        return MediaCheck(not problems, "image", _MIME[fmt], width, height, size, tuple(problems))
    finally:
        fileobj.seek(0)


def _video_brand(head: bytes) -> str | None:
    """MP4, MOV, HEIC/AVIF (still images in the same container) or None, from the ftyp box."""
    if head[4:8] in _QUICKTIME_ATOMS:
        return "MOV"
    if head[4:8] != b"ftyp" or len(head) < 12:
        return None
    box_size = struct.unpack(">I", head[:4])[0]
    end = min(len(head), box_size if box_size >= 16 else len(head))
    brands = [head[8:12]] + [head[i : i + 4] for i in range(16, end - 3, 4)]
    for brand in brands:  # the major brand decides; compatible brands break ties
        if brand in _MOV_BRANDS:
            return "MOV"
        if brand in _MP4_BRANDS:
            return "MP4"
        if brand in _IMAGE_BRANDS:
            return _IMAGE_BRANDS[brand]
    return None


def check_video(name: str, fileobj: IO[bytes]) -> MediaCheck:
    """Check a video by its container signature: MP4 or MOV, at most 50 MB."""
    try:
        size = _size(fileobj)
        head = _read_at(fileobj, 0, FTYP_MAX_BYTES)
        container = _video_brand(head)
        problems = []
        if container not in ("MP4", "MOV"):
            fmt = sniff_format(head[:HEAD_BYTES])
            if not head:
                problems.append(f"{name} is not a readable MP4 or MOV video: the file is empty.")
            elif container or fmt in _MIME:
                problems.append(f"{name} is a {container or fmt} image, not an MP4 or MOV video: choose a video file.")
            else:
                problems.append(f"{name} is not an MP4 or MOV video: export it as MP4 (H.264).")
        if size > rules.VIDEO_MAX_BYTES:
            problems.append(f"{name} is {_megabytes(size, rules.VIDEO_MAX_BYTES)}; videos may be at most "
                            f"{rules.VIDEO_MAX_BYTES // MIB} MB: trim it or export it at a lower bitrate.")
        ok = not problems
        kind = "video" if container in ("MP4", "MOV") else None
        return MediaCheck(ok, kind, _MIME.get(container or ""), None, None, size, tuple(problems))
    finally:
        fileobj.seek(0)


def check_media(name: str, fileobj: IO[bytes], *, min_side: int | None = rules.IMAGE_MIN_SIDE) -> MediaCheck:
    """Check a file as an image or a video, whichever its content is."""
    head = _read_at(fileobj, 0, HEAD_BYTES)
    fileobj.seek(0)
    fmt = sniff_format(head)
    if fmt in ("ISOBMFF", "QT") and _video_brand(_read_at(fileobj, 0, FTYP_MAX_BYTES)) in ("MP4", "MOV"):
        return check_video(name, fileobj)
    if fmt is not None:
        return check_image(name, fileobj, min_side=min_side)
    size = _size(fileobj)
    fileobj.seek(0)
    why = "the file is empty." if size == 0 else "choose a JPG or PNG image, or an MP4 or MOV video."
    return MediaCheck(False, None, None, None, None, size, (f"{name} is not a readable image or video: {why}",))


def thumbnail_jpeg(path: str | os.PathLike[str] | IO[bytes], side: int,
                   box: tuple[int, tuple[int, int, int], int] | None = None) -> bytes | None:
    """A small JPEG of a stored image, or None when it cannot be read or is over the pixel cap (checked from
    its header before any pixel is decoded). With `box` = (box side, colour, margin) the scaled image is centred
    in a box of that side (white margin, then the colour), still decoded and encoded once."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                return None
            image.draft("RGB", (side * 2, side * 2))  # JPEG decodes at a fraction of its size
            image.thumbnail((side, side))
            picture = image.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as exc:
        log.debug("no thumbnail for %s: %s", path, exc)
        return None
    if box is not None:
        outer, colour, margin = box
        framed = Image.new("RGB", (outer, outer), (255, 255, 255))
        framed.paste(colour, (margin, margin, outer - margin, outer - margin))
        framed.paste(picture, ((outer - picture.width) // 2, (outer - picture.height) // 2))
        picture = framed
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=85)
    return out.getvalue()


def jpeg_data_uri(jpeg: bytes | None) -> str | None:
    """The app's own small JPEG as a `data:` address (None unless it is a JPEG): st.image and the History table draw
    it in place, so a viewer's browser asks no server for it, and a page of cards makes no request per thumbnail
    (issue 17: those requests were most of a page turn)."""
    if jpeg is None or not jpeg.startswith(b"\xff\xd8\xff"):
        return None
    return "data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii")
