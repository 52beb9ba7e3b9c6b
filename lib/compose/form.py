"""The Compose form as plain Python: session-state form → Job → payload, problem placement, frames, fork.

Batches (variants, cost, submit, follow) live in lib.compose.batches and the cURL/Python snippets in lib.compose.snippets; their
public names are re-exported here so callers keep importing from lib.compose.
"""

from __future__ import annotations

import copy
import hashlib
import io
import logging
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lib.compose.snippets import PENDING_HOST
from lib.elements.model import Element, Uploader
from lib.kie.errors import KieError
from lib.kling import rules
from lib.kling.job import ElementSpec, Job, Shot, referenced_names
from lib.kling.media import check_image
from lib.kling.problems import Problem, with_verdict

log = logging.getLogger(__name__)

FRAME_UPLOAD_PATH = "kling-studio/frames"

# Every field a person fills in; drafts store exactly these. Each lives in a plain session-state key.
FORM_DEFAULTS: dict[str, Any] = {
    "compose_prompt": "",
    "compose_multi": False,
    "compose_shots": [],
    "compose_duration": rules.DEFAULT_DURATION,
    "compose_mode": "std",
    "compose_sound": False,
    "compose_aspect": "16:9",
    "compose_first_source": "none",
    "compose_first_url": "",
    "compose_first_upload": None,
    "compose_last_source": "none",
    "compose_last_url": "",
    "compose_last_upload": None,
    "compose_elements": [],
    "compose_cfg_on": False,
    "compose_cfg_scale": 0.5,
    "compose_callback": "",
    "compose_takes": 1,
    "compose_grid_modes": [],
    "compose_grid_sounds": [],
    "compose_prompt_variants": "",
    "compose_limit": 0,
    "compose_active_shot": 0,
}
FRAME_SOURCES = ("none", "upload", "url")


def new_shot(prompt: str = "", duration: int = 3) -> dict[str, Any]:
    """A shot as the form keeps it (the id keeps its widgets stable when shots are reordered)."""
    return {"id": uuid.uuid4().hex[:8], "prompt": prompt, "duration": int(duration)}


def default_form() -> dict[str, Any]:
    """A fresh copy of every form field's default."""
    return copy.deepcopy(FORM_DEFAULTS)


def is_untouched(form: Mapping[str, Any]) -> bool:
    """True while every field still has its default: nothing typed yet, so no error is worth showing."""
    return dict(form) == FORM_DEFAULTS


def form_of(state: Mapping[str, Any]) -> dict[str, Any]:
    """The form fields out of session state (defaults for anything missing)."""
    return {key: copy.deepcopy(state.get(key, default)) for key, default in FORM_DEFAULTS.items()}


# ---------------------------------------------------------------- shots

def set_multi(form: dict[str, Any], on: bool) -> None:
    """Switch multi-shot; the first switch seeds one shot from the prompt and duration."""
    form["compose_multi"] = on
    if on and not form["compose_shots"]:
        form["compose_shots"] = [new_shot(form["compose_prompt"], min(form["compose_duration"], rules.SHOT_DURATION_MAX))]


def add_shot(form: dict[str, Any]) -> bool:
    """Append an empty 3 s shot; False when the 5-shot limit is reached."""
    if len(form["compose_shots"]) >= rules.SHOTS_MAX:
        return False
    form["compose_shots"].append(new_shot())
    return True


def remove_shot(form: dict[str, Any], index: int) -> None:
    """Remove one shot by position."""
    if 0 <= index < len(form["compose_shots"]):
        del form["compose_shots"][index]
    form["compose_active_shot"] = min(form["compose_active_shot"], max(0, len(form["compose_shots"]) - 1))


def move_shot(form: dict[str, Any], index: int, step: int) -> None:
    """Move a shot up (-1) or down (+1); out-of-range moves do nothing."""
    shots, target = form["compose_shots"], index + step
    if 0 <= index < len(shots) and 0 <= target < len(shots):
        shots[index], shots[target] = shots[target], shots[index]


def _seconds(value: object) -> int:
    try:
        return max(0, int(value))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return 0


def timeline_html(shots: list[dict[str, Any]], total_max: int = rules.DURATION_MAX) -> str:
    """A bar of each shot's length against the longest allowed video (red when the total is out of range).
    Only numbers the app computed go into the HTML, never text from the form."""
    seconds = [_seconds(s.get("duration")) for s in shots]
    total = sum(seconds)
    scale = max(total, total_max, 1)
    colours = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2")
    cells = "".join(
        f'<div title="Shot {i + 1}: {d} s" style="width:{100 * d / scale:.2f}%;'
        f'background:{colours[i % len(colours)]};color:white;text-align:center;font-size:0.8rem;'
        f'overflow:hidden;white-space:nowrap">{i + 1} · {d} s</div>'
        for i, d in enumerate(seconds))
    ok = rules.DURATION_MIN <= total <= total_max
    note = f"{total} s of {rules.DURATION_MIN}–{total_max} s" + ("" if ok else " — out of range")
    return (f'<div style="display:flex;height:1.6rem;border:1px solid #999;border-radius:4px;overflow:hidden;'
            f'background:#eee">{cells}</div><div style="font-size:0.8rem;color:{"#333" if ok else "#c00"}">'
            f"Total {note}</div>")


def insert_reference(form: dict[str, Any], name: str) -> None:
    """Insert @name into the prompt (or the shot being edited) and include the element."""
    ref = f"@{name}"
    if form["compose_multi"] and form["compose_shots"]:
        index = min(max(0, int(form["compose_active_shot"])), len(form["compose_shots"]) - 1)
        shot = form["compose_shots"][index]
        shot["prompt"] = _append(shot["prompt"], ref)
    else:
        form["compose_prompt"] = _append(form["compose_prompt"], ref)
    if name not in form["compose_elements"]:
        form["compose_elements"].append(name)


def _append(text: str, ref: str) -> str:
    return f"{text.rstrip()} {ref}".lstrip() if text.strip() else ref


# ---------------------------------------------------------------- form → job

def frame_url(form: Mapping[str, Any], which: str) -> str | None:
    """The first/last frame URL the form points at, or None."""
    source = form[f"compose_{which}_source"]
    if source == "url":
        return form[f"compose_{which}_url"].strip() or None
    if source == "upload" and form[f"compose_{which}_upload"]:
        return form[f"compose_{which}_upload"].get("url") or None
    return None


def form_elements(form: Mapping[str, Any]) -> list[str]:
    """Element names the form uses: those chosen plus every @name in its prompts, in order."""
    texts = [s["prompt"] for s in form["compose_shots"]] if form["compose_multi"] else [form["compose_prompt"]]
    names = list(form["compose_elements"])
    for text in texts:
        names.extend(referenced_names(text))
    return list(dict.fromkeys(names))


def job_from_form(form: Mapping[str, Any], specs: Mapping[str, ElementSpec]) -> Job:
    """The Job the form describes; elements come from `specs` (library elements by name)."""
    multi = bool(form["compose_multi"])
    first, last = frame_url(form, "first"), None if multi else frame_url(form, "last")
    frames = tuple(u for u in (first, last) if u) if first else ()
    callback = (form["compose_callback"] or "").strip()
    return Job(
        prompt=form["compose_prompt"],
        multi_shots=multi,
        shots=tuple(Shot(s["prompt"], int(s["duration"])) for s in form["compose_shots"]) if multi else (),
        duration=int(form["compose_duration"]),
        mode=form["compose_mode"],
        sound=True if multi else bool(form["compose_sound"]),
        aspect_ratio=None if first else form["compose_aspect"],
        image_urls=frames,
        elements=tuple(specs[n] for n in form_elements(form) if n in specs),
        cfg_scale=float(form["compose_cfg_scale"]) if form["compose_cfg_on"] else None,
        callback_url=callback or None,
    )


def form_problems(form: Mapping[str, Any], library_names: Iterable[str]) -> list[Problem]:
    """Problems the payload cannot show: a last frame without a first, chosen elements not in the library."""
    problems = []
    if not form["compose_multi"] and frame_url(form, "last") and not frame_url(form, "first"):
        problems.append(Problem("input.image_urls[1]", "A last frame needs a first frame: add a first frame "
                                "or remove the last one.", rules.ERROR))
    for which, index in (("first", 0), ("last", 1)):
        upload = form[f"compose_{which}_upload"]
        if form[f"compose_{which}_source"] == "upload" and upload:
            problems.extend(Problem(f"input.image_urls[{index}]", text, rules.ERROR) for text in upload.get("problems") or ())
            problems.extend(_small_frame(upload, which, index))
    known = set(library_names)
    for name in form["compose_elements"]:
        if name not in known:
            problems.append(Problem("input.kling_elements", f"Element '{name}' is no longer in the library: "
                                    f"recreate it on the Elements page or remove @{name}.", rules.ERROR))
    return problems


def _small_frame(upload: Mapping[str, Any], which: str, index: int) -> list[Problem]:
    """A warning for a frame under 300 px a side (size read from its header when it was uploaded)."""
    width, height, low = upload.get("width"), upload.get("height"), rules.IMAGE_MIN_SIDE
    if not isinstance(width, int) or not isinstance(height, int) or min(width, height) >= low:
        return []
    message = with_verdict("frame_size", f"The {which} frame {upload.get('name', '')} is {width}×{height} px, under "
                           f"{low} px a side, so the video may look soft: use an image at least {low}×{low} px.")
    return [Problem(f"input.image_urls[{index}]", message, rules.WARNING, "frame_size")]


def preview_specs(elements: Iterable[Element]) -> tuple[dict[str, ElementSpec], list[str]]:
    """ElementSpecs from library elements for previewing, and the names whose files upload only at submit."""
    specs, pending = {}, []
    for element in elements:
        urls = []
        for media in element.media:
            urls.append(media.kie_url or f"{PENDING_HOST}/{element.name}/{media.file_name}")
        if any(not m.kie_url for m in element.media):
            pending.append(element.name)
        video = element.kind == "video"
        specs[element.name] = ElementSpec(element.name, element.description,
                                          image_urls=() if video else tuple(urls),
                                          video_urls=tuple(urls) if video else ())
    return specs, pending


# ---------------------------------------------------------------- problems → fields

_SHOT_RE = re.compile(r"^input\.multi_prompt\[(\d+)\]")
_FIELDS = {"callBackUrl": "callback", "input.prompt": "prompt", "input.duration": "duration", "input.mode": "mode",
           "input.sound": "sound", "input.aspect_ratio": "aspect", "input.cfg_scale": "cfg",
           "input.image_urls[0]": "first_frame", "input.image_urls[1]": "last_frame", "input.image_urls": "frames",
           "input.kling_elements": "elements", "input.multi_prompt": "shots"}


def field_of(path: str, multi: bool = False) -> str:
    """The form field a problem path belongs to: prompt, shot0…shot4, shots, duration, mode, sound, aspect,
    first_frame, last_frame, frames, elements, cfg, callback, or general."""
    match = _SHOT_RE.match(path)
    if match:
        return f"shot{match.group(1)}"
    for prefix, name in _FIELDS.items():
        if path == prefix or path.startswith((prefix + ".", prefix + "[")):
            return "shots" if multi and name == "duration" else name
    return "general"


def problems_by_field(problems: Iterable[Problem], multi: bool = False) -> dict[str, list[Problem]]:
    """Problems grouped by the field they are shown next to."""
    grouped: dict[str, list[Problem]] = {}
    for problem in problems:
        grouped.setdefault(field_of(problem.path, multi), []).append(problem)
    return grouped


# ---------------------------------------------------------------- frames

@dataclass(frozen=True)
class FrameUpload:
    """A frame image checked by lib.kling.media and uploaded to KIE's file host (or why it was not)."""

    name: str
    sha: str
    url: str | None = None
    expires_at: str | None = None
    problems: tuple[str, ...] = ()
    width: int | None = None   # from the header (lib.kling.media); forms saved before this have none
    height: int | None = None

    def to_state(self) -> dict[str, Any]:
        """The form's record of this upload."""
        return {"name": self.name, "sha": self.sha, "url": self.url, "expires_at": self.expires_at,
                "problems": list(self.problems), "width": self.width, "height": self.height}


def content_sha(data: bytes) -> str:
    """A short content hash, so the same file is not uploaded twice."""
    return hashlib.sha256(data).hexdigest()[:16]


def upload_frame(uploader: Uploader, name: str, data: bytes) -> FrameUpload:
    """Check a frame image (JPG/PNG, ≤10 MB, complete) and upload it; failures come back as problems."""
    sha = content_sha(data)
    check = check_image(name, io.BytesIO(data), min_side=None)
    if not check.ok:
        return FrameUpload(name, sha, problems=check.problems)
    try:
        result = uploader(io.BytesIO(data), file_name=name, upload_path=FRAME_UPLOAD_PATH, method="auto")
    except KieError as exc:
        return FrameUpload(name, sha, problems=(f"{name} could not be uploaded: {exc.user_message()}",))
    expires = getattr(result, "expires_at", None)
    return FrameUpload(name, sha, url=str(result.download_url),
                       expires_at=expires.isoformat() if isinstance(expires, datetime) else None,
                       width=check.width, height=check.height)


# ---------------------------------------------------------------- fork

def form_from_job(job: Job, library_names: Iterable[str]) -> tuple[dict[str, Any], list[str]]:
    """Form fields for a forked job, and the element names that are no longer in the library."""
    form = default_form()
    known = set(library_names)
    names = list(dict.fromkeys([e.name for e in job.elements] + [n for t in job.prompts() for n in referenced_names(t)]))
    frames = list(job.image_urls)
    form.update({
        "compose_prompt": job.prompt, "compose_multi": job.multi_shots,
        "compose_shots": [new_shot(s.prompt, s.duration) for s in job.shots],
        "compose_duration": min(max(job.duration, rules.DURATION_MIN), rules.DURATION_MAX),
        "compose_mode": job.mode if job.mode in rules.MODES else "std", "compose_sound": job.sound,
        "compose_aspect": job.aspect_ratio if job.aspect_ratio in rules.ASPECT_RATIOS else "16:9",
        "compose_first_source": "url" if frames else "none", "compose_first_url": frames[0] if frames else "",
        "compose_last_source": "url" if len(frames) > 1 else "none",
        "compose_last_url": frames[1] if len(frames) > 1 else "",
        "compose_elements": [n for n in names if n in known],
        "compose_cfg_on": job.cfg_scale is not None,
        "compose_cfg_scale": job.cfg_scale if job.cfg_scale is not None else 0.5,
        # a callback URL is never carried into a new request silently: the user sets their own under Advanced
        "compose_callback": "",
    })
    return form, [n for n in names if n not in known]


# ---------------------------------------------------------------- drafts

