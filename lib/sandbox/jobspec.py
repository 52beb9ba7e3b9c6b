"""What a createTask body asks the sandbox to render: shots, elements and frames, resolved from its own file store.

Only the sandbox's own /files/ URLs are opened (through `resolve`, a path lookup); nothing is ever fetched.
Every image is checked against the pixel cap (lib.trust.limits) from its header, before it is decoded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from lib.kling import rules
from lib.kling.job import parse_duration, referenced_names
from lib.sandbox.animatic import RenderSpec, ShotSpec
from lib.sandbox.cards import ElementCard
from lib.sandbox.pictures import decode_picture

logger = logging.getLogger(__name__)

Resolve = Callable[[str], Path | None]  # a sandbox file URL → its file on disk, or None (foreign, missing)


def spec_from_payload(payload: dict[str, Any], resolve: Resolve) -> RenderSpec:
    """The RenderSpec of a (validated) createTask body."""
    data = payload.get("input") if isinstance(payload.get("input"), dict) else {}
    images = data.get("image_urls") if isinstance(data.get("image_urls"), list) else []
    first = _picture(images[0], resolve) if images else None
    last = _picture(images[1], resolve) if len(images) > 1 else None
    aspect = data.get("aspect_ratio")
    if aspect not in rules.ASPECT_RATIOS:
        aspect = _closest_aspect(first) if first else "16:9"  # KIE follows the first frame's shape
    mode = data.get("mode") if data.get("mode") in rules.MODES else "std"
    elements = _elements(data.get("kling_elements"), resolve)
    shots = tuple(ShotSpec(prompt, seconds, tuple(elements[n] for n in referenced_names(prompt) if n in elements))
                  for prompt, seconds in _shots(data))
    return RenderSpec(shots, aspect, mode, data.get("sound") is True, first_frame=first, last_frame=last)


def _shots(data: dict[str, Any]) -> list[tuple[str, int]]:
    """(prompt, seconds) per shot: multi_prompt's shots, or the single prompt for the whole duration."""
    shots = data.get("multi_prompt") if data.get("multi_shots") else None
    if isinstance(shots, list) and shots:
        found = [(str(shot.get("prompt", "")), max(1, parse_duration(shot.get("duration")) or 1))
                 for shot in shots if isinstance(shot, dict)]
        if found:
            return found
    return [(str(data.get("prompt", "")), max(1, parse_duration(data.get("duration")) or rules.DEFAULT_DURATION))]


def _elements(entries: Any, resolve: Resolve) -> dict[str, ElementCard]:
    """name → card, with the pictures of every image URL (or the video's first frame) the sandbox holds."""
    cards: dict[str, ElementCard] = {}
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            continue
        urls = [*_strings(entry.get("element_input_urls")), *_strings(entry.get("element_input_video_urls"))]
        pictures = tuple(p for url in urls[:rules.ELEMENT_IMAGES_MAX] if (p := _picture(url, resolve)) is not None)
        cards[entry["name"]] = ElementCard(entry["name"], pictures)
    return cards


def _strings(value: Any) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _picture(url: Any, resolve: Resolve) -> Image.Image | None:
    path = resolve(url) if isinstance(url, str) else None
    return decode_picture(path) if path is not None else None


def _closest_aspect(picture: Image.Image) -> str:
    """The supported aspect ratio nearest the picture's."""
    ratio = picture.width / max(1, picture.height)
    return min({"16:9": 16 / 9, "9:16": 9 / 16, "1:1": 1.0}.items(), key=lambda item: abs(item[1] - ratio))[0]
