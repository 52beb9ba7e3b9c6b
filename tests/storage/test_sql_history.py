"""History's SQL queries: migration 4 on a database that already holds runs, a migration merged late, and plans
that use the indexes (a page is a LIMIT on an index, a search a trigram lookup), never a walk of every row."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, create_engine, text

from lib.history.query import history_overview, query_page
from lib.history.row import HistoryRow
from lib.history.view import HistoryFilter
from lib.storage import sql
from lib.storage.sql import SqlLedger, migrate

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _apply(engine: Engine, versions: set[int]) -> None:
    """What an older server left behind: only these migrations applied."""
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS kling_schema (version integer NOT NULL)"))
        for version, body in sorted(sql.MIGRATIONS):
            if version in versions:
                conn.exec_driver_sql(body)
                conn.execute(text("INSERT INTO kling_schema VALUES (:v)"), {"v": version})


def _row(i: int, **fields: object) -> HistoryRow:
    base: dict[str, object] = {"task_id": f"t{i:04d}", "origin": "sandbox", "created_at": T0 + timedelta(minutes=i),
                               "prompt": f"take {i} of a red fox", "rating": i % 6, "state": "succeeded"}
    return HistoryRow(**(base | fields))  # type: ignore[arg-type]


def test_migration_4_types_the_runs_an_older_server_stored(database_url: str) -> None:
    engine = create_engine(database_url)
    _apply(engine, {1, 2, 3})
    old = SqlLedger(engine)
    for i in range(12):
        old.append(_row(i, notes="KEEPER" if i == 7 else ""))
    assert migrate(engine) == 4
    ledger = SqlLedger(engine)
    best = query_page(ledger, HistoryFilter(min_rating=5), "Rating", True)
    assert [r.task_id for r in best.rows] == ["t0011", "t0005"] and best.total == 2
    assert [r.task_id for r in query_page(ledger, HistoryFilter(text="keeper")).rows] == ["t0007"]
    assert history_overview(ledger).total == 12


def test_a_migration_merged_after_a_later_one_still_runs(database_url: str) -> None:
    engine = create_engine(database_url)
    _apply(engine, {1, 2, 4})  # a server that had 4 before 3 was merged
    assert migrate(engine) == sql.SCHEMA_VERSION
    with engine.connect() as conn:
        assert sorted(conn.execute(text("SELECT version FROM kling_schema")).scalars()) == [1, 2, 3, 4]
        assert conn.execute(text("SELECT to_regclass('kling_elements')")).scalar() == "kling_elements"


@pytest.fixture
def filled(database_url: str) -> SqlLedger:
    ledger = SqlLedger(sql.shared_engine(database_url))
    with ledger.engine.begin() as conn:
        conn.execute(ledger._insert, [sql._record(_row(i)) for i in range(3000)])
        conn.execute(text("ANALYZE kling_ledger"))
    return ledger


def _plan(ledger: SqlLedger, flt: HistoryFilter, by: str, descending: bool, *off: str) -> str:
    clause, params = sql.q.where(flt, "")
    query = f"EXPLAIN SELECT * FROM kling_ledger{clause}{sql.q.order_by(by, descending)} LIMIT 50"
    with ledger.engine.connect() as conn:
        for setting in ("enable_seqscan", *off):  # which index would serve it, at any table size
            conn.execute(text(f"SET {setting} = off"))
        return "\n".join(conn.execute(text(query), params).scalars())


@pytest.mark.parametrize(("flt", "by", "descending"), [
    (HistoryFilter(), "Created", True), (HistoryFilter(), "Created", False), (HistoryFilter(), "Rating", True),
    (HistoryFilter(), "Rating", False), (HistoryFilter(), "Cost (credits)", True),
    (HistoryFilter(), "Generation time", False), (HistoryFilter(states=("succeeded",)), "Duration (s)", True),
    (HistoryFilter(), "State", True), (HistoryFilter(), "Mode", True),
])
def test_a_page_is_a_limit_on_an_index_not_a_sort_of_every_row(filled: SqlLedger, flt: HistoryFilter, by: str,
                                                                descending: bool) -> None:
    plan = _plan(filled, flt, by, descending)
    assert "Index Scan" in plan and "Seq Scan" not in plan, plan
    assert not re.search(r"^\s*(->\s+)?Sort\s+\(", plan, re.M), plan  # no sort of every row (incremental is fine)


def test_a_search_uses_the_trigram_index(filled: SqlLedger) -> None:
    # on 3,000 short rows the planner may prefer walking the time index; the trigram index must be usable
    plan = _plan(filled, HistoryFilter(text="2345"), "Created", True, "enable_indexscan")
    assert "kling_ledger_q_search" in plan, plan


def test_a_page_reads_only_its_rows(filled: SqlLedger, monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[int] = []
    real = HistoryRow.from_csv_dict.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(HistoryRow, "from_csv_dict", classmethod(lambda cls, d: parsed.append(1) or real(cls, d)))
    page = query_page(filled, HistoryFilter(text="red fox"), "Rating", False, 100, 50, account="")
    assert page.total == 3000 and len(page.rows) == 50 and len(parsed) == 50
    assert all(r.rating == 0 for r in page.rows)
