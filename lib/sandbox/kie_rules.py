"""What KIE itself refuses in a createTask body, in KIE's terse wording — never the app's friendly explanations.

The app's own pre-submit checks (lib.kling.validation) are what a person sees first; this is the server's answer
when something gets past them, so a demo shows whether the app caught the problem. The limits come from
lib.kling.rules. Wording: "duration cannot be greater than 15" / "cannot be less than 3" (community live probe)
and "sound cannot be empty" (live) are KIE's verbatim; "model is not supported" is the docs double's; the rest
follow the same "<field> cannot be …" pattern, because KIE documents the limits but not their messages.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from lib.kling import rules
from lib.kling.job import parse_duration, prompt_budget_length, referenced_names

logger = logging.getLogger(__name__)

Check = Callable[[dict[str, Any]], str | None]


def kie_error(payload: Any) -> str | None:
    """KIE's message for the first thing it refuses in this body, or None when it takes it."""
    if not isinstance(payload, dict):
        return "Request body must be a JSON object"
    if payload.get("model") != rules.MODEL:
        return "model is not supported"
    url = payload.get("callBackUrl")
    if url not in (None, "") and not _is_url(url):
        return "callBackUrl is not a valid URL"
    data = payload.get("input")
    if not isinstance(data, dict):
        return "input cannot be empty"
    for check in (_settings, _prompts, _frames, _elements):
        if message := check(data):
            return message
    return None


def _is_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme in rules.URL_SCHEMES and bool(parts.netloc)


def _settings(data: dict[str, Any]) -> str | None:
    if data.get("duration") in (None, ""):
        return "duration cannot be empty"
    seconds = parse_duration(data["duration"])
    if seconds is None:
        return "duration is invalid"
    if seconds > rules.DURATION_MAX:
        return f"duration cannot be greater than {rules.DURATION_MAX}"
    if seconds < rules.DURATION_MIN:
        return f"duration cannot be less than {rules.DURATION_MIN}"
    if data.get("mode") not in rules.MODES:
        return f"mode must be one of {', '.join(rules.MODES)}"
    if "aspect_ratio" in data and data["aspect_ratio"] not in rules.ASPECT_RATIOS:
        return f"aspect_ratio must be one of {', '.join(rules.ASPECT_RATIOS)}"
    if data.get("sound") is None:
        return "sound cannot be empty"
    if not isinstance(data["sound"], bool):
        return "sound must be a boolean"
    if data.get("multi_shots") is None:
        return "multi_shots cannot be empty"
    if not isinstance(data["multi_shots"], bool):
        return "multi_shots must be a boolean"
    return None


def _prompts(data: dict[str, Any]) -> str | None:
    if not data["multi_shots"]:
        prompt = data.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return "prompt cannot be empty"
        if prompt_budget_length(prompt) > rules.PROMPT_MAX_CHARS:
            return f"prompt length cannot exceed {rules.PROMPT_MAX_CHARS}"
        return None
    if data["sound"] is not True:
        return "sound must be true when multi_shots is true"
    shots = data.get("multi_prompt")
    if not isinstance(shots, list) or not shots:
        return "multi_prompt cannot be empty"
    if len(shots) > rules.SHOTS_MAX:
        return f"multi_prompt cannot have more than {rules.SHOTS_MAX} items"
    for index, shot in enumerate(shots):
        if message := _shot(index, shot):
            return message
    # KIE's docs are silent on the sum (kie-api.md open question 1); the sandbox keeps Decision 4's rule, so a
    # sandbox video always lasts exactly the billed duration.
    if sum(parse_duration(shot.get("duration")) or 0 for shot in shots) != parse_duration(data["duration"]):
        return "multi_prompt durations must add up to duration"
    return None


def _shot(index: int, shot: Any) -> str | None:
    where = f"multi_prompt[{index}]"
    if not isinstance(shot, dict):
        return f"{where} must be an object"
    prompt = shot.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        return f"{where}.prompt cannot be empty"
    if prompt_budget_length(prompt) > rules.SHOT_PROMPT_MAX_CHARS:
        return f"{where}.prompt length cannot exceed {rules.SHOT_PROMPT_MAX_CHARS}"
    duration = shot.get("duration")
    if duration is None:
        return f"{where}.duration cannot be empty"
    if isinstance(duration, bool) or not isinstance(duration, int):
        return f"{where}.duration must be an integer"
    if duration > rules.SHOT_DURATION_MAX:
        return f"{where}.duration cannot be greater than {rules.SHOT_DURATION_MAX}"
    if duration < rules.SHOT_DURATION_MIN:
        return f"{where}.duration cannot be less than {rules.SHOT_DURATION_MIN}"
    return None


def _frames(data: dict[str, Any]) -> str | None:
    urls = data.get("image_urls")
    if urls is None:
        return None
    if not isinstance(urls, list):
        return "image_urls must be an array"
    limit = rules.FRAMES_MAX_MULTI_SHOT if data["multi_shots"] else rules.FRAMES_MAX_SINGLE_SHOT
    if len(urls) > limit:
        return f"image_urls cannot have more than {limit} {'item' if limit == 1 else 'items'}"
    for index, url in enumerate(urls):
        if not _is_url(url):
            return f"image_urls[{index}] is not a valid URL"
    return None


def _elements(data: dict[str, Any]) -> str | None:
    entries = data.get("kling_elements") or []
    if not isinstance(entries, list):
        return "kling_elements must be an array"
    if len(entries) > rules.ELEMENTS_MAX:
        return f"kling_elements cannot have more than {rules.ELEMENTS_MAX} items"
    names = set()
    for index, entry in enumerate(entries):
        if message := _element(index, entry):
            return message
        names.add(entry["name"])
    texts = [data.get("prompt")] if not data["multi_shots"] else [s.get("prompt") for s in data["multi_prompt"]]
    for text in texts:
        for name in referenced_names(text or ""):
            if name not in names:
                return f"element @{name} is not defined in kling_elements"
    return None


def _element(index: int, entry: Any) -> str | None:
    where = f"kling_elements[{index}]"
    if not isinstance(entry, dict):
        return f"{where} must be an object"
    for field in ("name", "description"):
        if not isinstance(entry.get(field), str) or not entry[field].strip():
            return f"{where}.{field} cannot be empty"
    images = entry.get("element_input_urls") or []
    videos = entry.get("element_input_video_urls") or []
    if not isinstance(images, list) or not isinstance(videos, list):
        return f"{where}.element_input_urls must be an array"
    if rules.video_element_schema() == "K4":
        videos = [u for u in images if isinstance(u, str) and rules.looks_like_video_url(u)]
        images = [u for u in images if u not in videos]
        if message := _video_window(where, entry):
            return message
    if images and videos:
        return f"{where} cannot mix images and a video"
    if videos and len(videos) != rules.ELEMENT_VIDEOS:
        return f"{where}.element_input_video_urls must have exactly {rules.ELEMENT_VIDEOS} item"
    if not videos and not rules.ELEMENT_IMAGES_MIN <= len(images) <= rules.ELEMENT_IMAGES_MAX:
        return f"{where}.element_input_urls must have {rules.ELEMENT_IMAGES_MIN} to {rules.ELEMENT_IMAGES_MAX} items"
    for url in [*images, *videos]:
        if not _is_url(url):
            return f"{where}.element_input_urls is not a valid URL"
    return None


def _video_window(where: str, entry: dict[str, Any]) -> str | None:
    start, end = entry.get("start_time", 0), entry.get("end_time")
    if end is None:
        return None
    if not isinstance(start, int) or not isinstance(end, int) or end <= start:
        return f"{where}.end_time must be greater than start_time"
    if not rules.VIDEO_WINDOW_MIN_MS <= end - start <= rules.VIDEO_WINDOW_MAX_MS:
        return f"{where} video window must be {rules.VIDEO_WINDOW_MIN_MS}-{rules.VIDEO_WINDOW_MAX_MS} ms"
    return None
