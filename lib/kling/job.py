"""A Kling 3.0 job as typed values, and the one builder of its createTask body."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from lib.kling import rules

log = logging.getLogger(__name__)

# The ONE pattern for @references (validation uses it too). No word boundary before the @:
# KIE's own example glues the reference to the previous word ("…the window@element_dog").
REFERENCE_RE = re.compile(rf"@([{rules.ELEMENT_NAME_CHARS}]+)")


@dataclass(frozen=True)
class Shot:
    """One shot of a multi-shot video."""

    prompt: str
    duration: int


@dataclass(frozen=True)
class ElementSpec:
    """A reusable subject: 2–4 images or one video, referenced in prompts as @name."""

    name: str
    description: str
    image_urls: tuple[str, ...] = ()
    video_urls: tuple[str, ...] = ()
    start_time: int | None = None  # K4 video window, ms
    end_time: int | None = None


@dataclass(frozen=True)
class Job:
    """Everything a person chooses for one Kling 3.0 generation."""

    prompt: str = ""
    multi_shots: bool = False
    shots: tuple[Shot, ...] = ()
    duration: int = rules.DEFAULT_DURATION
    mode: str = "std"
    sound: bool = False
    aspect_ratio: str | None = "16:9"
    image_urls: tuple[str, ...] = ()
    elements: tuple[ElementSpec, ...] = ()
    cfg_scale: float | None = None
    callback_url: str | None = None

    @property
    def total_duration(self) -> int:
        """Seconds of video this job asks for (the sum of shots in multi-shot)."""
        if self.multi_shots:
            return sum(shot.duration for shot in self.shots)
        return self.duration

    def prompts(self) -> list[str]:
        """The prompt texts KIE reads for this job."""
        return [shot.prompt for shot in self.shots] if self.multi_shots else [self.prompt]


def referenced_names(text: str) -> list[str]:
    """Element names referenced as @name in a text, in order of first use, without repeats."""
    if not isinstance(text, str):
        return []
    return list(dict.fromkeys(REFERENCE_RE.findall(text)))


def prompt_budget_length(text: str) -> int:
    """Length KIE counts for a prompt: every @reference costs 37 characters."""
    return len(REFERENCE_RE.sub("x" * rules.ELEMENT_REFERENCE_CHARS, text))


def _job_references(job: Job) -> list[str]:
    names: list[str] = []
    for text in job.prompts():
        names.extend(referenced_names(text))
    return list(dict.fromkeys(names))


def element_entry(element: ElementSpec, schema: str | None = None) -> dict[str, Any]:
    """The element's `kling_elements` entry (the one builder: jobs, the library and its export use it)."""
    schema = schema or rules.video_element_schema()
    body: dict[str, Any] = {"name": element.name, "description": element.description}
    video_field = rules.VIDEO_FIELD_BY_SCHEMA[schema]
    if not element.video_urls or element.image_urls or video_field == "element_input_urls":
        body["element_input_urls"] = list(element.image_urls)
    if element.video_urls:
        body.setdefault(video_field, [])
        body[video_field] = body[video_field] + list(element.video_urls)
        if schema == "K4" and element.start_time is not None:
            body["start_time"] = element.start_time
        if schema == "K4" and element.end_time is not None:
            body["end_time"] = element.end_time
    return body


def build_payload(job: Job, *, video_schema: str | None = None) -> dict[str, Any]:
    """The exact createTask body for a job: unused elements and unset options left out."""
    schema = video_schema or rules.video_element_schema()
    body: dict[str, Any] = {"model": rules.MODEL}
    if job.callback_url:
        body["callBackUrl"] = job.callback_url
    data: dict[str, Any] = {}
    if job.multi_shots:
        data["multi_prompt"] = [{"prompt": s.prompt, "duration": s.duration} for s in job.shots]
    else:
        data["prompt"] = job.prompt
    if job.image_urls:
        data["image_urls"] = list(job.image_urls)
    data["sound"] = job.sound
    data["duration"] = str(job.total_duration)
    if job.aspect_ratio is not None:
        data["aspect_ratio"] = job.aspect_ratio
    data["mode"] = job.mode
    data["multi_shots"] = job.multi_shots
    used = set(_job_references(job))
    elements = [element_entry(e, schema) for e in job.elements if e.name in used]
    if elements:
        data["kling_elements"] = elements
    if job.cfg_scale is not None:
        data["cfg_scale"] = job.cfg_scale
    body["input"] = data
    return body


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(item for item in value if isinstance(item, str))


def parse_duration(value: object) -> int | None:
    """Whole seconds from a duration as KIE spells it ("5") or as a number (5); None when it is neither.

    The one reader of a duration or shot length in a createTask body (jobs, validation, pricing, history)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    return None


def _seconds_or(value: object, default: int) -> int:
    seconds = parse_duration(value)
    return default if seconds is None else seconds


def _optional_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _element_from_payload(raw: dict[str, Any], schema: str) -> ElementSpec:
    urls = _strings(raw.get("element_input_urls"))
    videos = _strings(raw.get("element_input_video_urls"))
    if schema == "K4":
        videos = videos + tuple(u for u in urls if rules.looks_like_video_url(u))
        urls = tuple(u for u in urls if not rules.looks_like_video_url(u))
    name, description = raw.get("name"), raw.get("description")
    return ElementSpec(
        name=name if isinstance(name, str) else "",
        description=description if isinstance(description, str) else "",
        image_urls=urls,
        video_urls=videos,
        start_time=_optional_int(raw.get("start_time")),
        end_time=_optional_int(raw.get("end_time")),
    )


def _shots_from_payload(value: Any) -> tuple[Shot, ...]:
    if not isinstance(value, list):
        return ()
    shots = []
    for raw in value:
        if isinstance(raw, dict):
            prompt = raw.get("prompt")
            shots.append(Shot(prompt if isinstance(prompt, str) else "", _seconds_or(raw.get("duration"), 0)))
    return tuple(shots)


def job_from_payload(payload: Any, *, video_schema: str | None = None) -> Job:
    """A Job from a createTask body (fork, import); lenient, so a broken body can be fixed in the form."""
    if not isinstance(payload, dict):
        raise ValueError("A createTask body must be a JSON object with model and input.")
    schema = video_schema or rules.video_element_schema()
    data = payload.get("input") if isinstance(payload.get("input"), dict) else {}
    prompt, callback = data.get("prompt"), payload.get("callBackUrl")
    aspect, cfg = data.get("aspect_ratio"), data.get("cfg_scale")
    raw_elements = data.get("kling_elements") if isinstance(data.get("kling_elements"), list) else []
    job = Job(
        prompt=prompt if isinstance(prompt, str) else "",
        multi_shots=data.get("multi_shots") is True,
        shots=_shots_from_payload(data.get("multi_prompt")),
        duration=_seconds_or(data.get("duration"), rules.DEFAULT_DURATION),
        mode=data.get("mode") if isinstance(data.get("mode"), str) else "std",
        sound=data.get("sound") is True,
        aspect_ratio=aspect if isinstance(aspect, str) else None,
        image_urls=_strings(data.get("image_urls")),
        elements=tuple(_element_from_payload(e, schema) for e in raw_elements if isinstance(e, dict)),
        cfg_scale=float(cfg) if isinstance(cfg, (int, float)) and not isinstance(cfg, bool) else None,
        callback_url=callback if isinstance(callback, str) and callback else None,
    )
    log.debug("parsed job: %d shots, %d elements", len(job.shots), len(job.elements))
    return job
