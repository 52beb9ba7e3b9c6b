"""Copyable createTask snippets (cURL and Python requests) for a payload; the API key is never written into them."""

from __future__ import annotations

import json
import logging
import pprint
import shlex
from dataclasses import dataclass
from typing import Any

from lib.kie.client import CREATE_PATH
from lib.kling.problems import url_problem

log = logging.getLogger(__name__)

PENDING_HOST = "https://pending-upload.invalid"  # placeholder shown until an element is uploaded at submit
ELEMENT_URL_FIELDS = ("element_input_urls", "element_input_video_urls", "element_input_audio_urls")


@dataclass(frozen=True)
class SnippetReadiness:
    """Whether a payload's snippet may be copied: a placeholder URL would create (and bill) a task that fails."""

    upload_first: tuple[str, ...] = ()  # elements whose files are not on KIE yet
    not_real: tuple[str, ...] = ()      # other fields whose URL is not a real web address

    @property
    def ready(self) -> bool:
        """True when every URL in the payload is a real one."""
        return not self.upload_first and not self.not_real

    def message(self) -> str:
        """What to do before copying, in one sentence ('' when ready)."""
        parts = []
        if self.upload_first:
            names = ", ".join(f"@{n}" for n in self.upload_first)
            parts.append(f"Upload {names} first (Elements page, or Submit uploads them): its files are not on KIE yet")
        if self.not_real:
            parts.append(f"Fix {', '.join(self.not_real)}: not a real web address")
        return "; ".join(parts) + ". The snippet would create a task that cannot work." if parts else ""


def is_pending(url: object) -> bool:
    """True for a placeholder URL of a file that is uploaded only at submit."""
    return isinstance(url, str) and (url == PENDING_HOST or url.startswith(PENDING_HOST + "/"))


def snippet_readiness(payload: dict[str, Any]) -> SnippetReadiness:
    """Check every URL a createTask payload carries: frames, element files and the callback."""
    data = payload.get("input") if isinstance(payload.get("input"), dict) else {}
    pending: list[str] = []
    broken: list[str] = []
    for index, url in enumerate(data.get("image_urls") or ()):
        if is_pending(url) or url_problem(url):
            broken.append(f"input.image_urls[{index}]")
    for index, element in enumerate(data.get("kling_elements") or ()):
        if not isinstance(element, dict):
            continue
        name = str(element.get("name") or f"element {index + 1}")
        for key in ELEMENT_URL_FIELDS:
            for url in element.get(key) or ():
                if is_pending(url):
                    pending.append(name)
                elif url_problem(url):
                    broken.append(f"input.kling_elements[{index}].{key}")
    callback = payload.get("callBackUrl")
    if callback is not None and url_problem(callback):
        broken.append("callBackUrl")
    return SnippetReadiness(tuple(dict.fromkeys(pending)), tuple(dict.fromkeys(broken)))


def curl_command(payload: dict[str, Any], api_base: str) -> str:
    """The createTask call as cURL; the key stays in $KIE_API_KEY."""
    body = json.dumps(payload, indent=2, ensure_ascii=False)
    return (f"curl -X POST {shlex.quote(api_base.rstrip('/') + CREATE_PATH)} \\\n"
            '  -H "Authorization: Bearer $KIE_API_KEY" \\\n'
            "  -H 'Content-Type: application/json' \\\n"
            f"  -d {shlex.quote(body)}")


def python_snippet(payload: dict[str, Any], api_base: str) -> str:
    """The createTask call as Python requests; the key is read from the environment."""
    literal = pprint.pformat(payload, indent=2, width=100, sort_dicts=False)
    return ("import os\n\nimport requests\n\n"
            f"payload = {literal}\n\n"
            f"resp = requests.post(\n    {api_base.rstrip('/') + CREATE_PATH!r},\n"
            '    headers={"Authorization": "Bearer " + os.environ["KIE_API_KEY"]},\n'
            "    json=payload,\n    timeout=30,\n)\n"
            "body = resp.json()\n"
            'print(body["code"], body.get("msg"), body.get("data"))\n')
