"""Every Kling 3.0 limit in one table, each rule naming the document it comes from.

Sources are the tags of kie-api.md §0: "seed" is the user's own reference
(seed-kling-3.0-kie-api.md), K1–K4 are KIE's doc versions, LV is the gateway/kie-api live
verification, and "app" marks a decision this app makes where KIE documents nothing
(kie-api.md §13 lists those unknowns).
"""

from __future__ import annotations

import logging
import re
import unicodedata
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
ELEMENT_NAME_MAX_CHARS = 40  # app decision: KIE documents no limit (kie-api.md §13.6); keeps @name short in prompts
_NAME_CHAR_RE = re.compile(rf"[{ELEMENT_NAME_CHARS}]")
# Letters that look Latin but are not (Cyrillic, Greek): the usual way a name "looks right" and fails.
_LOOKALIKES = dict(zip("асеіјоррѕхуАВСЕНІЈКМНОРЅТХУΑΒΕΖΗΙΚΜΝΟΡΤΥΧοντ",
                       "aceijoppsxyABCEHIJKMHOPSTXYABEZHIKMNOPTYXovt", strict=True))
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
    live: str = ""        # would KIE refuse a live job that breaks it: one of LIVE_OUTCOMES, "" when not recorded
    live_why: str = ""    # the evidence behind `live`, in a few words a person can check


LIVE_REFUSED, LIVE_ACCEPTED, LIVE_UNCONFIRMED = "refused", "accepted", "unconfirmed"
LIVE_OUTCOMES = (LIVE_REFUSED, LIVE_ACCEPTED, LIVE_UNCONFIRMED)


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
    Rule("element_name", f"element names: letters, digits, _ and -, at most {ELEMENT_NAME_MAX_CHARS}, unique",
         "app (kie-api.md §13.6), K1–K4 (required)"),
    Rule("element_description", "each element has a description", "seed, K1–K4"),
    Rule("element_images", f"{ELEMENT_IMAGES_MIN}–{ELEMENT_IMAGES_MAX} image URLs per element", "seed, K1–K4"),
    Rule("element_video", "exactly one video URL per video element, never mixed with images", "seed, K1, K4"),
    Rule("video_window", "K4 video window: end_time > start_time, 3000–8000 ms", "K4"),
    Rule("reference", "every @name in a prompt names a defined element", "seed, K1–K4"),
    Rule("unused_element", "an element no prompt references is left out", "app", WARNING),
    Rule("first_frame", "elements referenced without a first frame", "K2–K4 EN (CN: optional)", WARNING,
         live=LIVE_UNCONFIRMED, live_why="KIE's English docs call a first frame required with elements, its Chinese "
         "docs call it optional, and no live request has settled it; the sandbox accepts it"),
    Rule("frame_size", f"frame images under {IMAGE_MIN_SIDE} px a side", "kie-api.md §13.7 (other hosts: ≥300 px)",
         WARNING, live=LIVE_UNCONFIRMED, live_why="KIE documents no pixel minimum for frames; other Kling hosts "
         f"refuse images under {IMAGE_MIN_SIDE} px"),
    Rule("cfg_scale", "cfg_scale is not in KIE's schema", "seed has it; K1–K4 do not (Decision 5)", WARNING),
    Rule("ignored_field", "a field the request does not use is ignored", "K1–K4", WARNING),
    Rule("unknown_field", "a field that is not part of Kling 3.0's schema", "K1–K4", WARNING),
)
RULES: dict[str, Rule] = {rule.key: rule for rule in _RULES}
assert all(rule.live in ("", *LIVE_OUTCOMES) for rule in _RULES), "a rule's live outcome must be one of LIVE_OUTCOMES"


def video_element_schema() -> str:
    """The active video element schema (the module switch), checked against the known ones."""
    if VIDEO_ELEMENT_SCHEMA not in VIDEO_ELEMENT_SCHEMAS:
        raise ValueError(f"VIDEO_ELEMENT_SCHEMA must be one of {VIDEO_ELEMENT_SCHEMAS}, not {VIDEO_ELEMENT_SCHEMA!r}")
    return VIDEO_ELEMENT_SCHEMA


def looks_like_video_url(url: str) -> bool:
    """True when a URL's path ends in .mp4 or .mov (how K4 tells a video element apart)."""
    path = url.split("?", 1)[0].split("#", 1)[0].lower()
    return path.endswith(VIDEO_URL_SUFFIXES)


# ---------------------------------------------------------------- element names and file counts

def suggest_element_name(name: str) -> str:
    """The nearest valid name: look-alikes made Latin, accents dropped, spaces to _, others removed."""
    text = "".join(_LOOKALIKES.get(c, c) for c in name.strip())
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"\s+", "_", text)
    text = "".join(_NAME_CHAR_RE.findall(text))[:ELEMENT_NAME_MAX_CHARS]
    return text or "element_1"


def element_name_problems(name: str) -> list[str]:
    """Why a name cannot be used as @name (empty when it can): its characters and length, one message each."""
    if not name or not name.strip():
        return ["Name is empty: type a short name such as 'my_cat' (letters, digits, _ or -)."]
    if ELEMENT_NAME_RE.fullmatch(name) and len(name) <= ELEMENT_NAME_MAX_CHARS:
        return []
    hint = suggest_element_name(name)
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
    if len(name) > ELEMENT_NAME_MAX_CHARS:
        problems.append(f"Name '{name[:20]}…' is {len(name)} characters long: use at most {ELEMENT_NAME_MAX_CHARS}, "
                        f"e.g. '{hint}'")
    return problems


@dataclass(frozen=True)
class CountProblem:
    """Why an element's files cannot make an element: the rule broken, which files it is about, the fix."""

    rule: str     # "element_images" or "element_video"
    files: str    # "images", "videos" or "both" (images mixed with a video)
    message: str


def element_count_problem(images: int, videos: int) -> CountProblem | None:
    """The file-count rule: 2–4 images or exactly 1 video, never both (None when the counts are fine)."""
    low, high = ELEMENT_IMAGES_MIN, ELEMENT_IMAGES_MAX
    if images and videos:
        return CountProblem("element_video", "both", (
            f"An element takes images or one video, not both: remove the video, or remove the {images} "
            f"image{'s' if images > 1 else ''} and keep the video."))
    if videos > ELEMENT_VIDEOS:
        return CountProblem("element_video", "videos", (
            f"{videos} videos: an element takes exactly {ELEMENT_VIDEOS} video. Keep one and remove the rest."))
    if videos:
        return None
    if images == 0:
        return CountProblem("element_images", "images", (
            f"No reference files: add {low}–{high} images (JPG/PNG) or 1 video (MP4/MOV)."))
    if images < low:
        return CountProblem("element_images", "images", (
            f"Only {images} image: add {low - images}–{high - images} more (an element takes {low}–{high} "
            "images), or use 1 video instead."))
    if images > high:
        return CountProblem("element_images", "images", (
            f"{images} images is too many: remove {images - high} (an element takes {low}–{high} images)."))
    return None
