"""The sandbox's two failure kinds: the API host's (code + msg in a 200 body) and the upload host's (real status)."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


class SandboxError(Exception):
    """An API-host failure: body `code` + `msg`, sent with `http_status` (200 unless the quirk says otherwise)."""

    def __init__(self, code: int, msg: str, http_status: int = 200) -> None:
        super().__init__(msg)
        self.code, self.msg, self.http_status = code, msg, http_status


class UploadError(Exception):
    """An upload-host failure: the upload host answers with the real HTTP status."""

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(msg)
        self.code, self.msg = code, msg
