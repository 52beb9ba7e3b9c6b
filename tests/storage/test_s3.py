"""S3Media against a moto server: videos live in a private bucket; a server keeps only a deletable cache."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from lib.storage.s3 import MediaUrl, MediaUrlError, S3Blobs, S3Media, s3_client, video_name

MP4 = b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64


@pytest.fixture
def media(s3_env, tmp_path: Path) -> S3Media:
    where = MediaUrl(s3_env.new_bucket(), "team/")
    return S3Media(S3Blobs(s3_client(), where), tmp_path / "cache-a")


def _download(media: S3Media, name: str = "dl.mp4") -> Path:
    path = media.staging_dir() / name
    path.write_bytes(MP4)
    return path


def test_a_put_video_lands_in_the_bucket_under_its_task_id(media: S3Media) -> None:
    media.put_video("task/1", _download(media))
    names = list(media.blobs.names())
    assert names == [video_name("task/1")] and "/" not in names[0].removeprefix("videos/")
    assert media.video("task/1").read_bytes() == MP4


def test_another_server_plays_it_from_the_bucket(media: S3Media, tmp_path: Path) -> None:
    media.put_video("t1", _download(media))
    other = S3Media(media.blobs, tmp_path / "cache-b")
    assert other.video("t1").read_bytes() == MP4 and other.video("t1").is_relative_to(tmp_path / "cache-b")


def test_the_cache_can_be_deleted_at_any_time(media: S3Media) -> None:
    media.put_video("t1", _download(media))
    media.clear_cache()
    assert not media.cache_dir.exists()
    assert media.video("t1").read_bytes() == MP4  # fetched again on demand


def test_no_video_is_none(media: S3Media) -> None:
    assert media.video("never") is None and not media.has_video("never") and media.video_url("never") is None
    assert media.delete_video("never") is False


def test_delete_removes_it_from_bucket_and_cache(media: S3Media, tmp_path: Path) -> None:
    media.put_video("t1", _download(media))
    assert media.delete_video("t1") is True
    assert list(media.blobs.names()) == [] and media.video("t1") is None
    assert S3Media(media.blobs, tmp_path / "cache-b").video("t1") is None


def test_browsers_get_a_short_lived_presigned_link_never_a_public_object(media: S3Media) -> None:
    media.put_video("t1", _download(media))
    link = media.video_url("t1", expires_s=60)
    assert "X-Amz-Expires=60" in link and "X-Amz-Signature=" in link
    assert requests.get(link, timeout=10).content == MP4  # a browser plays it straight from the bucket


@pytest.mark.parametrize(("url", "bucket", "prefix"), [
    ("s3://media", "media", ""), ("s3://media/", "media", ""), ("s3://media/a/b/", "media", "a/b/"),
    (" s3://media/kling ", "media", "kling/"),
])
def test_media_url(url: str, bucket: str, prefix: str) -> None:
    assert MediaUrl.parse(url) == MediaUrl(bucket, prefix)


@pytest.mark.parametrize("url", ["https://media.example/x", "s3://", "/data/videos", "s3://b/p?x=1"])
def test_a_bad_media_url_says_how_to_write_it(url: str) -> None:
    with pytest.raises(MediaUrlError, match="s3://bucket"):
        MediaUrl.parse(url)
