"""open_storage picks files or team mode from two settings; the copy command moves a folder in and out, idempotently."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from lib.compose.drafts import DraftStore
from lib.elements.library import ElementLibrary
from lib.elements.model import Element, ElementMedia
from lib.history.ledger import Ledger
from lib.storage import copy as copy_command
from lib.storage.files import FileMedia, shared_file_storage
from lib.storage.open import build_storage, open_storage, storage_choice
from lib.storage.s3 import S3Media
from lib.storage.sql import SqlDrafts, SqlLedger

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "data_v1"


def _tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix != ".lock"}


def test_without_the_settings_it_is_exactly_todays_folder(tmp_path: Path) -> None:
    env = {"KLING_STUDIO_DATA": str(tmp_path)}
    assert not storage_choice(None, env).team
    assert open_storage(None, env) is shared_file_storage(tmp_path)


def test_a_database_url_puts_history_and_drafts_in_postgresql(tmp_path: Path, database_url: str) -> None:
    env = {"KLING_STUDIO_DATA": str(tmp_path), "KLING_STUDIO_DATABASE_URL": database_url}
    storage = open_storage(None, env)
    assert isinstance(storage.ledger, SqlLedger) and isinstance(storage.drafts, SqlDrafts)
    assert isinstance(storage.media, FileMedia)
    assert open_storage(None, env) is storage  # one per process, shared by the follower and every session


def test_settings_may_come_from_secrets(tmp_path: Path, database_url: str, s3_env) -> None:
    bucket = s3_env.new_bucket()
    secrets = {"KLING_STUDIO_DATA": str(tmp_path), "KLING_STUDIO_DATABASE_URL": database_url,
               "KLING_STUDIO_MEDIA_URL": f"s3://{bucket}/k"}
    choice = storage_choice(secrets, {})
    assert choice.team and choice.media_url == f"s3://{bucket}/k" and choice.data_dir == tmp_path
    storage = build_storage(choice)
    assert isinstance(storage.media, S3Media) and storage.media.cache_dir.is_relative_to(tmp_path)


def _portable(library: ElementLibrary) -> list[Element]:
    """The library's elements with each local path relative to its files folder."""
    def rel(media: ElementMedia) -> ElementMedia:
        return replace(media, local_path=str(Path(media.local_path).relative_to(library.files_dir)))
    return [replace(e, media=tuple(rel(m) if m.local_path else m for m in e.media)) for e in library.list()]


def _run(*argv: str) -> list[str]:
    assert copy_command.main(list(argv)) == 0
    return []


def test_copy_a_folder_in_and_back_out_idempotently(tmp_path: Path, database_url: str, s3_env,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "old"
    shutil.copytree(FIXTURE, source)
    before = _tree_digest(source)
    media = f"s3://{s3_env.new_bucket()}/team"
    _run("--from", str(source), "--to", database_url, "--media", media)
    out = capsys.readouterr().out
    assert "history rows: 3 added, 0 already there" in out and "videos: 2 added" in out and "drafts: 1 added" in out
    assert "elements: 1 added, 0 already there" in out and "element originals: 2 added, 0 already there" in out
    _run("--from", str(source), "--to", database_url, "--media", media)
    assert "history rows: 0 added, 3 already there" in (out := capsys.readouterr().out)
    assert "videos: 0 added, 2 already there" in out and "drafts: 0 added, 1 already there" in out
    assert "elements: 0 added, 1 already there" in out and "element originals: 0 added, 2 already there" in out
    assert _tree_digest(source) == before  # the source is never changed

    team = build_storage(storage_choice(None, {"KLING_STUDIO_DATA": str(tmp_path / "cache"),
                                               "KLING_STUDIO_DATABASE_URL": database_url,
                                               "KLING_STUDIO_MEDIA_URL": media}))
    old_rows = Ledger.in_dir(source).rows()
    assert team.ledger.rows() == old_rows
    assert set(team.drafts.names()) == set(DraftStore(source).names())
    (old_fox,), (team_fox,) = ElementLibrary(source).list(), team.library.list()
    assert [m.file_name for m in team_fox.media] == [m.file_name for m in old_fox.media]
    assert (team_fox.id, team_fox.media[0].kie_url) == (old_fox.id, old_fox.media[0].kie_url)  # every field kept
    assert [team.library.local_file(m).read_bytes() for m in team_fox.media] == \
        [ElementLibrary(source).local_file(m).read_bytes() for m in old_fox.media]  # from the bucket

    back = tmp_path / "back"
    _run("--from", database_url, "--media", media, "--to", str(back))
    assert "history rows: 3 added" in capsys.readouterr().out
    _run("--from", database_url, "--media", media, "--to", str(back))
    assert "history rows: 0 added, 3 already there" in (out := capsys.readouterr().out)
    assert "elements: 0 added, 1 already there" in out and "element originals: 0 added, 2 already there" in out
    assert Ledger.in_dir(back).rows() == old_rows
    assert DraftStore(back).load(DraftStore(source).names()[0]) == DraftStore(source).load(DraftStore(source).names()[0])
    assert _portable(ElementLibrary(back)) == _portable(ElementLibrary(source))  # every field, same relative paths
    assert _tree_digest(back / "elements" / "files") == _tree_digest(source / "elements" / "files")
    for row in old_rows:
        old_video = FileMedia(source).video(row.task_id)
        new_video = FileMedia(back).video(row.task_id)
        assert (old_video is None) == (new_video is None)
        if old_video is not None:
            assert new_video.read_bytes() == old_video.read_bytes()


def test_without_a_bucket_the_library_records_move_and_the_files_stay(tmp_path: Path, database_url: str,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "old"
    shutil.copytree(FIXTURE, source)
    _run("--from", str(source), "--to", database_url)
    out = capsys.readouterr().out
    assert "elements: 1 added" in out and "element originals: 0 added, 0 already there" in out
    assert "videos: 0 added, 0 already there" in out and "stay in the data folder" in out
    # a server using this database with the same data folder finds the originals where they always were
    team = build_storage(storage_choice(None, {"KLING_STUDIO_DATA": str(source),
                                               "KLING_STUDIO_DATABASE_URL": database_url}))
    (fox,) = team.library.list()
    assert all(team.library.local_file(m) is not None for m in fox.media)


def test_copy_refuses_two_folders_or_two_urls(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="one data folder and one database URL"):
        copy_command.main(["--from", str(tmp_path), "--to", str(tmp_path / "x")])


def test_the_command_runs_as_a_module() -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "lib.storage.copy", "--help"], capture_output=True, text=True,
                          timeout=60, cwd=Path(__file__).resolve().parents[2], check=False)
    assert done.returncode == 0 and "--from" in done.stdout and "--media" in done.stdout
