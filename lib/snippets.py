"""Copyable createTask snippets (cURL and Python requests) for a payload; the API key is never written into them."""

from __future__ import annotations

import json
import logging
import pprint
import shlex
from typing import Any

from lib.client import CREATE_PATH

log = logging.getLogger(__name__)


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
