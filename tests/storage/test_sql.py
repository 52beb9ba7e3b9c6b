"""PostgreSQL specifics: the schema made under an advisory lock, its indexes, upserts, and drafts."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_engine, text

from lib.compose.form import default_form
from lib.history.row import HistoryRow
from lib.storage.sql import SCHEMA_VERSION, SqlDrafts, SqlLedger, engine_url, migrate, redacted, shared_engine


def test_servers_starting_together_create_the_schema_once(database_url: str) -> None:
    engines = [create_engine(database_url) for _ in range(4)]
    versions, errors = [], []

    def start(engine: object) -> None:
        try:
            versions.append(migrate(engine))  # type: ignore[arg-type]
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(e,)) for e in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and versions == [SCHEMA_VERSION] * 4
    with engines[0].connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM kling_schema")).scalar() == SCHEMA_VERSION
    assert migrate(engines[0]) == SCHEMA_VERSION  # again: nothing to do


def test_history_columns_used_to_sort_and_filter_are_indexed(database_url: str) -> None:
    engine = shared_engine(database_url)
    with engine.connect() as conn:
        indexes = conn.execute(text("SELECT indexdef FROM pg_indexes WHERE tablename = 'kling_ledger'")).scalars()
        joined = "\n".join(indexes)
    for column in ("(created_ts)", "(state)", "(task_id)"):
        assert column in joined


def test_a_row_is_one_record_keyed_by_task_id(database_url: str) -> None:
    ledger = SqlLedger(shared_engine(database_url))
    row = HistoryRow(task_id="t1", origin="sandbox", prompt="fox")
    ledger.append(row)
    ledger.update("t1", state="running")
    ledger.update("t1", state="succeeded")
    with ledger.engine.connect() as conn:
        found = conn.execute(text("SELECT task_id, state, created_ts FROM kling_ledger")).all()
    assert [(t, s) for t, s, _ in found] == [("t1", "succeeded")] and found[0][2] == row.created_at


def test_urls_are_given_the_psycopg3_driver_and_logged_without_password() -> None:
    assert engine_url("postgresql://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert engine_url("postgres://h/db") == "postgresql+psycopg://h/db"
    assert "secret" not in redacted("postgresql://u:secret@h/db")


@pytest.fixture
def drafts(database_url: str) -> SqlDrafts:
    return SqlDrafts(shared_engine(database_url))


def test_drafts_save_load_list_delete(drafts: SqlDrafts) -> None:
    form = default_form() | {"compose_prompt": "a boat", "compose_shots": [{"prompt": "x", "duration": 3}]}
    assert drafts.names() == []
    assert drafts.save("  beach   run v2 ", form) == "beach run v2"
    drafts.save("other", form)
    assert set(drafts.names()) == {"beach run v2", "other"}
    assert drafts.load("beach run v2") == form
    drafts.delete("other")
    drafts.delete("other")  # already gone: no error
    assert drafts.names() == ["beach run v2"]
    with pytest.raises(KeyError):
        drafts.load("other")
    with pytest.raises(ValueError):
        drafts.save("   ", form)


def test_a_draft_keeps_only_form_fields(drafts: SqlDrafts) -> None:
    drafts.save("d", {**default_form(), "api_key": "sk-secret"})
    assert "api_key" not in drafts.load("d") and "sk-secret" not in str(drafts.all())
