"""One sandbox per server process and data folder, at an address that survives restarts.

The server's startup code (lib.tasks.service) and every browser session (lib.ui.context) share it. Its port is
kept in `<data>/sandbox/port`, so URLs stored before a restart (element uploads, frames) keep working after it.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from pathlib import Path

from lib.sandbox.server import SandboxServer, start_sandbox

log = logging.getLogger(__name__)

PORT_FILE = "port"
_lock = threading.Lock()
_running: dict[str, SandboxServer] = {}


def _remembered_port(folder: Path) -> int:
    try:
        port = int((folder / PORT_FILE).read_text().strip())
    except (OSError, ValueError):
        return 0
    return port if 1024 <= port <= 65535 else 0


def _start(folder: Path, port: int, seconds: float) -> SandboxServer:
    try:
        return start_sandbox(port=port, data_dir=folder, progress="wall", seconds=seconds)
    except OSError as exc:
        if port and exc.errno == errno.EADDRINUSE:
            log.warning("sandbox port %d is taken; starting on a new one (stored URLs are re-uploaded)", port)
            return start_sandbox(port=0, data_dir=folder, progress="wall", seconds=seconds)
        raise


def shared_sandbox(data_dir: str | os.PathLike[str]) -> SandboxServer:
    """The running sandbox of this data folder, started on first use (KLING_SANDBOX_PORT fixes its port)."""
    folder = (Path(data_dir) / "sandbox").resolve()
    with _lock:
        if str(folder) in _running:
            return _running[str(folder)]
        folder.mkdir(parents=True, exist_ok=True)
        fixed = int(os.environ.get("KLING_SANDBOX_PORT") or 0)
        seconds = float(os.environ.get("KLING_SANDBOX_SECONDS") or 8.0)
        server = _start(folder, fixed or _remembered_port(folder), seconds)
        if not fixed:
            (folder / PORT_FILE).write_text(server.base_url.rsplit(":", 1)[1])
        _running[str(folder)] = server
        return server
