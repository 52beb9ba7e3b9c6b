"""The sandbox video's still pictures, drawn once per shot with Pillow: background, title, prompt, @element cards, badge.

Sizes are in units of 1 % of the frame's short side, so every resolution (720p to 4K) has the same layout.
"""

from __future__ import annotations

import colorsys
import logging
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

logger = logging.getLogger(__name__)

FIRST_FRAME_WEIGHT = 0.65  # how much of the first frame shows through the first shot's tint
LAST_FRAME_WEIGHT = 0.65
MODE_COLOURS = {"std": (40, 110, 220), "pro": (150, 60, 200), "4K": (215, 140, 0)}
SOUND_COLOURS = {True: (30, 170, 80), False: (110, 110, 110)}
CARD_LABEL = (15, 15, 15)
TEXT = (255, 255, 255)
OUTLINE = (0, 0, 0)


@dataclass(frozen=True, eq=False)
class ElementCard:
    """An @element as a shot shows it: its name and its decoded pictures (images, or a video's first frame)."""

    name: str
    pictures: tuple[Image.Image, ...] = ()


@dataclass(frozen=True, eq=False)
class ShotCard:
    """What one shot's card says: its place in the job, its timing, its prompt and its elements."""

    index: int
    count: int
    start_s: int
    seconds: int
    prompt: str
    elements: tuple[ElementCard, ...] = field(default_factory=tuple)


@lru_cache(maxsize=16)
def font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's bundled font at a pixel size (no system font needed)."""
    try:
        return ImageFont.load_default(size=size)
    except (AttributeError, OSError, TypeError):
        return ImageFont.load_default()


def shot_colour(index: int) -> tuple[int, int, int]:
    """A distinct, muted colour per shot (low saturation, so an element's bright colour stands out)."""
    red, green, blue = colorsys.hsv_to_rgb((0.58 + index * 0.17) % 1.0, 0.45, 0.40)
    return int(red * 255), int(green * 255), int(blue * 255)


def badge_text(mode: str, size: tuple[int, int], sound: bool) -> str:
    """The corner badge: mode, resolution and sound, so variants are told apart at a glance."""
    return f"{mode.upper() if mode != '4K' else '4K'} · {size[0]}x{size[1]} · sound {'on' if sound else 'off'}"


def draw_card(size: tuple[int, int], shot: ShotCard, badge: tuple[str, bool], backdrop: Image.Image | None,
              backdrop_label: str = "", backdrop_weight: float = FIRST_FRAME_WEIGHT) -> Image.Image:
    """A shot's whole still picture; `badge` is (mode, sound); `backdrop` (a frame image) shows through it."""
    width, height = size
    unit = min(width, height) / 100
    frame = gradient(size, shot_colour(shot.index))
    if backdrop is not None:
        frame = Image.blend(frame, cover(backdrop, size), backdrop_weight)
    draw = ImageDraw.Draw(frame)
    margin = round(4 * unit)
    title = f"Shot {shot.index + 1}/{shot.count} · {clock(shot.start_s)}-{clock(shot.start_s + shot.seconds)}" \
            f" · {shot.seconds} s"
    _outlined(draw, (margin, margin), title, font(round(5 * unit)))
    if backdrop_label:
        _outlined(draw, (margin, margin + round(7 * unit)), backdrop_label, font(round(3.5 * unit)))
    _badge(draw, size, unit, *badge)
    cards_top = _element_cards(frame, draw, size, unit, shot.elements)
    _prompt(draw, size, unit, shot.prompt, top=margin + round(13 * unit), bottom=cards_top - round(3 * unit))
    _outlined(draw, (margin, height - round(12 * unit)), "KIE sandbox", font(round(3.5 * unit)), fill=(255, 196, 0))
    return frame


def _outlined(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, face: ImageFont.FreeTypeFont,
              fill: tuple[int, int, int] = TEXT) -> None:
    draw.text(xy, text, font=face, fill=fill, stroke_width=max(1, round(face.size / 14)), stroke_fill=OUTLINE)


def _badge(draw: ImageDraw.ImageDraw, size: tuple[int, int], unit: float, mode: str, sound: bool) -> None:
    """Top-right pill in the mode's colour, with a sound stripe green (on) or grey (off)."""
    face = font(round(4 * unit))
    text = badge_text(mode, size, sound)
    pad = round(1.5 * unit)
    right, top = size[0] - round(4 * unit), round(4 * unit)
    left = right - round(face.getlength(text)) - 2 * pad
    bottom = top + face.size + 2 * pad
    draw.rounded_rectangle((left, top, right, bottom), radius=pad, fill=MODE_COLOURS.get(mode, (90, 90, 90)))
    draw.rectangle((left, bottom - round(unit), right, bottom), fill=SOUND_COLOURS[bool(sound)])
    draw.text((left + pad, top + pad // 2), text, font=face, fill=TEXT)


def _prompt(draw: ImageDraw.ImageDraw, size: tuple[int, int], unit: float, prompt: str, top: int, bottom: int) -> None:
    face = font(round(4.2 * unit))
    margin = round(4 * unit)
    line_height = face.size + round(unit)
    max_lines = max(1, (bottom - top) // line_height)
    lines = wrap(prompt.strip() or "(no prompt)", face, size[0] - 2 * margin, max_lines)
    for number, line in enumerate(lines):
        _outlined(draw, (margin, top + number * line_height), line, face)


def _element_cards(frame: Image.Image, draw: ImageDraw.ImageDraw, size: tuple[int, int], unit: float,
                   elements: tuple[ElementCard, ...]) -> int:
    """Paste one card per referenced element along the bottom; returns the top of the card row."""
    width, height = size
    bottom = height - round(16 * unit)
    if not elements:
        return bottom
    margin, gap = round(4 * unit), round(3 * unit)
    side = min(round(26 * unit), (width - 2 * margin - gap * (len(elements) - 1)) // len(elements))
    label_h = round(6 * unit)
    top = bottom - side - label_h
    face = font(round(3.8 * unit))
    for number, element in enumerate(elements):
        left = margin + number * (side + gap)
        draw.rectangle((left - 2, top - 2, left + side + 1, bottom + 1), fill=(240, 240, 240))
        frame.paste(_tile(element.pictures, side), (left, top))
        draw.rectangle((left, top + side, left + side - 1, bottom - 1), fill=CARD_LABEL)
        label = fit(f"@{element.name}", face, side - round(2 * unit))
        draw.text((left + round(unit), top + side + round(unit)), label, font=face, fill=TEXT)
    return top


def _tile(pictures: tuple[Image.Image, ...], side: int) -> Image.Image:
    """The element's pictures in a square: one fills it, several share it as a 2×2 grid."""
    if not pictures:
        tile = Image.new("RGB", (side, side), (60, 60, 60))
        ImageDraw.Draw(tile).text((side // 10, side // 2), "no preview", font=font(max(8, side // 9)), fill=TEXT)
        return tile
    if len(pictures) == 1:
        return cover(pictures[0], (side, side))
    half = side // 2
    tile = Image.new("RGB", (side, side), (20, 20, 20))
    for number, picture in enumerate(pictures[:4]):
        tile.paste(cover(picture, (half, half)), ((number % 2) * half, (number // 2) * half))
    return tile


def gradient(size: tuple[int, int], colour: tuple[int, int, int]) -> Image.Image:
    """A diagonal gradient from the colour to a darker shade, computed small and scaled up (fast at 4K)."""
    width, height = size
    small_w, small_h = max(2, width // 16), max(2, height // 16)
    ramp = (np.linspace(0, 1, small_w)[None, :] + np.linspace(0, 1, small_h)[:, None]) / 2
    top, dark = np.array(colour, dtype=float), np.array(colour, dtype=float) / 4
    pixels = top * (1 - ramp[..., None]) + dark * ramp[..., None]
    return Image.fromarray(pixels.astype(np.uint8), "RGB").resize(size, Image.Resampling.BILINEAR)


def cover(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Scale and centre-crop an image so it fills `size`."""
    width, height = size
    scale = max(width / image.width, height / image.height)
    resized = image.resize((max(width, round(image.width * scale)), max(height, round(image.height * scale))))
    left, top = (resized.width - width) // 2, (resized.height - height) // 2
    return resized.crop((left, top, left + width, top + height))


def wrap(text: str, face: ImageFont.FreeTypeFont, max_width: int, max_lines: int) -> list[str]:
    """Greedy word wrap by pixel width, ending with an ellipsis when the text is too long."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if face.getlength(candidate) <= max_width or not current:
            current = candidate
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1].rstrip(".,;: ") + " …"
    return [fit(line, face, max_width) for line in lines]


def fit(text: str, face: ImageFont.FreeTypeFont, max_width: int) -> str:
    """The text, cut with an ellipsis when wider than `max_width` (a long @name, one huge word)."""
    if face.getlength(text) <= max_width:
        return text
    while len(text) > 1 and face.getlength(text + "…") > max_width:
        text = text[:-1]
    return text + "…"


def clock(seconds: float) -> str:
    """Seconds as M:SS."""
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}:{rest:02d}"
