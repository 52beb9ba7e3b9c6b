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


def test_unreadable_parses_only_the_rows_written_since_it_last_looked(database_url: str, monkeypatch) -> None:
    from sqlalchemy import create_engine, text

    from lib.history.row import HistoryRow
    from lib.storage.sql import SqlLedger, migrate
    from tests.storage.test_ledger_contract import make_row

    engine = create_engine(database_url)
    migrate(engine)
    ledger = SqlLedger(engine)
    for i in range(30):
        ledger.append(make_row(f"t{i:02d}"))
    parsed: list[str] = []
    real = HistoryRow.from_csv_dict.__func__

    def counting(cls, record):
        parsed.append(record["task_id"])
        return real(cls, record)

    monkeypatch.setattr(HistoryRow, "from_csv_dict", classmethod(counting))
    assert ledger.unreadable() == [] and len(parsed) == 30  # the first look reads every row once
    parsed.clear()
    assert ledger.unreadable() == [] and parsed == []  # nothing written since: nothing parsed
    with engine.begin() as conn:  # a hand edit spoils one row
        conn.execute(text("UPDATE kling_ledger SET duration = 'forty' WHERE task_id = 't07'"))
    ledger.update("t03", rating=2)
    parsed.clear()  # (the update read its own row)
    problems = ledger.unreadable()
    assert sorted(parsed) == ["t03", "t07"]  # the two rows written since, and only those
    assert len(problems) == 1 and "duration" in problems[0][1]
    parsed.clear()
    assert ledger.unreadable() == problems and parsed == []  # the spoiled row stays reported without a new parse
    with engine.begin() as conn:  # repaired by hand, then another row deleted
        conn.execute(text("UPDATE kling_ledger SET duration = '5' WHERE task_id = 't07'"))
    ledger.delete(["t09"])
    parsed.clear()
    assert ledger.unreadable() == [] and parsed == ["t07"]


def test_warm_does_the_first_check_in_the_background(database_url: str, monkeypatch) -> None:
    from sqlalchemy import create_engine

    from lib.history.row import HistoryRow
    from lib.storage.sql import SqlLedger, migrate
    from tests.storage.test_ledger_contract import make_row

    engine = create_engine(database_url)
    migrate(engine)
    ledger = SqlLedger(engine)
    for i in range(5):
        ledger.append(make_row(f"w{i}"))
    ledger.warm().join(timeout=30)
    parsed: list[str] = []
    real = HistoryRow.from_csv_dict.__func__
    monkeypatch.setattr(HistoryRow, "from_csv_dict",
                        classmethod(lambda cls, record: parsed.append(record["task_id"]) or real(cls, record)))
    assert ledger.unreadable() == [] and parsed == []  # History's first look finds every row checked
