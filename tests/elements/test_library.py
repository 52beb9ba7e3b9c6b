"""Element library: storage, every validation message, uploads and expiry, export/import, crash safety."""

from __future__ import annotations

import functools
import io
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from PIL import Image

from lib.elements.library import ElementLibrary
from lib.elements.model import ElementError, UploadStatus, parse_time, safe_file_name, to_element_spec, url_media
from lib.kie.errors import KieApiError
from lib.kie.models import UploadedFile
from lib.kling.job import element_entry

T = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


# ---------------------------------------------------------------- real media files

def image_bytes(size: tuple[int, int] = (400, 400), fmt: str = "PNG", color: str = "orange") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format=fmt)
    return buf.getvalue()


@functools.cache
def video_bytes() -> bytes:
    """A real 1 s H.264 MP4 (the sandbox's animatic renderer), made once per run."""
    from lib.sandbox.animatic import render_animatic

    return render_animatic([("test clip", 1)], "1:1")


def pngs(n: int) -> list[tuple[str, bytes]]:
    return [(f"cat{i}.png", image_bytes(color=("orange", "blue", "green", "red", "white", "black")[i % 6]))
            for i in range(n)]


@dataclass
class FakeUploader:
    """Records every upload; fails for the file names in `fail`; its clock is `now`."""

    now: datetime = T
    fail: set[str] = field(default_factory=set)
    calls: list[dict] = field(default_factory=list)

    def __call__(self, source, *, file_name: str, upload_path: str, method: str = "auto") -> UploadedFile:
        content = source if isinstance(source, str) else source.read()
        self.calls.append({"source": content, "file_name": file_name, "upload_path": upload_path, "method": method})
        if file_name in self.fail:
            raise KieApiError(500, "upload host is down")
        n = len(self.calls)
        return UploadedFile(download_url=f"https://tempfile.example/kieai/{n}-{file_name}", file_name=file_name,
                            file_path=f"kieai/{n}-{file_name}", size=len(content), mime_type="image/png",
                            uploaded_at=self.now, expires_at=self.now + timedelta(days=3),
                            method="url" if isinstance(source, str) else "stream" if method == "auto" else method)


@pytest.fixture
def lib(tmp_path: Path) -> ElementLibrary:
    return ElementLibrary(tmp_path / "data")


def snapshot(lib: ElementLibrary) -> tuple[object, list[str], list[str]]:
    """The stored records (library.json's bytes, or every element when they are in a database), every local file
    and every original in a bucket, to prove an operation changed nothing."""
    data: object = lib.list() if lib.path is None else lib.path.read_bytes() if lib.path.exists() else None
    files = sorted(str(p.relative_to(lib.root)) for p in lib.root.rglob("*") if p.is_file() and p.suffix != ".lock")
    names = getattr(lib.originals, "names", None)
    return data, files, sorted(names()) if names else []


# ---------------------------------------------------------------- create / read

def test_create_images_saves_a_draft_with_local_originals(lib: ElementLibrary) -> None:
    files = pngs(3)
    element = lib.create("dog", "  a brown dog  ", files, now=T)
    assert (element.name, element.description, element.kind) == ("dog", "a brown dog", "images")
    assert [m.file_name for m in element.media] == ["cat0.png", "cat1.png", "cat2.png"]
    for media, (_, data) in zip(element.media, files, strict=True):
        assert Path(media.local_path).read_bytes() == data
        assert Path(media.local_path).parent == lib.files_dir / element.id
        assert (media.kind, media.width, media.height, media.kie_url) == ("image", 400, 400, None)
    assert lib.status(element, T).label == "not uploaded"
    assert lib.get(element.id) == element
    assert lib.by_name("DOG") == element
    assert lib.by_name("cat") is None
    stored = json.loads(lib.path.read_text())
    assert stored["elements"][0]["media"][0]["local_path"] == f"files/{element.id}/cat0.png"


def test_create_video_and_url_elements(lib: ElementLibrary) -> None:
    video = lib.create("clip", "a spinning top", [("spin.mp4", io.BytesIO(video_bytes()))])
    assert (video.kind, [m.kind for m in video.media]) == ("video", ["video"])
    linked = lib.create("web", "from the web", urls=["https://x.test/a.png", "https://x.test/a.png?v=2"])
    assert [m.file_name for m in linked.media] == ["a.png", "a_2.png"]
    assert [(m.local_path, m.source_url) for m in linked.media] == [
        (None, "https://x.test/a.png"), (None, "https://x.test/a.png?v=2")]


def test_list_is_sorted_by_name(lib: ElementLibrary) -> None:
    for name in ("zebra", "Apple", "mango"):
        lib.create(name, "a thing", pngs(2))
    assert [e.name for e in lib.list()] == ["Apple", "mango", "zebra"]


# ---------------------------------------------------------------- validation messages

CASES = [
    # (id, name, description, files, urls, every expected text)
    ("space", "my cat", "a cat", lambda: pngs(2), [], ["Name 'my cat' has a space", "e.g. 'my_cat'"]),
    ("cyrillic o", "d\u043eg", "a dog", lambda: pngs(2), [], ["Cyrillic Small Letter O", "Latin 'o'", "'dog'"]),
    ("symbol", "cat!", "a cat", lambda: pngs(2), [], ["'!'", "e.g. 'cat'"]),
    ("empty name", " ", "a cat", lambda: pngs(2), [], ["Name is empty"]),
    ("too long", "a" * 41, "a cat", lambda: pngs(2), [], ["41 characters", "at most 40"]),
    ("duplicate", "DOG", "a dog", lambda: pngs(2), [], ["An element named 'dog' already exists"]),
    ("no description", "cat", "  ", lambda: pngs(2), [], ["Description is empty"]),
    ("no files", "cat", "a cat", lambda: [], [], ["No reference files", "2–4 images", "1 video"]),
    ("1 image", "cat", "a cat", lambda: pngs(1), [], ["Only 1 image", "add 1–3 more"]),
    ("5 images", "cat", "a cat", lambda: pngs(5), [], ["5 images is too many", "remove 1"]),
    ("image+video", "cat", "a cat", lambda: pngs(2) + [("v.mp4", video_bytes())], [], ["not both"]),
    ("2 videos", "cat", "a cat", lambda: [("a.mp4", video_bytes()), ("b.mp4", video_bytes())], [],
     ["exactly 1 video"]),
    ("299 px", "cat", "a cat", lambda: pngs(1) + [("small.png", image_bytes((299, 400)))], [], ["small.png", "300"]),
    ("gif as png", "cat", "a cat", lambda: pngs(1) + [("fake.png", image_bytes(fmt="GIF"))], [], ["fake.png"]),
    ("ftp url", "cat", "a cat", lambda: pngs(1), ["ftp://x.test/a.png"], ["not a web address"]),
    ("url not a file", "cat", "a cat", lambda: pngs(1), ["https://x.test/gallery"], ["does not end in .jpg"]),
    ("url + image mix", "cat", "a cat", lambda: pngs(2), ["https://x.test/v.mp4"], ["not both"]),
]


@pytest.mark.parametrize(("name", "description", "files", "urls", "expected"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_create_refuses_with_a_message_naming_the_fix(lib, name, description, files, urls, expected) -> None:
    lib.create("dog", "the first dog", pngs(2))
    before = snapshot(lib)
    with pytest.raises(ElementError) as info:
        lib.create(name, description, files(), urls)
    text = " | ".join(info.value.problems)
    for part in expected:
        assert part in text
    assert snapshot(lib) == before
    assert [e.name for e in lib.list()] == ["dog"]


@pytest.mark.parametrize(("name", "exclude_self", "expected"), [
    ("cat", False, []),
    ("my-cat_2", False, []),
    ("a" * 40, False, []),
    ("dog", False, ["An element named 'dog' already exists: pick another name, e.g. 'dog_3'"]),
    ("Dog", False, ["An element named 'dog' already exists: pick another name, e.g. 'Dog_3'"]),
    ("Dog", True, []),
    ("my cat", False, ["Name 'my cat' has a space: use letters, digits, _ or -, e.g. 'my_cat'"]),
    ("d\u043eg", True, ["Name 'd\u043eg' has '\u043e' (Cyrillic Small Letter O), which looks like the Latin 'o' "
                        "but is not: retype it as 'dog'"]),
    ("caf\u00e9", False, ["Name 'caf\u00e9' has '\u00e9', which @name cannot use: use letters, digits, _ or -, "
                          "e.g. 'cafe'"]),
])
def test_check_name_as_you_type(lib, name, exclude_self, expected) -> None:
    dog = lib.create("dog", "a dog", pngs(2))
    lib.create("DOG_2", "taken", pngs(2))
    assert lib.check_name(name, exclude_id=dog.id if exclude_self else None) == expected


# ---------------------------------------------------------------- edit / rename / duplicate / delete

def test_update_changes_fields_and_files(lib: ElementLibrary) -> None:
    dog = lib.create("dog", "a dog", pngs(2), now=T)
    removed_path = Path(dog.media[0].local_path)
    new = image_bytes(color="purple")
    later = T + timedelta(hours=1)
    updated = lib.update(dog.id, name="puppy", description="a small dog", add_files=[("cat0.png", new)],
                         remove_media=["cat0.png"], now=later)
    assert (updated.name, updated.description, updated.updated_at) == ("puppy", "a small dog", later.isoformat())
    assert [m.file_name for m in updated.media] == ["cat1.png", "cat0_2.png"]
    assert Path(updated.media[1].local_path).read_bytes() == new
    assert not removed_path.exists()
    assert lib.get(dog.id) == updated and lib.by_name("dog") is None


@pytest.mark.parametrize(("changes", "expected"), [
    ({"remove_media": ["cat0.png"]}, "Only 1 image"),
    ({"remove_media": ["nope.png"]}, "'nope.png' is not a file of 'dog'"),
    ({"add_files": [("v.mp4", b"")]}, "v.mp4"),
    ({"add_files": pngs(3)}, "5 images is too many"),
    ({"name": "cat"}, "An element named 'cat' already exists"),
    ({"name": "new dog"}, "has a space"),
    ({"description": ""}, "Description is empty"),
])
def test_update_refuses_and_changes_nothing(lib, changes, expected) -> None:
    lib.create("cat", "a cat", pngs(2))
    dog = lib.create("dog", "a dog", pngs(2))
    before = snapshot(lib)
    with pytest.raises(ElementError) as info:
        lib.update(dog.id, **changes)
    assert expected in str(info.value)
    assert snapshot(lib) == before


def test_rename_allows_a_change_of_case_and_keeps_uploads(lib: ElementLibrary) -> None:
    dog = lib.create("dog", "a dog", pngs(2))
    dog = lib.upload(dog.id, FakeUploader(), now=T)
    renamed = lib.rename(dog.id, "Dog")
    assert renamed.name == "Dog" and renamed.media == dog.media
    with pytest.raises(ElementError, match="No element with id"):
        lib.rename("missing", "x")


def test_duplicate_copies_files_under_a_free_name(lib: ElementLibrary) -> None:
    dog = lib.create("dog", "a dog", pngs(2))
    first, second = lib.duplicate(dog.id), lib.duplicate(dog.id)
    assert (first.name, second.name) == ("dog_copy", "dog_copy2")
    assert first.description == dog.description and first.id != dog.id
    for original, copy in zip(dog.media, first.media, strict=True):
        assert copy.local_path != original.local_path
        assert Path(copy.local_path).read_bytes() == Path(original.local_path).read_bytes()
    lib.delete(dog.id)
    assert all(Path(m.local_path).exists() for m in first.media)
    long = lib.create("b" * 40, "long", pngs(2))
    assert lib.duplicate(long.id).name == "b" * 35 + "_copy"


def test_delete_removes_the_element_and_its_files(lib: ElementLibrary) -> None:
    dog = lib.create("dog", "a dog", pngs(2))
    folder = lib.files_dir / dog.id
    assert folder.is_dir()
    lib.delete(dog.id)
    assert lib.get(dog.id) is None and not folder.exists() and lib.list() == []
    with pytest.raises(ElementError):
        lib.delete(dog.id)


# ---------------------------------------------------------------- uploads

def test_upload_sends_every_original_and_records_urls(lib: ElementLibrary) -> None:
    files = pngs(2)
    dog = lib.create("dog", "a dog", files)
    fake = FakeUploader()
    dog = lib.upload(dog.id, fake, now=T)
    assert [c["source"] for c in fake.calls] == [data for _, data in files]
    assert {c["method"] for c in fake.calls} == {"auto"}
    assert all(c["upload_path"].endswith(dog.id) for c in fake.calls)
    assert [m.kie_url for m in dog.media] == ["https://tempfile.example/kieai/1-cat0.png",
                                              "https://tempfile.example/kieai/2-cat1.png"]
    assert dog.media[0].expires_at == (T + timedelta(days=3)).isoformat()
    assert lib.status(dog, T) == UploadStatus("uploaded", "expires in 72 h", 72.0)
    assert lib.get(dog.id) == dog
    assert lib.upload(dog.id, fake, now=T + timedelta(days=1)) == dog and len(fake.calls) == 2


def test_upload_failure_keeps_a_draft_with_the_error_and_retry_fixes_it(lib: ElementLibrary) -> None:
    dog = lib.create("dog", "a dog", pngs(2))
    dog = lib.upload(dog.id, FakeUploader(fail={"cat1.png"}), method="base64", now=T)
    ok, bad = dog.media
    assert ok.kie_url and ok.upload_error is None and ok.upload_method == "base64"
    assert bad.kie_url is None and "upload host is down" in bad.upload_error and " — " in bad.upload_error
    status = lib.status(dog, T)
    assert status.label == "failed" and status.detail.startswith("failed: cat1.png: KIE error 500")
    assert lib.get(dog.id) == dog and Path(bad.local_path).exists()
    with pytest.raises(ElementError, match="not uploaded yet"):
        to_element_spec(dog)
    retry = FakeUploader()
    dog = lib.upload(dog.id, retry, now=T)
    assert [c["file_name"] for c in retry.calls] == ["cat1.png"]
    assert lib.status(dog, T).label == "uploaded" and dog.media[0] == ok


def test_upload_records_a_missing_original_instead_of_raising(lib: ElementLibrary) -> None:
    dog = lib.create("dog", "a dog", pngs(2))
    Path(dog.media[0].local_path).unlink()
    dog = lib.upload(dog.id, FakeUploader(), now=T)
    assert "original file is gone" in dog.media[0].upload_error and dog.media[1].kie_url


def test_edits_made_during_an_upload_are_kept(lib: ElementLibrary) -> None:
    dog = lib.create("dog", "a dog", pngs(2))

    class RenamingUploader(FakeUploader):
        def __call__(self, source, **kwargs):
            if not self.calls:
                lib.rename(dog.id, "hound")
            return super().__call__(source, **kwargs)

    result = lib.upload(dog.id, RenamingUploader(), now=T)
    assert result.name == "hound" and all(m.kie_url for m in result.media)
    assert lib.get(dog.id) == result


def test_url_sourced_media_are_uploaded_by_url(lib: ElementLibrary) -> None:
    urls = ["https://x.test/a.png", "https://x.test/b.jpg"]
    web = lib.create("web", "from the web", urls=urls)
    fake = FakeUploader()
    web = lib.upload(web.id, fake, now=T)
    assert [(c["source"], c["method"]) for c in fake.calls] == [(urls[0], "url"), (urls[1], "url")]
    assert [m.upload_method for m in web.media] == ["url", "url"]
    with pytest.raises(ValueError, match="Unknown upload method"):
        lib.upload(web.id, fake, method="url")


@pytest.mark.parametrize(("offset", "label", "detail", "hours_left"), [
    (timedelta(0), "uploaded", "expires in 72 h", 72.0),
    (timedelta(days=1), "uploaded", "expires in 48 h", 48.0),
    (timedelta(days=2, hours=18), "uploaded", "expires in 6 h", 6.0),
    (timedelta(days=2, hours=20), "expires soon", "expires in 4 h: re-uploaded on next use", 4.0),
    (timedelta(days=2, hours=23, minutes=30), "expires soon", "expires in 30 min: re-uploaded on next use", 0.5),
    (timedelta(days=3, seconds=1), "expired", "expired less than 1 h ago: re-uploaded on next use", -1 / 3600),
    (timedelta(days=4), "expired", "expired 24 h ago: re-uploaded on next use", -24.0),
])
def test_status_follows_the_three_day_expiry(lib, offset, label, detail, hours_left) -> None:
    dog = lib.upload(lib.create("dog", "a dog", pngs(2)).id, FakeUploader(now=T), now=T)
    status = lib.status(dog, T + offset)
    assert (status.label, status.detail) == (label, detail)
    assert status.hours_left == pytest.approx(hours_left)


@pytest.mark.parametrize(("offset", "reuploads"), [
    (timedelta(days=1), 0),
    (timedelta(days=2, hours=17), 0),
    (timedelta(days=2, hours=20), 2),
    (timedelta(days=3, seconds=1), 2),
])
def test_ensure_fresh_reuploads_expired_and_expiring_elements(lib, offset, reuploads) -> None:
    dog = lib.upload(lib.create("dog", "a dog", pngs(2)).id, FakeUploader(now=T), now=T)
    cat = lib.create("cat", "a cat", pngs(2))
    later = FakeUploader(now=T + offset)
    fresh = lib.ensure_fresh(["dog", "cat", "dog"], later, now=T + offset)
    assert [e.name for e in fresh] == ["dog", "cat"]
    assert [c["file_name"] for c in later.calls] == ["cat0.png", "cat1.png"] * (reuploads // 2) + \
        ["cat0.png", "cat1.png"]
    assert all(lib.status(e, T + offset).label == "uploaded" for e in fresh)
    assert lib.get(dog.id) == fresh[0] and lib.get(cat.id) == fresh[1]


def test_ensure_fresh_refuses_unknown_names_and_failed_uploads(lib: ElementLibrary) -> None:
    lib.create("dog", "a dog", pngs(2))
    fake = FakeUploader()
    with pytest.raises(ElementError, match="No element named 'ghost'") as info:
        lib.ensure_fresh(["dog", "ghost"], fake, now=T)
    assert "remove @ghost" in str(info.value) and fake.calls == []
    with pytest.raises(ElementError, match="write @dog"):
        lib.ensure_fresh(["Dog"], fake, now=T)
    assert fake.calls == []
    with pytest.raises(ElementError, match=r"@dog: failed: cat0.png"):
        lib.ensure_fresh(["dog"], FakeUploader(fail={"cat0.png"}), now=T)
    assert lib.status(lib.by_name("dog"), T).label == "failed"


def test_to_spec_gives_the_kling_elements_entry(lib: ElementLibrary) -> None:
    dog = lib.upload(lib.create("dog", "a dog", pngs(2)).id, FakeUploader(), now=T)
    clip = lib.upload(lib.create("clip", "a top", [("spin.mp4", video_bytes())]).id, FakeUploader(), now=T)
    assert element_entry(to_element_spec(dog)) == {"name": "dog", "description": "a dog",
                                "element_input_urls": [m.kie_url for m in dog.media]}
    assert element_entry(to_element_spec(clip)) == {"name": "clip", "description": "a top",
                                 "element_input_video_urls": [clip.media[0].kie_url]}
    spec = to_element_spec(clip)
    assert (spec.name, spec.image_urls, spec.video_urls) == ("clip", (), (clip.media[0].kie_url,))


# ---------------------------------------------------------------- export / import

def test_export_import_round_trip(tmp_path: Path, lib: ElementLibrary) -> None:
    dog = lib.upload(lib.create("dog", "a dog", pngs(2)).id, FakeUploader(), now=T)
    lib.create("clip", "a top", [("spin.mp4", video_bytes())])
    lib.create("web", "from the web", urls=["https://x.test/a.png", "https://x.test/b.png"])
    text = lib.export_json()
    exported = json.loads(text)
    assert [e["name"] for e in exported] == ["clip", "dog", "web"]
    assert exported[1]["element_input_urls"] == [m.kie_url for m in dog.media]
    assert exported[1]["kling_studio"]["media"][0]["width"] == 400
    assert "not embedded" in exported[1]["kling_studio"]["originals"]
    assert str(lib.root) not in text and "local_path" not in text

    other = ElementLibrary(tmp_path / "other")
    result = other.import_json(text, now=T)
    assert result.added == ["dog", "web"]  # clip was never uploaded: an export cannot carry its files
    assert result.bad == [("clip", "has no URLs: its files were never uploaded. Upload it in the library it "
                                   "came from, then export again.")]
    copy = other.by_name("dog")
    assert [m.source_url for m in copy.media] == [m.kie_url for m in dog.media]
    assert [(m.file_name, m.width, m.expires_at) for m in copy.media] == \
        [(m.file_name, m.width, m.expires_at) for m in dog.media]
    assert other.status(copy, T + timedelta(days=1)).label == "uploaded"
    assert other.status(other.by_name("web"), T).label == "not uploaded"
    fake = FakeUploader(now=T + timedelta(days=3))
    other.ensure_fresh(["dog"], fake, now=T + timedelta(days=3))
    assert [(c["source"], c["method"]) for c in fake.calls] == [(m.kie_url, "url") for m in dog.media]

    again = other.import_json(text)
    assert again.added == [] and [name for name, _ in again.bad] == ["clip", "dog", "web"]
    assert "already exists" in again.bad[1][1] and "already exists" in again.bad[2][1]


@pytest.mark.parametrize(("text", "expected"), [
    ("this is not json", "This is not JSON"),
    ("", "This is not JSON"),
    ("42", "this JSON is a number"),
    ('"dog"', "this JSON is a string"),
    ('{"elements": 3}', "this JSON is an object"),
    ('{"input": {"kling_elements": {}}}', "this JSON is an object"),
    ("[]", "The list is empty"),
])
def test_import_of_garbage_leaves_the_library_unchanged(lib, text, expected) -> None:
    lib.create("dog", "a dog", pngs(2))
    before = snapshot(lib)
    with pytest.raises(ElementError) as info:
        lib.import_json(text)
    assert expected in str(info.value)
    assert snapshot(lib) == before


def test_import_keeps_good_entries_and_names_the_bad_ones(lib: ElementLibrary) -> None:
    lib.create("dog", "a dog", pngs(2))
    two = ["https://x.test/1.png", "https://x.test/2.png"]
    entries = [
        {"name": "cat", "description": "a cat", "element_input_urls": two},
        {"name": "my cat", "description": "a cat", "element_input_urls": two},
        {"name": "one", "description": "one image", "element_input_urls": two[:1]},
        "not an element",
        {"name": "dog", "description": "another dog", "element_input_urls": two},
        {"name": "nodesc", "element_input_urls": two},
        {"name": "mixed", "description": "x", "element_input_urls": two,
         "element_input_video_urls": ["https://x.test/v.mp4"]},
        {"name": "badurl", "description": "x", "element_input_urls": ["file:///etc/passwd", two[0]]},
        {"name": "clip", "description": "a clip", "element_input_video_urls": ["https://x.test/v.mov"]},
        {"description": "no name", "element_input_urls": two},
        {"name": "cat", "description": "second cat in the same import", "element_input_urls": two},
    ]
    result = lib.import_json(json.dumps(entries))
    assert result.added == ["cat", "clip"]
    bad = dict(result.bad)
    assert list(bad) == ["my cat", "one", 4, "dog", "nodesc", "mixed", "badurl", 10, "cat"]
    assert "has a space" in bad["my cat"] and "Only 1 image" in bad["one"]
    assert "is a string" in bad[4] and "already exists" in bad["dog"]
    assert "Description is empty" in bad["nodesc"] and "not both" in bad["mixed"]
    assert "not a web address" in bad["badurl"] and "has no name" in bad[10] and "already exists" in bad["cat"]
    assert lib.by_name("clip").kind == "video"
    assert [m.source_url for m in lib.by_name("cat").media] == two


def test_import_accepts_a_create_task_payload(lib: ElementLibrary) -> None:
    payload = {"model": "kling-3.0/video", "input": {"prompt": "@dog runs", "kling_elements": [
        {"name": "dog", "description": "a dog", "element_input_urls": ["https://x.test/1.png", "https://x.test/2.png"]},
    ]}}
    assert lib.import_json(json.dumps(payload)).added == ["dog"]


# ---------------------------------------------------------------- crash safety

@pytest.mark.parametrize(("broken", "only_library"), [("replace", False), ("replace", True), ("fsync", False)])
def test_a_failed_save_never_half_writes_library_json(lib, monkeypatch, broken, only_library) -> None:
    lib.create("dog", "a dog", pngs(2))
    before = snapshot(lib)

    real = getattr(os, broken)

    def fail(*args, **kwargs):
        if only_library and not str(args[1]).endswith("library.json"):
            return real(*args, **kwargs)
        raise OSError("disk full")

    monkeypatch.setattr(os, broken, fail)
    with pytest.raises(OSError, match="disk full"):
        lib.create("cat", "a cat", pngs(2))
    monkeypatch.undo()
    assert snapshot(lib) == before
    assert [e.name for e in lib.list()] == ["dog"]
    assert not [p for p in lib.root.rglob("*.tmp")]


@pytest.mark.parametrize("content", ["{not json", '{"elements": "x"}', '{"version": 99, "elements": []}',
                                     '{"elements": [{"id": "a"}]}', "\udcff"])
def test_a_corrupt_library_is_reported_and_never_overwritten(lib, content) -> None:
    lib.path.write_bytes(content.encode("utf-8", "surrogateescape"))
    for action in (lib.list, lambda: lib.create("dog", "a dog", pngs(2)), lambda: lib.import_json("[{}]")):
        with pytest.raises(ElementError) as info:
            action()
        assert str(lib.path) in str(info.value)
    assert lib.path.read_bytes() == content.encode("utf-8", "surrogateescape")
    assert not (lib.files_dir).exists()


def test_two_library_objects_share_one_file(tmp_path: Path) -> None:
    first, second = ElementLibrary(tmp_path), ElementLibrary(tmp_path)
    first.create("dog", "a dog", pngs(2))
    second.create("cat", "a cat", pngs(2))
    assert [e.name for e in first.list()] == ["cat", "dog"]
    with pytest.raises(ElementError, match="already exists"):
        second.create("Dog", "again", pngs(2))


@pytest.mark.parametrize(("name", "safe"), [
    ("cat.png", "cat.png"),
    ("../../etc/passwd", "passwd"),
    ("C:\\photos\\my cat.PNG", "my_cat.PNG"),
    (".hidden.jpg", "hidden.jpg"),
    ("caf\u00e9 photo.jpeg", "cafe_photo.jpeg"),
    ("", "file"),
])
def test_safe_file_name(name, safe) -> None:
    assert safe_file_name(name) == safe


# ---------------------------------------------------------------- against the sandbox's real upload host

@pytest.mark.parametrize("method", ["auto", "stream", "base64"])
def test_upload_through_the_sandbox_upload_host(lib, client, method) -> None:
    import functools

    import requests

    from lib.kie.uploads import upload_file

    files = pngs(2)
    dog = lib.create("dog", "a dog", files)
    dog = lib.upload(dog.id, functools.partial(upload_file, client), method=method)
    assert lib.status(dog).label == "uploaded", lib.status(dog).detail
    assert [requests.get(m.kie_url, timeout=10).content for m in dog.media] == [data for _, data in files]
    assert {m.upload_method for m in dog.media} == {"stream" if method == "auto" else method}


def test_imported_urls_are_reuploaded_by_url_through_the_sandbox(lib, client, tmp_path) -> None:
    import functools

    import requests

    from lib.kie.uploads import upload_file

    uploader = functools.partial(upload_file, client)
    files = pngs(2)
    dog = lib.upload(lib.create("dog", "a dog", files).id, uploader)
    plain = [{"name": "dog", "description": "a dog", "element_input_urls": [m.kie_url for m in dog.media]},
             {"name": "far", "description": "elsewhere",
              "element_input_urls": ["https://example.invalid/a.png", "https://example.invalid/b.png"]}]
    other = ElementLibrary(tmp_path / "other")
    assert other.import_json(json.dumps(plain)).added == ["dog", "far"]
    fresh = other.ensure_fresh(["dog"], uploader)
    assert {m.upload_method for m in fresh[0].media} == {"url"}
    assert [m.kie_url for m in fresh[0].media] != [m.kie_url for m in dog.media]
    assert [requests.get(m.kie_url, timeout=10).content for m in fresh[0].media] == [data for _, data in files]
    with pytest.raises(ElementError, match="@far: failed: a.png: KIE error 400"):
        other.ensure_fresh(["far"], uploader)


@pytest.mark.parametrize(("url", "ok"), [
    ("https://cdn.example.com/dog.png", True),
    ("  https://cdn.example.com/dog.png  ", True),  # pasted with spaces around: trimmed
    ("https://cdn.exa mple.com/dog.png", False),
    ("https://:443/dog.png", False),
    ("ftp://cdn.example.com/dog.png", False),
    ("cdn.example.com/dog.png", False),
])
def test_web_addresses_are_checked_like_the_request_validator(url: str, ok: bool) -> None:
    media, problems = url_media(url)
    assert (media is not None, not problems) == (ok, ok)


@pytest.mark.parametrize(("text", "hour"), [("2026-03-01T10:00:00Z", 10), ("2026-03-01T10:00:00", 10),
                                             ("2026-03-01T12:00:00+02:00", 10), ("soon", None), ("", None)])
def test_stored_times_parse_to_utc_or_none(text: str, hour: int | None) -> None:
    value = parse_time(text)
    assert (value.hour if value else None) == hour


# ---------------------------------------------------------------- issue 16.6 / 16.14 / 15.7

@pytest.mark.parametrize(("ref", "advice"), [
    ("Fox", "@Fox is the element 'fox': write @fox exactly"),
    ("Fox_clip", "No element named 'Fox_clip'. Did you mean @fox_clips?"),
    ("zebra", "No element named 'zebra': create it on the Elements page or remove @zebra"),
])
def test_reference_advice_offers_the_same_name_or_the_nearest(ref: str, advice: str) -> None:
    from lib.elements.model import reference_advice

    assert reference_advice(ref, ["fox", "fox_clips", "owl"]).startswith(advice)


@pytest.mark.parametrize(("age_h", "alive", "reuploads"), [
    (2, False, 0),    # fresh: no check, no upload
    (30, True, 0),    # 24–72 h and still served: kept
    (30, False, 2),   # 24–72 h and gone: re-uploaded from the originals
])
def test_ensure_fresh_checks_uploads_older_than_a_day(lib: ElementLibrary, age_h: int, alive: bool,
                                                      reuploads: int) -> None:
    lib.upload(lib.create("dog", "a dog", pngs(2)).id, FakeUploader(), now=T)
    checked: list[str] = []

    def is_alive(url: str) -> bool:
        checked.append(url)
        return alive

    fake = FakeUploader(now=T + timedelta(hours=age_h))
    lib.ensure_fresh(["dog"], fake, now=T + timedelta(hours=age_h), is_alive=is_alive)
    assert len(fake.calls) == reuploads
    assert len(checked) == (0 if age_h < 24 else 2)


def test_ensure_fresh_reuploads_after_72_hours_without_asking(lib: ElementLibrary) -> None:
    from lib.elements.model import stale_uploads

    dog = lib.upload(lib.create("dog", "a dog", pngs(2)).id, FakeUploader(), now=T)
    never = lambda url: pytest.fail("no liveness request after 72 h: the upload is simply redone")  # noqa: E731
    assert stale_uploads(dog, T + timedelta(hours=73), never) == ["cat0.png", "cat1.png"]


def test_import_of_a_taken_name_offers_rename_or_replace(lib: ElementLibrary) -> None:
    old = lib.upload(lib.create("dog", "the first dog", pngs(2)).id, FakeUploader(), now=T)
    export = lib.export_json()
    first = lib.import_json(export)
    assert first.added == [] and first.clashes == ["dog"]
    renamed = lib.import_json(export, on_clash={"dog": "rename"}, only=["dog"])
    assert renamed.added == ["dog_copy"] and lib.by_name("dog").id == old.id
    replaced = lib.import_json(export.replace("the first dog", "a better dog"), on_clash={"DOG": "replace"},
                               only=["dog"])
    assert replaced.added == ["dog"] and replaced.replaced == [old.id]
    assert lib.get(old.id) is None and lib.by_name("dog").description == "a better dog"
    assert not (lib.files_dir / old.id).exists()
    skipped = lib.import_json(export, on_clash={"dog": "skip"}, only=["dog"])
    assert skipped.added == [] and skipped.clashes == []


def test_a_description_only_edit_never_reuploads(lib: ElementLibrary) -> None:
    from lib.elements.model import needs_upload

    dog = lib.upload(lib.create("dog", "a dog", pngs(2)).id, FakeUploader(), now=T)
    edited = lib.update(dog.id, name="dog", description="a brown dog", now=T + timedelta(hours=1))
    assert edited.media == dog.media and not any(needs_upload(m, T + timedelta(hours=1)) for m in edited.media)
    fake = FakeUploader()
    assert lib.upload(dog.id, fake, now=T + timedelta(hours=1)) == edited and fake.calls == []
