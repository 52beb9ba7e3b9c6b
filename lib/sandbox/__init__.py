"""Offline KIE sandbox: the same wire format and quirks as KIE, on loopback, spending nothing."""

from __future__ import annotations

from lib.sandbox.backend import SandboxBackend
from lib.sandbox.config import SandboxConfig
from lib.sandbox.errors import SandboxError, UploadError
from lib.sandbox.server import SandboxServer, start_sandbox

__all__ = ["SandboxBackend", "SandboxConfig", "SandboxError", "SandboxServer", "UploadError", "start_sandbox"]
