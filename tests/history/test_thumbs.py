"""History's thumbnail column: only the store's own small JPEG, inline; anything else gives no picture."""

from __future__ import annotations

from pathlib import Path

import pytest

from lib.history.thumbs import MAX_THUMBNAIL_BYTES, thumbnail_column, thumbnail_uri

JPEG = b"\xff\xd8\xff\xe0" + b"jfif" * 10


class Store:
    def __init__(self, path: Path | None = None, error: Exception | None = None) -> None:
        self.path, self.error = path, error
        self.asked: list[str] = []

    def thumbnail(self, task_id: str) -> Path | None:
        self.asked.append(task_id)
        if self.error:
            raise self.error
        return self.path


def test_a_jpeg_thumbnail_becomes_a_data_uri(tmp_path: Path) -> None:
    (tmp_path / "t.jpg").write_bytes(JPEG)
    store = Store(tmp_path / "t.jpg")
    assert thumbnail_uri(store, "a").startswith("data:image/jpeg;base64,/9j/")
    assert thumbnail_column(store, ["a", "b"])[1].startswith("data:") and store.asked == ["a", "a", "b"]


@pytest.mark.parametrize("content", [b"<svg onload=alert(1)>", b"\x89PNG\r\n", JPEG + b"x" * MAX_THUMBNAIL_BYTES])
def test_anything_but_a_small_jpeg_gives_no_picture(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "t.jpg").write_bytes(content)
    assert thumbnail_uri(Store(tmp_path / "t.jpg"), "a") is None


def test_no_thumbnail_a_broken_store_or_a_store_without_thumbnails(tmp_path: Path) -> None:
    assert thumbnail_uri(Store(None), "a") is None
    assert thumbnail_uri(Store(tmp_path / "gone.jpg"), "a") is None
    assert thumbnail_uri(Store(error=OSError("bucket down")), "a") is None
    assert thumbnail_uri(object(), "a") is None
