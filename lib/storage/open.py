"""Choosing where data lives: today's data folder, or team mode (PostgreSQL and/or an S3-compatible bucket).

Both settings are optional. Without them the app is exactly the CSV + folder it always was:
- `KLING_STUDIO_DATABASE_URL` (e.g. `postgresql+psycopg://user@host:5432/kling`): History, drafts, shared forms
  and the element library's records in PostgreSQL;
- `KLING_STUDIO_MEDIA_URL` (e.g. `s3://bucket/prefix`): archived videos and element originals in the bucket, with
  a deletable cache locally (`<data>/cache/`).
With only the database, element originals stay in each server's data folder; with only the bucket, the library's
records stay in the data folder's library.json.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lib.common.settings import Settings, load_settings
from lib.elements.library import ElementLibrary
from lib.elements.originals import FolderOriginals, Originals
from lib.elements.records import ElementRecords, JsonRecords
from lib.storage.base import MediaStore, Storage
from lib.storage.files import FileMedia, shared_file_storage

if TYPE_CHECKING:  # boto3 and SQLAlchemy load only in team mode: a folder-only server saves ~25 MB of RSS
    from sqlalchemy import Engine

    from lib.storage.s3 import S3Blobs

log = logging.getLogger(__name__)

DATABASE_SETTING = "KLING_STUDIO_DATABASE_URL"
MEDIA_SETTING = "KLING_STUDIO_MEDIA_URL"
CACHE_FOLDER = "cache"


@dataclass(frozen=True)
class StorageChoice:
    """Where this server keeps its data; `team` when any of it is shared with other servers."""

    data_dir: Path
    database_url: str | None = None
    media_url: str | None = None

    @property
    def team(self) -> bool:
        return bool(self.database_url or self.media_url)

    def describe(self) -> str:
        """A log line that names no password."""
        parts = [f"data folder {self.data_dir}"]
        if self.database_url:
            from lib.storage.sql import redacted

            parts.append(f"database {redacted(self.database_url)}")
        if self.media_url:
            parts.append(f"media {self.media_url}")
        return ", ".join(parts)


def _setting(name: str, env: Mapping[str, str], secrets: Mapping[str, object]) -> str | None:
    value = env.get(name) or secrets.get(name)
    text = str(value).strip() if value is not None else ""
    return text or None


def storage_choice(source: Settings | Mapping[str, object] | None = None,
                   environ: Mapping[str, str] | None = None) -> StorageChoice:
    """Read the choice from the environment, then secrets (`source` as a mapping) or given Settings."""
    env = os.environ if environ is None else environ
    secrets: Mapping[str, object] = source if isinstance(source, Mapping) else {}
    settings = source if isinstance(source, Settings) else load_settings(secrets, None, env)
    return StorageChoice(settings.data_dir, _setting(DATABASE_SETTING, env, secrets),
                         _setting(MEDIA_SETTING, env, secrets))


def _blobs(choice: StorageChoice, environ: Mapping[str, str] | None) -> S3Blobs | None:
    if not choice.media_url:
        return None
    from lib.storage.s3 import MediaUrl, S3Blobs, s3_client

    return S3Blobs(s3_client(environ), MediaUrl.parse(choice.media_url))


def _media(choice: StorageChoice, blobs: S3Blobs | None) -> MediaStore:
    if blobs is None:
        return FileMedia(choice.data_dir)
    from lib.storage.s3 import S3Media

    return S3Media(blobs, choice.data_dir / CACHE_FOLDER / "media")


def _library(folder: Path, engine: Engine | None, blobs: S3Blobs | None) -> ElementLibrary:
    """Records in the database or library.json; originals in the bucket (cached) or the data folder."""
    root = folder / "elements" if blobs is None else folder / CACHE_FOLDER / "elements"
    originals: Originals = FolderOriginals(root / "files")
    if blobs is not None:
        from lib.storage.s3_originals import S3Originals

        originals = S3Originals(blobs, root / "files")
    records: ElementRecords = JsonRecords(folder / "elements" / "library.json", root)
    if engine is not None:
        from lib.storage.sql_library import SqlRecords

        records = SqlRecords(engine, root)
    return ElementLibrary(folder, records=records, originals=originals)


def build_storage(choice: StorageChoice, environ: Mapping[str, str] | None = None) -> Storage:
    """A Storage for `choice` (fresh objects; the database engine is shared per URL and process)."""
    folder = Path(choice.data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    if not choice.team:
        return shared_file_storage(folder)
    files = shared_file_storage(folder)
    ledger, drafts = files.ledger, files.drafts
    engine = None
    if choice.database_url:
        from lib.storage.sql import SqlDrafts, SqlLedger, shared_engine

        engine = shared_engine(choice.database_url)
        ledger, drafts = SqlLedger(engine), SqlDrafts(engine)
    blobs = _blobs(choice, environ)
    return Storage(ledger=ledger, library=_library(folder, engine, blobs), drafts=drafts, media=_media(choice, blobs))


_shared: dict[StorageChoice, Storage] = {}
_shared_lock = threading.Lock()


def open_storage(source: Settings | Mapping[str, object] | None = None,
                 environ: Mapping[str, str] | None = None) -> Storage:
    """This process's storage for the configured choice: one per choice, shared by the follower and sessions."""
    choice = storage_choice(source, environ)
    if not choice.team:
        return shared_file_storage(choice.data_dir)  # exactly today's behaviour
    key = StorageChoice(choice.data_dir.resolve(), choice.database_url, choice.media_url)
    with _shared_lock:
        if key not in _shared:
            _shared[key] = build_storage(key, environ)
            log.info("team storage: %s", key.describe())
        return _shared[key]
