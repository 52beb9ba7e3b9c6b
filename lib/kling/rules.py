"""Every Kling 3.0 limit in one table, each rule naming the document it comes from.

Sources are the tags of kie-api.md §0: "seed" is the user's own reference
(seed-kling-3.0-kie-api.md), K1–K4 are KIE's doc versions, LV is the gateway/kie-api live
verification, and "app" marks a decision this app makes where KIE documents nothing
(kie-api.md §13 lists those unknowns).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

log = logging.getLogger(__name__)

ERROR = "error"
WARNING = "warning"

MODEL = "kling-3.0/video"
DURATION_MIN, DURATION_MAX = 3, 15
DEFAULT_DURATION = 5
MODES = ("std", "pro", "4K")
ASPECT_RATIOS = ("16:9", "9:16", "1:1")

PROMPT_MAX_CHARS = 2500
SHOT_PROMPT_MAX_CHARS = 500
ELEMENT_REFERENCE_CHARS = 37
SHOTS_MIN, SHOTS_MAX = 1, 5
SHOT_DURATION_MIN, SHOT_DURATION_MAX = 1, 12
FRAMES_MAX_SINGLE_SHOT = 2
FRAMES_MAX_MULTI_SHOT = 1

ELEMENTS_MAX = 3
ELEMENT_IMAGES_MIN, ELEMENT_IMAGES_MAX = 2, 4
ELEMENT_VIDEOS = 1
ELEMENT_NAME_CHARS = "A-Za-z0-9_-"  # ASCII only on purpose: look-alike letters are refused
ELEMENT_NAME_RE = re.compile(rf"[{ELEMENT_NAME_CHARS}]+")  # a whole name (fullmatch); @references: lib.kling.job
# K4 video elements: a trimmed window of the clip, in milliseconds.
VIDEO_WINDOW_MIN_MS, VIDEO_WINDOW_MAX_MS = 3000, 8000

IMAGE_MIN_SIDE = 300
IMAGE_MAX_BYTES = 10 * 1024 * 1024
VIDEO_MAX_BYTES = 50 * 1024 * 1024
IMAGE_FORMATS = ("JPEG", "PNG")
URL_SCHEMES = ("http", "https")
IMAGE_URL_SUFFIXES = (".jpg", ".jpeg", ".png")
VIDEO_URL_SUFFIXES = (".mp4", ".mov")

# kie-api.md Decision 6: where a video element's URL goes. "K1" (the seed's schema):
# `element_input_video_urls`; "K4" (latest docs): inside `element_input_urls`, with
# optional `start_time`/`end_time`. One switch, read at call time by validation and jobs.
VIDEO_ELEMENT_SCHEMA = "K1"
VIDEO_ELEMENT_SCHEMAS = ("K1", "K4")
VIDEO_FIELD_BY_SCHEMA = {"K1": "element_input_video_urls", "K4": "element_input_urls"}

TOP_LEVEL_FIELDS = ("model", "callBackUrl", "input")
INPUT_FIELDS = (
    "prompt", "multi_prompt", "image_urls", "sound", "duration", "aspect_ratio", "mode",
    "multi_shots", "kling_elements", "cfg_scale",
)
ELEMENT_FIELDS = (
    "name", "description", "element_input_urls", "element_input_video_urls",
    "element_input_audio_urls", "start_time", "end_time",
)


@dataclass(frozen=True)
class Rule:
    """One checked constraint: what it says, how strict, and where it comes from."""

    key: str
    summary: str
    source: str
    level: str = ERROR


_RULES = (
    Rule("model", f"model is {MODEL}", "seed, K1–K4"),
    Rule("callback_url", "callBackUrl, when present, is an http(s) URL", "K2–K4 (format: uri)"),
    Rule("input", "input is an object", "seed, K1–K4"),
    Rule("duration", f'duration is a string "{DURATION_MIN}"–"{DURATION_MAX}"', "seed, K1–K4"),
    Rule("mode", "mode is std, pro or 4K", "seed (std, pro), K3–K4 (4K)"),
    Rule("aspect_ratio", "aspect_ratio, when present, is 16:9, 9:16 or 1:1", "seed, K1–K4"),
    Rule("sound", "sound is present and a boolean", "K2–K4 schema, LV ('sound cannot be empty')"),
    Rule("multi_shots", "multi_shots is present and a boolean", "seed, K1–K4 schema"),
    Rule("prompt", "single-shot: a non-empty prompt", "seed, K1–K4"),
    Rule("prompt_length", f"single-shot prompt ≤{PROMPT_MAX_CHARS} chars, 37 per @element", "LV, K2–K4 (37 chars)"),
    Rule("frames", "≤2 frame images single-shot, ≤1 multi-shot", "K1–K4"),
    Rule("url", "every URL is an absolute http(s) URL", "K2–K4 (format: uri), app"),
    Rule("shots", f"multi-shot: {SHOTS_MIN}–{SHOTS_MAX} shots", "seed (required), K2–K4 (≤5)"),
    Rule("shot_duration", f"each shot lasts a whole {SHOT_DURATION_MIN}–{SHOT_DURATION_MAX} s", "K1–K4"),
    Rule("shot_prompt", f"each shot prompt non-empty, ≤{SHOT_PROMPT_MAX_CHARS} chars, 37 per @element", "K2–K4"),
    Rule("shot_sum", "shot durations add up to duration", "O-KL, O-REP; kie-api Decision 4"),
    Rule("multi_sound", "multi-shot needs sound on", "K1 ('must be true')"),
    Rule("elements", f"at most {ELEMENTS_MAX} elements", "K2–K4 (maxItems: 3)"),
    Rule("element_name", "element names: letters, digits, _ and -, unique", "app (kie-api.md §13.6), K1–K4 (required)"),
    Rule("element_description", "each element has a description", "seed, K1–K4"),
    Rule("element_images", f"{ELEMENT_IMAGES_MIN}–{ELEMENT_IMAGES_MAX} image URLs per element", "seed, K1–K4"),
    Rule("element_video", "exactly one video URL per video element, never mixed with images", "seed, K1, K4"),
    Rule("video_window", "K4 video window: end_time > start_time, 3000–8000 ms", "K4"),
    Rule("reference", "every @name in a prompt names a defined element", "seed, K1–K4"),
    Rule("unused_element", "an element no prompt references is left out", "app", WARNING),
    Rule("first_frame", "elements referenced without a first frame", "K2–K4 EN (CN: optional)", WARNING),
    Rule("cfg_scale", "cfg_scale is not in KIE's schema", "seed has it; K1–K4 do not (Decision 5)", WARNING),
    Rule("ignored_field", "a field the request does not use is ignored", "K1–K4", WARNING),
    Rule("unknown_field", "a field that is not part of Kling 3.0's schema", "K1–K4", WARNING),
)
RULES: dict[str, Rule] = {rule.key: rule for rule in _RULES}


def rule_source(key: str) -> str:
    """The document a rule comes from, for tooltips and reports."""
    return RULES[key].source


def video_element_schema() -> str:
    """The active video element schema (the module switch), checked against the known ones."""
    if VIDEO_ELEMENT_SCHEMA not in VIDEO_ELEMENT_SCHEMAS:
        raise ValueError(f"VIDEO_ELEMENT_SCHEMA must be one of {VIDEO_ELEMENT_SCHEMAS}, not {VIDEO_ELEMENT_SCHEMA!r}")
    return VIDEO_ELEMENT_SCHEMA


def looks_like_video_url(url: str) -> bool:
    """True when a URL's path ends in .mp4 or .mov (how K4 tells a video element apart)."""
    path = url.split("?", 1)[0].split("#", 1)[0].lower()
    return path.endswith(VIDEO_URL_SUFFIXES)
