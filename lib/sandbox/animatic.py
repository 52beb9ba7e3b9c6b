"""Render a small, real H.264 MP4 "animatic" of a job's shots for the offline sandbox."""

from __future__ import annotations

import colorsys
import io
import logging
import tempfile
from functools import lru_cache
from pathlib import Path

import av
from PIL import Image, ImageDraw, ImageFont

logger = logging.getLogger(__name__)

FRAME_SIZES: dict[str, tuple[int, int]] = {
    "16:9": (384, 216),
    "9:16": (216, 384),
    "1:1": (288, 288),
}
PAN_MARGIN = 0.15  # the background is this much wider than the frame so it can pan
FIRST_FRAME_WEIGHT = 0.65  # how much of the first frame shows through the first shot's tint


def render_animatic(
    shots: list[tuple[str, int]],
    aspect_ratio: str,
    first_frame: bytes | None = None,
    fps: int = 12,
) -> bytes:
    """Encode the shots as a playable H.264 yuv420p MP4 lasting the sum of their durations."""
    if aspect_ratio not in FRAME_SIZES:
        raise ValueError(f"aspect_ratio must be one of {sorted(FRAME_SIZES)}, got {aspect_ratio!r}")
    if not shots or any(int(seconds) < 1 for _, seconds in shots):
        raise ValueError("render_animatic needs at least one shot, each lasting 1 s or more")
    if fps < 1:
        raise ValueError("fps must be positive")
    size = FRAME_SIZES[aspect_ratio]
    total_frames = sum(int(seconds) for _, seconds in shots) * fps
    first_image = _decode_image(first_frame)
    # faststart (moov before mdat, so browsers start playing at once) needs a seekable real file
    with tempfile.TemporaryDirectory(prefix="animatic-") as tmp:
        path = Path(tmp) / "animatic.mp4"
        _encode(path, shots, size, first_image, fps, total_frames)
        return path.read_bytes()


def _encode(
    path: Path,
    shots: list[tuple[str, int]],
    size: tuple[int, int],
    first_image: Image.Image | None,
    fps: int,
    total_frames: int,
) -> None:
    """Draw every frame and mux the H.264 stream into `path`."""
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"preset": "ultrafast", "tune": "stillimage", "crf": "30"}
        frame_index = 0
        for shot_index, (prompt, seconds) in enumerate(shots):
            layers = _shot_card(size, shot_index, len(shots), prompt, int(seconds),
                              first_image if shot_index == 0 else None)
            for local in range(int(seconds) * fps):
                image = _compose_frame(layers, size, local / (int(seconds) * fps),
                                       frame_index, total_frames, fps)
                video_frame = av.VideoFrame.from_image(image)
                video_frame.pts = frame_index
                container.mux(stream.encode(video_frame))
                frame_index += 1
        container.mux(stream.encode(None))


def _decode_image(data: bytes | None) -> Image.Image | None:
    """Open the first-frame bytes as RGB, or None when absent or unreadable."""
    if not data:
        return None
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.convert("RGB")
    except (OSError, ValueError) as exc:
        logger.warning("Ignoring unreadable first frame (%s)", exc)
        return None


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's bundled font at a pixel size (no system font needed)."""
    try:
        return ImageFont.load_default(size=size)
    except (AttributeError, OSError, TypeError):
        return ImageFont.load_default()


def _shot_colour(index: int) -> tuple[int, int, int]:
    """A distinct, muted colour per shot."""
    red, green, blue = colorsys.hsv_to_rgb((0.58 + index * 0.17) % 1.0, 0.55, 0.45)
    return int(red * 255), int(green * 255), int(blue * 255)


def _shot_card(
    size: tuple[int, int],
    index: int,
    count: int,
    prompt: str,
    seconds: int,
    first_image: Image.Image | None,
) -> tuple[Image.Image, Image.Image]:
    """Draw a shot's static layers: a background wider than the frame (to pan) and a text overlay."""
    width, height = size
    wide = (int(width * (1 + PAN_MARGIN)), height)
    background = _gradient(wide, _shot_colour(index))
    if first_image is not None:
        background = Image.blend(background, _cover(first_image, wide), FIRST_FRAME_WEIGHT)
    overlay = Image.new("RGBA", size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    margin = max(8, width // 24)
    label_font = _font(max(10, min(width, height) // 16))
    draw.text((margin, margin), f"Shot {index + 1}/{count} · {seconds} s",
              font=label_font, fill=(255, 255, 255), stroke_width=1, stroke_fill=(0, 0, 0))
    body_font = _font(max(10, min(width, height) // 16))
    line_height = body_font.size + 4
    lines = _wrap(prompt.strip() or "(no prompt)", body_font, width - 2 * margin,
                  max_lines=max(2, (height - 6 * margin) // line_height))
    top = (height - line_height * len(lines)) // 2
    for number, line in enumerate(lines):
        draw.text((margin, top + number * line_height), line, font=body_font,
                  fill=(255, 255, 255), stroke_width=1, stroke_fill=(0, 0, 0))
    return background, overlay


def _gradient(size: tuple[int, int], colour: tuple[int, int, int]) -> Image.Image:
    """A diagonal gradient from the shot colour to a darker shade."""
    width, height = size
    vertical = Image.linear_gradient("L").resize((width, height))
    ramp = Image.blend(vertical, vertical.transpose(Image.Transpose.ROTATE_90).resize((width, height)), 0.5)
    dark = tuple(channel // 4 for channel in colour)
    return Image.composite(Image.new("RGB", size, dark), Image.new("RGB", size, colour), ramp)


def _cover(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Scale and centre-crop an image so it fills `size`."""
    width, height = size
    scale = max(width / image.width, height / image.height)
    resized = image.resize((max(width, round(image.width * scale)),
                            max(height, round(image.height * scale))))
    left = (resized.width - width) // 2
    top = (resized.height - height) // 2
    return resized.crop((left, top, left + width, top + height))


def _wrap(text: str, font: ImageFont.FreeTypeFont, max_width: int, max_lines: int) -> list[str]:
    """Greedy word wrap by pixel width, ending with an ellipsis when the text is too long."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}".strip()
        if font.getlength(candidate) <= max_width or not current:
            current = candidate
        else:
            lines.append(current)
            current = word
    if current:
        lines.append(current)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1].rstrip(".,;: ") + " …"
    return lines


def _compose_frame(
    layers: tuple[Image.Image, Image.Image],
    size: tuple[int, int],
    shot_progress: float,
    frame_index: int,
    total_frames: int,
    fps: int,
) -> Image.Image:
    """Crop the panning window, lay the text over it and draw the progress bar and timecode."""
    background, overlay = layers
    width, height = size
    pan = round((background.width - width) * shot_progress)
    frame = background.crop((pan, 0, pan + width, height))
    frame.paste(overlay, (0, 0), overlay)
    draw = ImageDraw.Draw(frame)
    bar_top = height - max(4, height // 40)
    done = round(width * (frame_index + 1) / total_frames)
    draw.rectangle((0, bar_top, width, height), fill=(30, 30, 30))
    draw.rectangle((0, bar_top, done, height), fill=(255, 196, 0))
    font = _font(max(9, min(width, height) // 22))
    timecode = f"{_timecode(frame_index / fps)} / {_timecode(total_frames / fps)}"
    draw.text((width - 6 - font.getlength(timecode), bar_top - font.size - 6), timecode,
              font=font, fill=(255, 255, 255), stroke_width=1, stroke_fill=(0, 0, 0))
    draw.text((6, bar_top - font.size - 6), "KIE sandbox", font=font, fill=(255, 196, 0),
              stroke_width=1, stroke_fill=(0, 0, 0))
    return frame


def _timecode(seconds: float) -> str:
    """Format seconds as MM:SS.t."""
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes):02d}:{rest:04.1f}"
