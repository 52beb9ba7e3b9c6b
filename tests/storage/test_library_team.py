"""Two servers, one element library: records in PostgreSQL, originals in the bucket, a deletable cache on each."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from lib.elements.library import ElementLibrary
from lib.elements.model import ElementError
from lib.storage import sql
from lib.storage.open import CACHE_FOLDER, StorageChoice, build_storage
from lib.storage.s3_originals import S3Originals, original_name
from lib.storage.sql_library import SqlRecords
from tests.elements.test_library import FakeUploader, pngs

Make = Callable[[str], ElementLibrary]


@pytest.fixture
def servers(tmp_path: Path, database_url: str, s3_env) -> Iterator[Make]:
    """`servers("a")` is the library a server with data folder tmp_path/a sees; all share a database and bucket."""
    media = f"s3://{s3_env.new_bucket()}/team"

    def make(name: str) -> ElementLibrary:
        library = build_storage(StorageChoice(tmp_path / name, database_url, media)).library
        assert isinstance(library, ElementLibrary)
        return library

    yield make
    engine = sql._engines.pop(sql.engine_url(database_url), None)
    if engine is not None:
        engine.dispose()


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() and p.suffix != ".lock"}


def test_an_element_made_on_one_server_shows_on_the_other_with_its_thumbnail(servers: Make,
                                                                             tmp_path: Path) -> None:
    a, b = servers("a"), servers("b")
    files = pngs(2)
    dog = a.create("dog", "a dog", files)
    seen = b.get(dog.id)
    assert seen is not None and [e.name for e in b.list()] == ["dog"] and b.by_name("DOG") == seen
    thumbs = [b.local_file(m) for m in seen.media]
    assert [t.read_bytes() for t in thumbs] == [data for _, data in files]  # fetched from the bucket
    assert all(t.is_relative_to(tmp_path / "b" / CACHE_FOLDER) for t in thumbs)
    # nothing of the element in b's data folder but its cache, and nothing at all in a's outside the cache
    assert {f for f in _files(tmp_path / "b") if not f.startswith(CACHE_FOLDER + "/")} == set()
    assert {f for f in _files(tmp_path / "a") if not f.startswith(CACHE_FOLDER + "/")} == set()
    names = set(a.originals.blobs.names())
    assert names == {original_name(dog.id, "cat0.png"), original_name(dog.id, "cat1.png")}


def test_edits_uploads_and_deletes_on_one_server_reach_the_other(servers: Make) -> None:
    a, b = servers("a"), servers("b")
    dog = a.create("dog", "a dog", pngs(2))
    b.upload(dog.id, FakeUploader())
    assert all(m.kie_url for m in a.get(dog.id).media)
    a.update(dog.id, add_files=pngs(1), remove_media=["cat0.png"])
    names = [m.file_name for m in b.get(dog.id).media]
    assert names == ["cat1.png", "cat0_2.png"] and b.local_file(b.get(dog.id).media[1]) is not None
    assert original_name(dog.id, "cat0.png") not in set(a.originals.blobs.names())
    copy = b.duplicate(dog.id)
    assert all(a.local_file(m) is not None for m in a.get(copy.id).media)
    with pytest.raises(ElementError, match="already exists"):
        b.create("Dog", "again", pngs(2))
    a.delete(dog.id)
    assert b.get(dog.id) is None and [e.name for e in b.list()] == ["dog_copy"]
    assert {n.split("/")[1] for n in a.originals.blobs.names()} == {copy.id}


def test_the_cache_can_be_deleted_at_any_time(servers: Make) -> None:
    a = servers("a")
    files = pngs(2)
    dog = a.create("dog", "a dog", files)
    assert isinstance(a.originals, S3Originals)
    a.originals.clear_cache()
    fake = FakeUploader()
    a.upload(dog.id, fake)  # the originals come back from the bucket
    assert [c["source"] for c in fake.calls] == [data for _, data in files]


def test_two_servers_saving_at_once_lose_nothing(servers: Make) -> None:
    a, b = servers("a"), servers("b")
    errors: list[BaseException] = []

    def make_many(library: ElementLibrary, prefix: str) -> None:
        try:
            for n in range(4):
                library.create(f"{prefix}{n}", "a thing", urls=["https://x.test/a.png", "https://x.test/b.png"])
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=make_many, args=(lib, p)) for lib, p in ((a, "a"), (b, "b"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert [e.name for e in a.list()] == [f"a{n}" for n in range(4)] + [f"b{n}" for n in range(4)]


def test_the_version_changes_with_every_write_on_any_server(servers: Make) -> None:
    a, b = servers("a"), servers("b")
    before = a.version()
    b.create("dog", "a dog", urls=["https://x.test/a.png", "https://x.test/b.png"])
    assert a.version() != before and a.version() == b.version()


def test_names_are_unique_ignoring_case_in_the_database_itself(servers: Make) -> None:
    a = servers("a")
    assert isinstance(a.records, SqlRecords)
    dog = a.create("dog", "a dog", urls=["https://x.test/a.png", "https://x.test/b.png"])
    clone = a.records.load()[dog.id]
    from dataclasses import replace

    with pytest.raises(ElementError, match="another server"):
        a.records.write([replace(clone, id="other", name="DOG")], ())
    assert [e.id for e in a.list()] == [dog.id]


def test_a_record_naming_another_path_never_reaches_the_bucket_or_the_disk(servers: Make, tmp_path: Path) -> None:
    a = servers("a")
    dog = a.create("dog", "a dog", pngs(2))
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"secret")
    with a.records.engine.begin() as conn:  # someone edits the row by hand
        conn.execute(text("UPDATE kling_elements SET record = jsonb_set(jsonb_set(record, '{media,0,local_path}', "
                          ":outside), '{media,1,local_path}', :escape) WHERE id = :id"),
                     {"outside": f'"{secret}"', "escape": '"files/../../../secret.png"', "id": dog.id})
        conn.execute(text("UPDATE kling_counters SET value = value + 1 WHERE name = 'elements'"))
    b = servers("b")
    spoiled = b.get(dog.id)
    assert [b.local_file(m) for m in spoiled.media] == [None, None]
    b.delete(dog.id)
    assert secret.read_bytes() == b"secret"


def test_a_bundle_imported_on_one_server_brings_its_originals_to_every_server(servers: Make, tmp_path: Path) -> None:
    files = pngs(2)
    folder = ElementLibrary(tmp_path / "laptop")
    folder.create("cat", "a cat", files)
    a, b = servers("a"), servers("b")
    assert a.import_bundle(folder.export_bundle()).added == ["cat"]
    cat = b.by_name("cat")
    assert [b.local_file(m).read_bytes() for m in cat.media] == [data for _, data in files]
    assert {n.split("/")[1] for n in a.originals.blobs.names()} == {cat.id}
