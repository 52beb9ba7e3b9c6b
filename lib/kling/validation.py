"""Check a raw createTask body against every Kling 3.0 rule; report problems, never raise."""

from __future__ import annotations

import logging
from typing import Any

from lib.kling import rules
from lib.kling.element_checks import check_elements
from lib.kling.job import parse_duration, prompt_budget_length, referenced_names
from lib.kling.problems import Problem, Report, kind_of, show, url_list, url_problem, with_verdict

log = logging.getLogger(__name__)


def validate_payload(payload: Any, *, video_schema: str | None = None) -> list[Problem]:
    """Every problem in a createTask body, errors and warnings, each placed at its field."""
    report = Report()
    try:
        _check_payload(payload, report, video_schema or rules.video_element_schema())
    except Exception:  # a checker bug must not take the page down; say so instead
        log.exception("validation crashed")
        report.error("", "input", "This request could not be checked completely: review it by hand before submitting.")
    return report.problems


def _check_payload(payload: Any, report: Report, schema: str) -> None:
    if not isinstance(payload, dict):
        report.error("", "input", f"The request must be a JSON object with model and input, not {kind_of(payload)}.")
        return
    _check_top_level(payload, report)
    data = payload.get("input")
    if not isinstance(data, dict):
        what = "has no input" if data is None else f"has input as {kind_of(data)}"
        report.error("input", "input", f"The request {what}: put prompt, duration, mode, sound and multi_shots in an input object.")
        return
    _check_settings(data, report)
    multi = data.get("multi_shots") is True
    duration = _check_duration(data, report)
    prompts = _check_shots(data, duration, report) if multi else _check_single_prompt(data, report)
    _check_frames(data, multi, report)
    names = check_elements(data, schema, report)
    _check_references(data, prompts, names, report)


def _check_top_level(payload: dict, report: Report) -> None:
    model = payload.get("model")
    if model != rules.MODEL:
        what = "missing" if model is None else f"{show(model)}"
        report.error("model", "model", f"The model is {what}; Kling 3.0 on KIE is '{rules.MODEL}': set model to {rules.MODEL}.")
    if "callBackUrl" in payload:
        reason = url_problem(payload["callBackUrl"])
        if reason:
            report.error("callBackUrl", "callback_url", f"The callback URL {reason}: use a full https:// address or leave it out.")
    for key in payload:
        if key not in rules.TOP_LEVEL_FIELDS:
            report.warn(str(key), "unknown_field", f"'{key}' is not part of a createTask request; KIE ignores or rejects it: remove it.")


def _check_settings(data: dict, report: Report) -> None:
    mode = data.get("mode")
    if mode not in rules.MODES:
        guess = next((m for m in rules.MODES if isinstance(mode, str) and m.lower() == mode.strip().lower()), None)
        fix = f"did you mean '{guess}'?" if guess else "choose std, pro or 4K."
        what = "missing" if mode is None else show(mode)
        report.error("input.mode", "mode", f"The mode is {what}; Kling 3.0 takes std, pro or 4K: {fix}")
    if "aspect_ratio" in data and data["aspect_ratio"] not in rules.ASPECT_RATIOS:
        report.error("input.aspect_ratio", "aspect_ratio",
                     f"The aspect ratio {show(data['aspect_ratio'])} is not supported: choose 16:9, 9:16 or 1:1, or leave it out.")
    for key, label in (("sound", "Sound"), ("multi_shots", "Multi-shot")):
        value = data.get(key)
        if not isinstance(value, bool):
            if key not in data:
                report.error(f"input.{key}", key, f"{label} is missing: send {key} as true or false (KIE rejects a request without it).")
            else:
                report.error(f"input.{key}", key, f"{label} is {kind_of(value) if value is None else kind_of(value) + ' ' + show(value)}; it must be true or false: send {key} as true or false.")
    if "cfg_scale" in data:
        value = data["cfg_scale"]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            report.error("input.cfg_scale", "cfg_scale", f"cfg_scale is {kind_of(value)}; it must be a number such as 0.5: fix it or leave it out.")
        report.warn("input.cfg_scale", "cfg_scale",
                    "cfg_scale is not in KIE's Kling 3.0 schema, so KIE may ignore or reject it: leave it unset unless you are testing it.")
    for key in data:
        if key not in rules.INPUT_FIELDS:
            report.warn(f"input.{key}", "unknown_field", f"'{key}' is not a Kling 3.0 input field; KIE ignores or rejects it: remove it.")


def _check_duration(data: dict, report: Report) -> int | None:
    value = data.get("duration")
    span = f"{rules.DURATION_MIN} to {rules.DURATION_MAX}"
    if value is None:
        report.error("input.duration", "duration", f'The duration is missing: set it to {span} seconds, written as text like "5".')
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        report.error("input.duration", "duration", f'The duration must be text like "{value}", not the number {value}: put it in quotes.')
        return None
    # KIE wants the bare digits: padding that parse_duration forgives is still an error here
    seconds = parse_duration(value) if isinstance(value, str) and value == value.strip() else None
    if seconds is None:
        report.error("input.duration", "duration", f'The duration {show(value)} is not a whole number of seconds: use "3" to "15".')
        return None
    if not rules.DURATION_MIN <= seconds <= rules.DURATION_MAX:
        report.error("input.duration", "duration", f"The duration is {seconds} s; Kling 3.0 makes videos of {span} s: pick a duration from {span}.")
        return None
    return seconds


def _check_prompt_text(value: Any, path: str, label: str, limit: int, report: Report, rule: str) -> bool:
    """Check one prompt; True when it is usable text."""
    if not isinstance(value, str) or not value.strip():
        what = "empty" if value is None or isinstance(value, str) else f"{kind_of(value)}, not text"
        report.error(path, rule, f"{label} is {what}: describe what should happen{' in this shot' if 'Shot' in label else ''}.")
        return isinstance(value, str)
    length = prompt_budget_length(value)
    if length > limit:
        report.error(path, rule + ("_length" if rule == "prompt" else ""),
                     f"{label} is {length:,} characters (each @element counts as {rules.ELEMENT_REFERENCE_CHARS}); "
                     f"the limit is {limit:,}: shorten it by {length - limit:,} characters.")
    return True


def _check_single_prompt(data: dict, report: Report) -> list[tuple[str, str]]:
    if "multi_prompt" in data:
        report.warn("input.multi_prompt", "ignored_field", "Shots are ignored in a single-shot video: turn multi-shot on to use them, or remove them.")
    ok = _check_prompt_text(data.get("prompt"), "input.prompt", "The prompt", rules.PROMPT_MAX_CHARS, report, "prompt")
    return [("input.prompt", data["prompt"])] if ok else []


def _shot_duration(raw: dict, path: str, label: str, report: Report) -> int | None:
    value = raw.get("duration")
    span = f"{rules.SHOT_DURATION_MIN} to {rules.SHOT_DURATION_MAX}"
    if isinstance(value, bool) or not isinstance(value, int):
        what = "no duration" if value is None else f"the duration {show(value)}"
        report.error(path, "shot_duration", f"{label} has {what}: give it a whole number of seconds from {span}, like 3 (no quotes).")
        return None
    if not rules.SHOT_DURATION_MIN <= value <= rules.SHOT_DURATION_MAX:
        report.error(path, "shot_duration", f"{label} lasts {value} s; a shot may last {span} s: change its length or split it into two shots.")
        return None
    return value


def _check_shots(data: dict, duration: int | None, report: Report) -> list[tuple[str, str]]:
    if "prompt" in data:
        report.warn("input.prompt", "ignored_field", "The main prompt is ignored in a multi-shot video: KIE reads each shot's prompt instead.")
    if data.get("sound") is False:
        report.error("input.sound", "multi_sound", "Multi-shot videos need sound on: turn sound on or switch to a single shot.")
    shots = data.get("multi_prompt")
    if not isinstance(shots, list) or not shots:
        report.error("input.multi_prompt", "shots", "A multi-shot video needs at least one shot: add a shot or turn multi-shot off.")
        return []
    if len(shots) > rules.SHOTS_MAX:
        extra = len(shots) - rules.SHOTS_MAX
        report.error("input.multi_prompt", "shots",
                     f"There are {len(shots)} shots; Kling 3.0 allows at most {rules.SHOTS_MAX}: remove or merge {extra} shot{'s' * (extra > 1)}.")
    prompts, durations = [], []
    for index, raw in enumerate(shots):
        path, label = f"input.multi_prompt[{index}]", f"Shot {index + 1}"
        if not isinstance(raw, dict):
            report.error(path, "shots", f"{label} is {kind_of(raw)}: each shot needs a prompt and a duration.")
            durations.append(None)
            continue
        if _check_prompt_text(raw.get("prompt"), f"{path}.prompt", f"{label}'s prompt", rules.SHOT_PROMPT_MAX_CHARS, report, "shot_prompt"):
            prompts.append((f"{path}.prompt", raw["prompt"]))
        durations.append(_shot_duration(raw, f"{path}.duration", label, report))
    if duration is not None and None not in durations:
        _check_shot_sum(sum(durations), duration, report)
    return prompts


def _check_shot_sum(total: int, duration: int, report: Report) -> None:
    if total > rules.DURATION_MAX:
        report.error("input.multi_prompt", "shot_sum", f"Shots add up to {total} s; a video may last at most {rules.DURATION_MAX} s: shorten the shots.")
    elif total < rules.DURATION_MIN:
        report.error("input.multi_prompt", "shot_sum", f"Shots add up to {total} s; a video must last at least {rules.DURATION_MIN} s: lengthen a shot.")
    elif total != duration:
        change = "shorten a shot" if total > duration else "lengthen a shot"
        report.error("input.duration", "shot_sum",
                     f"Shots add up to {total} s but the duration is {duration} s: set the duration to {total} s or {change}.")


def _check_frames(data: dict, multi: bool, report: Report) -> None:
    if "image_urls" not in data:
        return
    frames = url_list(data["image_urls"], "input.image_urls", "Frame image", report)
    if frames is None:
        return
    limit = rules.FRAMES_MAX_MULTI_SHOT if multi else rules.FRAMES_MAX_SINGLE_SHOT
    if len(frames) > limit:
        why = "multi-shot videos take only a first frame" if multi else "a single-shot video takes a first and a last frame at most"
        extra = len(frames) - limit
        report.error("input.image_urls", "frames", f"There are {len(frames)} frame images; {why}: remove {extra}.")


def _check_references(data: dict, prompts: list[tuple[str, str]], names: dict[str, int], report: Report) -> None:
    used: set[str] = set()
    for path, text in prompts:
        for ref in referenced_names(text):
            used.add(ref)
            if ref not in names:
                report.error(path, "reference", f"@{ref} is not a defined element: add an element named {ref} or fix the spelling.")
    for name, index in names.items():
        if name not in used:
            report.warn(f"input.kling_elements[{index}].name", "unused_element",
                        f"Element '{name}' is not used: no prompt mentions @{name}, so the app leaves it out of the request. "
                        f"Write @{name} in a prompt to use it.")
    frames = data.get("image_urls")
    if used & set(names) and not (isinstance(frames, list) and frames):
        report.warn("input.image_urls", "first_frame", with_verdict(
            "first_frame", "The prompt uses elements but there is no first frame: add a first-frame image to be safe."))
