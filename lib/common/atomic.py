"""The one way files are replaced on disk: a temp file beside the target, fsync, then os.replace."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)


class Readable(Protocol):
    """Anything with a binary read(size): a file, a socket stream, a capped reader."""

    def read(self, size: int = -1, /) -> bytes: ...


def write_atomically(path: Path, source: bytes | bytearray | memoryview | Readable, *, fsync: bool = True,
                     keep_mode: bool = False) -> None:
    """Replace `path` with `source` (bytes or a binary stream) so readers never see half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            if isinstance(source, bytes | bytearray | memoryview):
                fh.write(source)
            else:
                shutil.copyfileobj(source, fh, 1024 * 1024)
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        if keep_mode and path.exists():
            os.chmod(tmp, os.stat(path).st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
