"""Data is never a path: ids, names and file names from imports, uploads, forms and deep links never read, serve,
write or delete a file outside the data folder."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lib.compose.drafts import DraftStore
from lib.compose.form import upload_frame
from lib.elements.library import ElementLibrary
from lib.history.ledger import Ledger
from lib.history.transfer import import_csv
from lib.kie.uploads import upload_file
from lib.tasks.archive import archived_path
from lib.trust.paths import UnsafePath, existing_video, inside, safe_id, video_file
from tests.conftest import shown_text
from tests.security.conftest import APP, edited_csv, outside_listing, png_bytes, run

EVIL_NAMES = ["../../evil.png", "/etc/evil.png", "..\\..\\evil.png", "a\x00b.png", "x" * 5000 + ".png", "..", ".",
              "~/.bashrc", "CON", " ", "%2e%2e%2fevil.png"]
FILE_READS = ["/proc/self/environ", "/etc/passwd", "../../x", "../../../../etc/passwd", "videos/../../x.mp4"]


@pytest.mark.parametrize("task_id", ["../../etc/passwd", "/etc/passwd", "a/../../b", "a\x00b", "x" * 5000, "..", "."])
def test_a_task_id_always_names_a_file_inside_the_videos_folder(task_id: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    for path in (video_file(data, task_id), archived_path(data / "videos", task_id)):
        assert path.resolve().parent == (data / "videos").resolve() and len(path.name) < 130
    assert existing_video(data, task_id) is None
    assert safe_id(task_id) != safe_id(task_id + "_")  # altered ids stay distinct


@pytest.mark.parametrize("part", ["../x", "/etc/passwd", "a\x00b", "", "x/../../y"])
def test_inside_refuses_every_way_out(part: str, tmp_path: Path) -> None:
    with pytest.raises(UnsafePath):
        inside(tmp_path, part)


def test_history_import_drops_every_file_location(data: Path) -> None:
    rows = [run(task_id=f"read-{i}", minutes=i) for i in range(len(FILE_READS))]
    report = import_csv(edited_csv(rows, {f"read-{i}": {"local_video": p} for i, p in enumerate(FILE_READS)}))
    assert len(report.rows_ok) == len(FILE_READS) and {r.local_video for r in report.rows_ok} == {""}
    ledger = Ledger.in_dir(data, fsync=False)
    ledger.merge(report)
    assert {r.local_video for r in ledger.rows()} == {""} and all(r.imported_at for r in ledger.rows())


def test_a_file_location_already_in_the_ledger_is_never_served_or_deleted(data: Path, tmp_path: Path) -> None:
    """A row on disk that names a file outside (hand-edited ledger): no player, no download, no delete of it."""
    sentinel = tmp_path / "outside.mp4"
    sentinel.write_bytes(b"\x00\x00\x00\x18ftypmp42-not-yours")
    ledger = Ledger.in_dir(data, fsync=False)
    for i, path in enumerate([str(sentinel), "/etc/passwd", "/proc/self/environ"]):
        ledger.append(run(task_id=f"disk-{i}", local_video=path, minutes=i))
    at = AppTest.from_file(APP, default_timeout=60).run()
    for i in range(3):
        at.query_params["task"] = f"disk-{i}"
        at.switch_page("pages/3_History.py").run()
        assert not at.exception and at.get("video") == []
        assert not [b for b in at.get("download_button") if "video" in str(b.proto.label).lower()]
    at.query_params["task"] = "disk-0"
    at.switch_page("pages/3_History.py").run()
    at.button(key="history_delete").click().run()
    assert not [c for c in at.checkbox if c.key == "history_delete_video"]  # no file of its own to offer
    at.button(key="history_delete_yes").click().run()
    assert ledger.get("disk-0") is None and sentinel.read_bytes().endswith(b"not-yours")


def test_uploaded_file_names_stay_inside_the_library_folder(data: Path) -> None:
    before = outside_listing(data)
    library = ElementLibrary(data)
    files = [(name, io.BytesIO(png_bytes(320 + i))) for i, name in enumerate(EVIL_NAMES[:4])]
    element = library.create("traversal_cat", "a cat", files)
    for media in element.media:
        path = library.local_file(media)
        assert path is not None and path.parent == library.files_dir / element.id
        assert "/" not in media.file_name and "\x00" not in media.file_name and len(media.file_name) <= 80
    long = library.create("long_cat", "a cat", [(EVIL_NAMES[4], io.BytesIO(png_bytes(330))),
                                                (EVIL_NAMES[10], io.BytesIO(png_bytes(331)))])
    assert all(len(m.file_name) <= 80 for m in long.media)
    library.delete(element.id)
    assert outside_listing(data) == before


def test_a_library_record_naming_a_file_outside_is_never_read_or_deleted(data: Path, tmp_path: Path) -> None:
    sentinel = tmp_path / "secret.png"
    sentinel.write_bytes(png_bytes())
    library = ElementLibrary(data)
    element = library.create("cat_two", "a cat", urls=["https://example.com/a.png", "https://example.com/b.png"])
    record = json.loads(library.path.read_text())
    for media in record["elements"][0]["media"]:
        media["local_path"] = str(sentinel) if media is record["elements"][0]["media"][0] else "../../secret.png"
    library.path.write_text(json.dumps(record))
    fresh = ElementLibrary(data)
    assert [fresh.local_file(m) for m in fresh.get(element.id).media] == [None, None]
    fresh.update(element.id, remove_media=[m.file_name for m in fresh.get(element.id).media[:1]],
                 add_urls=["https://example.com/c.png"])
    fresh.delete(element.id)
    assert sentinel.exists()


@pytest.mark.parametrize("name", EVIL_NAMES[:6], ids=["dotdot", "absolute", "backslash", "nul", "5000", "parent"])
def test_draft_names_are_keys_in_one_file_never_paths(name: str, data: Path) -> None:
    before = outside_listing(data)
    store = DraftStore(data)
    saved = store.save(name, {"compose_prompt": "a harbour"})
    assert len(saved) <= 60 and store.load(saved)["compose_prompt"] == "a harbour"
    store.delete(saved)
    assert sorted(p.name for p in data.iterdir()) == ["drafts.json", "videos"]
    assert outside_listing(data) == before


@pytest.mark.parametrize("name", EVIL_NAMES[:5], ids=["dotdot", "absolute", "backslash", "nul", "5000"])
def test_a_frame_file_name_never_reaches_the_file_host_as_a_path(name: str, client, sandbox, data: Path) -> None:
    root = Path(sandbox.backend.files_root).parent
    before = outside_listing(data, root)
    frame = upload_frame(lambda source, **kw: upload_file(client, source, **kw), name, png_bytes())
    assert not frame.problems and frame.url and "/../" not in frame.url and "evil" not in frame.url
    uploads = [p for p in Path(sandbox.backend.files_root).rglob("*") if p.is_file()]
    assert uploads and all(p.resolve().is_relative_to(Path(sandbox.backend.files_root).resolve())
                           for p in uploads)
    assert outside_listing(data, root) == before


def test_the_deep_link_traversal_only_warns(data: Path) -> None:
    Ledger.in_dir(data, fsync=False).append(run())
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.query_params["task"] = "../../etc/passwd"
    at.switch_page("pages/3_History.py").run()
    assert not at.exception and at.get("video") == []
    assert "Task ../../etc/passwd is not in this history" in "\n".join(shown_text(w.value) for w in at.warning)
