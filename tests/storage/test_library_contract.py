"""The element library contract (tests/elements/test_library.py), unchanged, against the team store: records in
PostgreSQL, originals in the bucket with a local cache. The same functions run against library.json there."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lib.elements.library import ElementLibrary
from lib.storage import sql
from lib.storage.open import StorageChoice, build_storage
from lib.storage.s3_originals import S3Originals
from lib.storage.sql_library import SqlRecords
from tests.elements.test_bundle import (  # noqa: F401  (collected here, with this module's `lib`)
    test_a_bad_file_in_a_bundle_refuses_only_its_element,
    test_a_bundle_restores_a_deleted_element,
    test_a_member_missing_from_the_zip_is_named,
)
from tests.elements.test_library import (  # noqa: F401  (collected here, with this module's `lib`)
    test_check_name_as_you_type,
    test_create_refuses_with_a_message_naming_the_fix,
    test_create_video_and_url_elements,
    test_delete_removes_the_element_and_its_files,
    test_duplicate_copies_files_under_a_free_name,
    test_edits_made_during_an_upload_are_kept,
    test_ensure_fresh_checks_uploads_older_than_a_day,
    test_ensure_fresh_refuses_unknown_names_and_failed_uploads,
    test_ensure_fresh_reuploads_expired_and_expiring_elements,
    test_export_import_round_trip,
    test_import_accepts_a_create_task_payload,
    test_import_keeps_good_entries_and_names_the_bad_ones,
    test_import_of_a_taken_name_offers_rename_or_replace,
    test_import_of_garbage_leaves_the_library_unchanged,
    test_list_is_sorted_by_name,
    test_rename_allows_a_change_of_case_and_keeps_uploads,
    test_status_follows_the_three_day_expiry,
    test_to_spec_gives_the_kling_elements_entry,
    test_update_changes_fields_and_files,
    test_update_refuses_and_changes_nothing,
    test_upload_failure_keeps_a_draft_with_the_error_and_retry_fixes_it,
    test_upload_sends_every_original_and_records_urls,
    test_url_sourced_media_are_uploaded_by_url,
)


@pytest.fixture
def team_library(tmp_path: Path, database_url: str, s3_env) -> Iterator[Callable[[str], ElementLibrary]]:
    """A team library for a server with its own data folder; every server shares one database and bucket."""
    media = f"s3://{s3_env.new_bucket()}/team"

    def make(server: str) -> ElementLibrary:
        library = build_storage(StorageChoice(tmp_path / server, database_url, media)).library
        assert isinstance(library, ElementLibrary)
        return library

    yield make
    engine = sql._engines.pop(sql.engine_url(database_url), None)  # each test's database: close its pool
    if engine is not None:
        engine.dispose()


@pytest.fixture
def lib(team_library: Callable[[str], ElementLibrary]) -> ElementLibrary:
    library = team_library("server-a")
    assert isinstance(library.records, SqlRecords) and isinstance(library.originals, S3Originals)
    return library
