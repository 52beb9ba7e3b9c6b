"""The checks of a createTask body's kling_elements: names, descriptions, files and K4 video windows."""

from __future__ import annotations

from lib.kling import rules
from lib.kling.problems import Report, kind_of, url_list


def _check_element_name(raw: dict, path: str, label: str, seen: set[str], report: Report) -> str | None:
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        report.error(f"{path}.name", "element_name", f"{label} has no name: give it a short name such as dog, then write @dog in the prompt.")
        return None
    problems = rules.element_name_problems(name)
    for message in problems:
        report.error(f"{path}.name", "element_name", f"{label}: {message}")
    if problems:
        return None
    if name in seen:
        report.error(f"{path}.name", "element_name", f"Two elements are named '{name}': rename one of them.")
        return None
    seen.add(name)
    return name


def check_elements(data: dict, schema: str, report: Report) -> dict[str, int]:
    """Check kling_elements; return the well-named ones, name → index."""
    if "kling_elements" not in data:
        return {}
    elements = data["kling_elements"]
    if not isinstance(elements, list):
        report.error("input.kling_elements", "elements", f"Elements must be a list, not {kind_of(elements)}.")
        return {}
    if len(elements) > rules.ELEMENTS_MAX:
        extra = len(elements) - rules.ELEMENTS_MAX
        report.error("input.kling_elements", "elements",
                     f"There are {len(elements)} elements; a video may use at most {rules.ELEMENTS_MAX}: remove {extra}.")
    names: dict[str, int] = {}
    for index, raw in enumerate(elements):
        path = f"input.kling_elements[{index}]"
        if not isinstance(raw, dict):
            report.error(path, "elements", f"Element {index + 1} is {kind_of(raw)}: each element needs a name, a description and image URLs.")
            continue
        name = _check_element_name(raw, path, f"Element {index + 1}", set(names), report)
        label = f"Element '{name}'" if name else f"Element {index + 1}"
        description = raw.get("description")
        if not isinstance(description, str) or not description.strip():
            report.error(f"{path}.description", "element_description", f"{label} has no description: add a few words, e.g. 'a brown terrier'.")
        _check_element_media(raw, path, label, schema, report)
        for key in raw:
            if key not in rules.ELEMENT_FIELDS:
                report.warn(f"{path}.{key}", "unknown_field", f"'{key}' is not an element field; KIE ignores or rejects it: remove it.")
        if name:
            names[name] = index
    return names


def _check_element_media(raw: dict, path: str, label: str, schema: str, report: Report) -> None:
    images_path, videos_path = f"{path}.element_input_urls", f"{path}.element_input_video_urls"
    images = url_list(raw["element_input_urls"], images_path, f"{label} image", report) if "element_input_urls" in raw else []
    videos = url_list(raw["element_input_video_urls"], videos_path, f"{label} video", report) if "element_input_video_urls" in raw else []
    if images is None or videos is None:
        return
    if schema == "K4":
        if videos:
            report.error(videos_path, "element_video", f"{label}: with KIE's current schema the video goes in element_input_urls: move it there.")
        videos = [u for u in images if isinstance(u, str) and rules.looks_like_video_url(u)]
        images = [u for u in images if u not in videos]
        videos_path = images_path
        _check_video_window(raw, path, label, bool(videos), report)
    else:
        for index, url in enumerate(images):
            if isinstance(url, str) and rules.looks_like_video_url(url):
                report.error(f"{images_path}[{index}]", "element_video",
                             f"{label} image {index + 1} is a video: put it in element_input_video_urls (one video per element).")
        for key in ("start_time", "end_time"):
            if key in raw:
                report.warn(f"{path}.{key}", "ignored_field", f"{label}: {key} is only used by KIE's K4 video schema and is ignored here.")
    _check_element_counts(images, videos, images_path, videos_path, path, label, report)


def _check_element_counts(images: list, videos: list, images_path: str, videos_path: str, path: str, label: str,
                          report: Report) -> None:
    problem = rules.element_count_problem(len(images), len(videos))
    if problem:
        where = {"images": images_path, "videos": videos_path, "both": path}[problem.files]
        report.error(where, problem.rule, f"{label}: {problem.message}")


def _check_video_window(raw: dict, path: str, label: str, is_video: bool, report: Report) -> None:
    if not is_video or not ("start_time" in raw or "end_time" in raw):
        return
    start, end = raw.get("start_time", 0), raw.get("end_time")
    for key, value in (("start_time", start), ("end_time", end)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            report.error(f"{path}.{key}", "video_window", f"{label}: {key} must be a whole number of milliseconds, like 3000.")
            return
    if end is None:
        return
    low, high = rules.VIDEO_WINDOW_MIN_MS, rules.VIDEO_WINDOW_MAX_MS
    if not low <= end - start <= high:
        report.error(f"{path}.end_time", "video_window",
                     f"{label} uses {end - start} ms of its video; the clip window must be {low}–{high} ms: move end_time.")
