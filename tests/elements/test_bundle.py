"""Portable bundles: a zip of library.json and the originals that imports elsewhere; hostile zips change nothing."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pytest

from lib.elements import bundle as bundle_mod
from lib.elements.library import ElementLibrary
from lib.elements.model import ElementError
from tests.elements.test_library import FakeUploader, image_bytes, pngs, video_bytes

T = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def lib(tmp_path: Path) -> ElementLibrary:
    return ElementLibrary(tmp_path / "here")


def _zip(members: dict[str, bytes], compress: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=compress) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


def _index(*elements: dict) -> bytes:
    return json.dumps({"format": bundle_mod.FORMAT, "version": 1, "elements": list(elements)}).encode()


def _entry(name: str, files: list[str], kind: str = "image") -> dict:
    media = [{"file_name": f.rsplit("/", 1)[-1], "kind": kind, "bundle_file": f} for f in files]
    return {"name": name, "description": f"a {name}", "element_input_urls": [], "kling_studio": {"media": media}}


def _snapshot(lib: ElementLibrary) -> tuple[bytes | None, list[str]]:
    files = sorted(str(p.relative_to(lib.root)) for p in lib.root.rglob("*") if p.is_file() and p.suffix != ".lock")
    return (lib.path.read_bytes() if lib.path.exists() else None), files


def test_a_bundle_imports_elsewhere_with_originals_and_working_reuploads(tmp_path: Path) -> None:
    source = ElementLibrary(tmp_path / "there")
    cat = source.create("cat", "a cat", pngs(2), now=T)
    source.upload(cat.id, FakeUploader(), now=T)
    source.create("clip", "a clip", [("clip.mp4", video_bytes())], now=T)
    data = source.export_bundle()

    target = ElementLibrary(tmp_path / "elsewhere")
    result = target.import_bundle(data, now=T)
    assert sorted(result.added) == ["cat", "clip"] and result.bad == []
    imported = target.by_name("cat")
    for media, original in zip(imported.media, pngs(2), strict=True):
        path = target.local_file(media)
        assert path is not None and path.read_bytes() == original[1]  # the original itself, inside this library
        assert path.is_relative_to(target.files_dir / imported.id)
    assert target.status(imported, T).label == "not uploaded"  # another machine's upload is not claimed
    uploader = FakeUploader()
    uploaded = target.upload(imported.id, uploader, now=T)
    assert target.status(uploaded, T).label == "uploaded"
    assert [c["source"] for c in uploader.calls] == [b for _, b in pngs(2)]  # re-uploaded from the local copies
    assert target.local_file(target.by_name("clip").media[0]).read_bytes() == video_bytes()


def test_a_bundle_restores_a_deleted_element(lib: ElementLibrary) -> None:
    cat = lib.create("cat", "a cat", pngs(3), now=T)
    data = lib.export_bundle()
    lib.delete(cat.id)
    assert lib.import_bundle(data, now=T).added == ["cat"]
    assert all(lib.local_file(m) is not None for m in lib.by_name("cat").media)


def test_a_bundle_offers_rename_or_replace_for_a_taken_name(lib: ElementLibrary) -> None:
    old = lib.create("cat", "a cat", pngs(2), now=T)
    data = lib.export_bundle()
    first = lib.import_bundle(data, now=T)
    assert first.clashes == ["cat"] and first.added == []
    renamed = lib.import_bundle(data, now=T, on_clash={"cat": "rename"}, only=["cat"])
    assert renamed.added == ["cat_copy"]
    assert all(lib.local_file(m) is not None for m in lib.by_name("cat_copy").media)
    replaced = lib.import_bundle(data, now=T, on_clash={"cat": "replace"}, only=["cat"])
    assert replaced.replaced == [old.id] and not (lib.files_dir / old.id).exists()
    assert lib.by_name("cat").id != old.id and all(lib.local_file(m) for m in lib.by_name("cat").media)


def test_the_json_export_says_it_holds_no_media(lib: ElementLibrary) -> None:
    lib.create("cat", "a cat", pngs(2), now=T)
    meta = json.loads(lib.export_json())[0]["kling_studio"]
    assert "not embedded" in meta["originals"] and "bundle_file" not in json.dumps(meta)


def test_a_bad_file_in_a_bundle_refuses_only_its_element(lib: ElementLibrary) -> None:
    good, small = image_bytes(), image_bytes((120, 120))
    data = _zip({"library.json": _index(_entry("cat", ["files/a/1.png", "files/a/2.png"]),
                                        _entry("tiny", ["files/b/1.png", "files/b/2.png"])),
                 "files/a/1.png": good, "files/a/2.png": good, "files/b/1.png": small, "files/b/2.png": good})
    result = lib.import_bundle(data, now=T)
    assert result.added == ["cat"]
    assert result.bad[0][0] == "tiny" and "300×300" in result.bad[0][1]  # the upload check, by file name


HOSTILE_NAMES = ["../../etc/passwd", "/etc/passwd", "files/../../x.png", "files/a/../../x.png", "files/a/.hidden",
                 "files/a\\..\\x.png", "files/a/b/c.png", "C:/x.png", 42, None]


@pytest.mark.parametrize("member", HOSTILE_NAMES)
def test_member_names_are_never_paths(lib: ElementLibrary, tmp_path: Path, member: object) -> None:
    members = {"library.json": _index(_entry("cat", ["files/a/1.png", "files/a/2.png"]))}
    index = json.loads(members["library.json"])
    index["elements"][0]["kling_studio"]["media"][1]["bundle_file"] = member
    data = _zip({"library.json": json.dumps(index).encode(), "files/a/1.png": image_bytes(),
                 **({member: image_bytes()} if isinstance(member, str) else {})})
    result = lib.import_bundle(data, now=T)
    assert result.added == [] and "cat" == result.bad[0][0]
    assert not (tmp_path / "etc").exists() and not (tmp_path / "x.png").exists()
    assert _snapshot(lib) == (None, [])


def test_a_member_missing_from_the_zip_is_named(lib: ElementLibrary) -> None:
    data = _zip({"library.json": _index(_entry("cat", ["files/a/1.png", "files/a/2.png"])),
                 "files/a/1.png": image_bytes()})
    result = lib.import_bundle(data, now=T)
    assert "not in the bundle" in result.bad[0][1]


def _bomb() -> bytes:
    return _zip({"library.json": _index(_entry("cat", ["files/a/1.png", "files/a/2.png"])),
                 "files/a/1.png": b"\0" * (20 * 2**20)})


def _too_many() -> bytes:
    return _zip({"library.json": _index(), **{f"files/a/{i}.png": b"x" for i in range(2_100)}})


def _twice() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf, pytest.warns(UserWarning):
        zf.writestr("library.json", _index())
        zf.writestr("library.json", _index())
    return out.getvalue()


def _big_member() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("library.json", _index())
        info = zipfile.ZipInfo("files/a/1.png")
        zf.writestr(info, b"x")
    data = bytearray(out.getvalue())
    # claim 60 MB in the central directory (what a hostile zip does); the check reads the directory only
    cd = data.rfind(b"PK\x01\x02")
    data[cd + 24:cd + 28] = (60 * 2**20).to_bytes(4, "little")
    return bytes(data)


@pytest.mark.parametrize(("make", "expected"), [
    (lambda: b"PK\x03\x04 not really a zip", "not a readable zip"),
    (lambda: _zip({"notes.txt": b"hi"}), "no library.json"),
    (lambda: _zip({"library.json": b"[1, 2]"}), "not a Kling Studio element bundle"),
    (lambda: _zip({"library.json": b"[" * 100 + b"]" * 100}), "nested more than"),
    (lambda: _zip({"library.json": b"{not json"}), "unreadable"),
    (_bomb, "zip bomb"),
    (_too_many, "at most 2,001"),
    (_twice, "twice"),
    (_big_member, "the limit is 50 MB"),
])
def test_a_hostile_zip_is_refused_before_unpacking_and_changes_nothing(lib, make, expected: str) -> None:
    lib.create("dog", "a dog", pngs(2), now=T)
    before = _snapshot(lib)
    with pytest.raises(ElementError) as info:
        lib.import_bundle(make(), now=T)
    assert expected in " ".join(info.value.problems)
    assert _snapshot(lib) == before


def test_a_bundle_over_the_size_limit_is_refused_unread(lib, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bundle_mod, "MAX_BUNDLE_BYTES", 1000)
    with pytest.raises(ElementError, match="the limit is"):
        lib.import_bundle(b"PK\x03\x04" + b"\0" * 2000)


def test_a_member_that_lies_about_its_size_is_refused(lib: ElementLibrary) -> None:
    data = bytearray(_zip({"library.json": _index(_entry("cat", ["files/a/1.png", "files/a/2.png"])),
                           "files/a/1.png": image_bytes(), "files/a/2.png": image_bytes()}, zipfile.ZIP_STORED))
    cd = data.rfind(b"PK\x01\x02")  # the last file's directory record: shrink its declared sizes
    for offset in (20, 24):
        data[cd + offset:cd + offset + 4] = (100).to_bytes(4, "little")
    result = lib.import_bundle(bytes(data), now=T)
    assert result.added == [] and result.bad
