"""Outside URLs are inert: a viewer's browser loads only the app's own media or files on KIE's media hosts.

Any other URL (from an import, a form or KIE's answer) may be shown as text or as a plain link that names its
host, never put into a `video`, `img`, `audio` or `source` element.
"""

from __future__ import annotations

import ipaddress
import os
import re
from urllib.parse import urlsplit

# Where KIE serves results and uploads (kie-api.md §3, §4); KLING_MEDIA_HOSTS (comma-separated) replaces it.
DEFAULT_MEDIA_HOSTS: tuple[str, ...] = ("tempfile.aiquickdraw.com", "tempfile.redpandaai.co")
MAX_URL_CHARS = 2048
# A host is letters (any script), digits, dots and hyphens, or an IP literal: link labels name the host, so a
# "host" such as **bold** or <b> would be markdown from data.
_HOST_NAME = re.compile(r"[^\W_](?:[^\W_]|[.-])*")


def media_hosts() -> frozenset[str]:
    """The allow-list of hosts whose https media a browser may load (configurable for a KIE-compatible gateway)."""
    configured = os.environ.get("KLING_MEDIA_HOSTS")
    names = configured.split(",") if configured is not None else DEFAULT_MEDIA_HOSTS
    return frozenset(n.strip().lower() for n in names if n.strip())


def _parts(url: object) -> tuple[str, str] | None:
    """(scheme, host) of a well-formed http(s) URL without credentials, else None."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_CHARS or any(c.isspace() or ord(c) < 32 for c in url):
        return None
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        _ = parts.port  # raises ValueError for a bad port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host or parts.username or parts.password:
        return None
    if not _HOST_NAME.fullmatch(host) and not _is_ip(host):
        return None
    return parts.scheme.lower(), host


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def playable_url(url: object) -> str | None:
    """`url` when a browser may load it as media (https on an allow-listed KIE media host), else None."""
    parts = _parts(url)
    if parts is None or parts[0] != "https" or parts[1] not in media_hosts():
        return None
    return str(url)


def link_target(url: object) -> tuple[str, str] | None:
    """(url, host) for a plain http(s) link the user may click (never javascript:, data: or file:), else None."""
    parts = _parts(url)
    return None if parts is None else (str(url), parts[1])


def host_of(url: object) -> str:
    """The host of an http(s) URL ('' when it is not one): what a plain link names."""
    parts = _parts(url)
    return parts[1] if parts else ""
