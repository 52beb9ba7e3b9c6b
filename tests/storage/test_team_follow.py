"""End to end on team storage: the server-side follower on PostgreSQL + bucket archives a sandbox task's video
into the bucket (the data folder holds only a deletable cache), and another server's storage plays it."""

from __future__ import annotations

from pathlib import Path

from lib.storage.open import build_storage, storage_choice
from lib.storage.s3 import S3Media, video_name
from lib.tasks import service
from lib.tasks.leases import LeaseClaimer
from lib.tasks.submit import submit_payload
from lib.tasks.worker import Follower

PAYLOAD = {"model": "kling-3.0/video", "input": {"prompt": "a paper boat", "duration": "5", "mode": "std",
                                                 "sound": False, "aspect_ratio": "16:9", "multi_shots": False}}


def _env(folder: Path, database_url: str, media_url: str) -> dict[str, str]:
    return {"KLING_STUDIO_DATA": str(folder), "KLING_STUDIO_DATABASE_URL": database_url,
            "KLING_STUDIO_MEDIA_URL": media_url}


def test_a_task_followed_on_server_a_plays_on_server_b(tmp_path: Path, database_url: str, s3_env, sandbox,
                                                       client) -> None:
    media_url = f"s3://{s3_env.new_bucket()}/team"
    storage_a = build_storage(storage_choice(None, _env(tmp_path / "a", database_url, media_url)))
    storage_b = build_storage(storage_choice(None, _env(tmp_path / "b", database_url, media_url)))
    engine = storage_a.ledger.engine  # type: ignore[attr-defined]
    follower = Follower(storage_a, lambda row: client, allow_private=True, claimer=LeaseClaimer(engine, "A"))
    row = submit_payload(client, storage_a.ledger, PAYLOAD, origin="sandbox", batch_id="b").row
    assert storage_b.ledger.get(row.task_id) is not None  # B's History has it before anything ran
    assert follower.run_once().finished == 1
    media_a = storage_a.media
    assert isinstance(media_a, S3Media) and video_name(row.task_id) in set(media_a.blobs.names())
    assert not (tmp_path / "a" / "videos").exists() and not (tmp_path / "b" / "videos").exists()
    assert storage_b.ledger.get(row.task_id).state == "succeeded"
    assert storage_b.media.video(row.task_id).read_bytes()[4:8] == b"ftyp"
    media_a.clear_cache()
    assert storage_a.media.video(row.task_id) is not None  # the cache was only a cache


def test_the_service_leases_only_in_team_mode(database_url: str, monkeypatch) -> None:
    monkeypatch.delenv("KLING_STUDIO_DATABASE_URL", raising=False)
    assert service._lease_claimer({}) is None
    assert isinstance(service._lease_claimer({"KLING_STUDIO_DATABASE_URL": database_url}), LeaseClaimer)
