"""Input is bounded before it is parsed: file sizes, JSON depth and size, CSV rows and image pixels."""

from __future__ import annotations

import json
from typing import Any

MIB = 2**20
MAX_HISTORY_IMPORT_BYTES = 64 * MIB     # a 100,000-run export is about 60 MB
MAX_HISTORY_IMPORT_ROWS = 200_000
MAX_JSON_IMPORT_BYTES = 5 * MIB         # element libraries, kling_elements lists, recipes
MAX_BUNDLE_BYTES = 200 * MIB            # a zip of library.json and originals
MAX_BUNDLE_MEMBERS = 2_001              # library.json and up to 500 elements × 4 files
MAX_ZIP_RATIO = 100                     # a member unpacking to over 100× its packed size is a zip bomb
MAX_JSON_DEPTH = 32
MAX_CELL_JSON_BYTES = 1 * MIB           # payload_json / shots_json cells
# An image over this many pixels is refused before decoding (a few-KB PNG can claim a gigapixel).
MAX_IMAGE_PIXELS = 40_000_000           # e.g. 8000×5000; KIE takes ≤10 MB files


class InputTooLarge(ValueError):
    """Input over a limit; the message names what, the limit and the fix."""


def _mb(n: int) -> str:
    return f"{n / MIB:.1f} MB" if n < 10 * MIB else f"{n / MIB:.0f} MB"


def check_size(size: int, limit: int, what: str) -> None:
    """Raise InputTooLarge when `size` bytes is over `limit`."""
    if size > limit:
        raise InputTooLarge(f"{what} is {_mb(size)}; the limit is {_mb(limit)}. Split it into smaller files.")


def json_depth(text: str | bytes, limit: int = MAX_JSON_DEPTH) -> int:
    """The deepest nesting of [ and { in JSON text (strings skipped); stops counting past `limit`."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else bytes(text)
    depth = deepest = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def loads_bounded(text: str | bytes, *, max_bytes: int = MAX_JSON_IMPORT_BYTES, max_depth: int = MAX_JSON_DEPTH,
                  what: str = "The JSON") -> Any:
    """json.loads after checking size and nesting depth; raises InputTooLarge or ValueError (never RecursionError)."""
    check_size(len(text), max_bytes, what)
    if json_depth(text, max_depth) > max_depth:
        raise InputTooLarge(f"{what} is nested more than {max_depth} levels deep; refused.")
    try:
        return json.loads(text)
    except RecursionError:  # belt and braces: the depth check should make this unreachable
        raise InputTooLarge(f"{what} is nested too deeply; refused.") from None


def check_pixels(width: int, height: int, name: str, limit: int = MAX_IMAGE_PIXELS) -> str | None:
    """A message when an image's declared size is over the pixel cap (checked from its header, before decoding)."""
    if width * height > limit:
        return (f"{name} is {width}×{height} pixels ({width * height / 1e6:.0f} megapixels); images may have at most "
                f"{limit / 1e6:.0f} megapixels: resize it before using it.")
    return None
