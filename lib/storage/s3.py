"""Team storage in an S3-compatible bucket (boto3): archived videos, and the blobs behind element originals.

The bucket stays private: browsers get short-lived presigned URLs (`S3Media.video_url`) or bytes the app serves
from its cache. A server keeps only a cache folder, which can be deleted at any time (it refills on demand).
Endpoint, region and credentials come from the usual AWS settings (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, …).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lib.storage.files import thumbnail_file, write_thumbnail
from lib.trust.paths import existing_video, safe_id, video_file, videos_dir

log = logging.getLogger(__name__)

PRESIGN_S = 300          # a browser needs the link only long enough to start playing
NO_VIDEO_RECHECK_S = 30.0  # a task without a video is asked about again after this (another server may archive it)
_MISSING = {"404", "NoSuchKey", "NotFound"}


class MediaUrlError(ValueError):
    """KLING_STUDIO_MEDIA_URL is not an s3://bucket/prefix URL; the message says how to write it."""


@dataclass(frozen=True)
class MediaUrl:
    """Where team media lives: a bucket and a key prefix ('' or ending in '/')."""

    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> MediaUrl:
        """Parse `s3://bucket/optional/prefix`."""
        parts = urlsplit(url.strip())
        if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
            raise MediaUrlError(f"{url!r} is not a bucket URL. Fix: write it as s3://bucket or s3://bucket/prefix.")
        prefix = parts.path.strip("/")
        return cls(parts.netloc, f"{prefix}/" if prefix else "")


def s3_client(environ: Mapping[str, str] | None = None) -> Any:
    """A boto3 S3 client from the usual AWS settings (an `AWS_ENDPOINT_URL` points it at MinIO, R2, moto …)."""
    env = os.environ if environ is None else environ
    return boto3.client("s3", endpoint_url=env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None,
                        region_name=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
                        config=Config(signature_version="s3v4", retries={"mode": "standard", "max_attempts": 4},
                                      connect_timeout=5, read_timeout=60))


def _missing(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code")) in _MISSING


class S3Blobs:
    """Objects under one prefix of a private bucket; keys are relative to the prefix."""

    def __init__(self, client: Any, where: MediaUrl) -> None:
        self.client, self.where = client, where

    def key(self, name: str) -> str:
        return self.where.prefix + name

    def put_file(self, name: str, path: Path, content_type: str = "application/octet-stream") -> None:
        """Upload a local file (multipart for large ones)."""
        self.client.upload_file(str(path), self.where.bucket, self.key(name), ExtraArgs={"ContentType": content_type})

    def exists(self, name: str) -> bool:
        try:
            self.client.head_object(Bucket=self.where.bucket, Key=self.key(name))
        except ClientError as exc:
            if _missing(exc):
                return False
            raise
        return True

    def fetch(self, name: str, target: Path) -> bool:
        """Download an object to `target` atomically; False when there is no such object."""
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        os.close(fd)
        try:
            self.client.download_file(self.where.bucket, self.key(name), tmp)
            os.replace(tmp, target)
        except ClientError as exc:
            if _missing(exc):
                return False
            raise
        finally:
            Path(tmp).unlink(missing_ok=True)
        return True

    def delete(self, name: str) -> bool:
        """Remove an object; True when one was there."""
        if not self.exists(name):
            return False
        self.client.delete_object(Bucket=self.where.bucket, Key=self.key(name))
        return True

    def names(self, under: str = "") -> Iterator[str]:
        """Every object name below `under` (relative to the prefix)."""
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.where.bucket,
                                                                       Prefix=self.key(under))
        for page in pages:
            for item in page.get("Contents", []):
                yield item["Key"][len(self.where.prefix):]

    def presigned(self, name: str, expires_s: int = PRESIGN_S) -> str:
        """A short-lived GET link for one object (the bucket itself stays private)."""
        return self.client.generate_presigned_url("get_object", Params={"Bucket": self.where.bucket,
                                                                        "Key": self.key(name)},
                                                  ExpiresIn=expires_s)


def video_name(task_id: str) -> str:
    """The object name of a task's archived video (derived from the id, never from a row or URL)."""
    return f"videos/{safe_id(task_id)}.mp4"


def thumbnail_name(task_id: str) -> str:
    """The object name of a task's thumbnail (derived from the id, like its video)."""
    return f"thumbnails/{safe_id(task_id)}.jpg"


class S3Media:
    """The MediaStore in a bucket: `videos/<task id>.mp4`, with a deletable local cache for playing."""

    def __init__(self, blobs: S3Blobs, cache_dir: str | os.PathLike[str],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.blobs = blobs
        self.cache_dir = Path(cache_dir)
        self.clock = clock
        self._no_video: dict[str, float] = {}  # task id -> when the bucket last had no video for it
        self._undecodable: set[str] = set()     # videos that gave no frame (not decoded again by this server)

    def staging_dir(self) -> Path:
        """Downloads are written into the cache, then uploaded."""
        folder = videos_dir(self.cache_dir)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def put_video(self, task_id: str, path: Path) -> None:
        """Upload the downloaded video, then keep the local file as the cached copy."""
        self.blobs.put_file(video_name(task_id), Path(path), "video/mp4")
        target = video_file(self.cache_dir, task_id)
        if Path(path).resolve() != target:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
        log.info("archived the video of %s to the bucket", task_id)
        self._forget_thumbnail(task_id)
        self._make_thumbnail(task_id, target)

    def video(self, task_id: str) -> Path | None:
        """A cached local copy of the archived video (fetched from the bucket on a miss), or None."""
        cached = existing_video(self.cache_dir, task_id)
        if cached is not None:
            return cached
        target = video_file(self.cache_dir, task_id)
        return target if self.blobs.fetch(video_name(task_id), target) else None

    def has_video(self, task_id: str) -> bool:
        """True when the bucket holds the video (a HEAD request; nothing is downloaded)."""
        return existing_video(self.cache_dir, task_id) is not None or self.blobs.exists(video_name(task_id))

    def video_url(self, task_id: str, expires_s: int = PRESIGN_S) -> str | None:
        """A short-lived link a browser may play directly, or None when there is no video."""
        return self.blobs.presigned(video_name(task_id), expires_s) if self.has_video(task_id) else None

    def delete_video(self, task_id: str) -> bool:
        """Remove the video from the bucket and this server's cache; True when the bucket had one."""
        cached = existing_video(self.cache_dir, task_id)
        if cached is not None:
            cached.unlink(missing_ok=True)
        self._forget_thumbnail(task_id)
        self.blobs.delete(thumbnail_name(task_id))
        removed = self.blobs.delete(video_name(task_id))
        if removed:
            log.info("deleted the archived video of %s", task_id)
        return removed

    def thumbnail(self, task_id: str) -> Path | None:
        """The cached thumbnail of the archived video, fetched from the bucket or made (and stored there) on a
        miss; None when there is no video or it cannot be decoded."""
        target = thumbnail_file(self.cache_dir, task_id)
        if target is None or task_id in self._undecodable:
            return None
        if target.is_file():
            return target
        seen_none = self._no_video.get(task_id)
        if seen_none is not None and self.clock() - seen_none < NO_VIDEO_RECHECK_S:
            return None
        if self.blobs.fetch(thumbnail_name(task_id), target):
            return target
        video = self.video(task_id)
        if video is None:
            self._no_video[task_id] = self.clock()
            return None
        return self._make_thumbnail(task_id, video)

    def _make_thumbnail(self, task_id: str, video: Path) -> Path | None:
        target = thumbnail_file(self.cache_dir, task_id)
        if target is None or not write_thumbnail(video, target):
            self._undecodable.add(task_id)
            return None
        try:
            self.blobs.put_file(thumbnail_name(task_id), target, "image/jpeg")
        except (BotoCoreError, ClientError) as exc:  # the local copy still shows; another server makes its own
            log.warning("could not store the thumbnail of %s in the bucket: %s", task_id, exc)
        return target

    def _forget_thumbnail(self, task_id: str) -> None:
        self._no_video.pop(task_id, None)
        self._undecodable.discard(task_id)
        target = thumbnail_file(self.cache_dir, task_id)
        if target is not None:
            target.unlink(missing_ok=True)

    def clear_cache(self) -> None:
        """Drop every cached file (the bucket keeps everything)."""
        shutil.rmtree(self.cache_dir, ignore_errors=True)
