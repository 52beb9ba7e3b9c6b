"""The CSV ledger's query index: an unchanged view on an unchanged ledger walks no rows; after a write only the
changed rows get a new search text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lib.history import query as q
from lib.history.ledger import Ledger
from lib.history.row import HistoryRow
from lib.history.transfer import ImportReport
from lib.history.view import HistoryFilter

T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    led = Ledger(tmp_path / "history.csv", fsync=False)
    led.merge(ImportReport(rows_ok=[HistoryRow(task_id=f"t{i:03d}", origin="sandbox", prompt=f"take {i} fox",
                                               created_at=T0 + timedelta(minutes=i), rating=i % 6)
                                    for i in range(300)]))
    return led


def test_a_repeated_view_walks_no_rows(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    walked: list[str] = []
    real = q.search_text
    monkeypatch.setattr(q, "search_text", lambda row: walked.append(row.task_id) or real(row))
    flt = HistoryFilter(text="fox take", min_rating=2)
    first = q.query_page(ledger, flt, "Rating", True, 0, 50)
    assert len(walked) == 300 and first.total == 200
    monkeypatch.setattr(q.hv, "matches", lambda *a: pytest.fail("a cached view walked the rows"))
    for offset in (0, 50, 100):
        assert q.query_page(ledger, flt, "Rating", True, offset, 50).total == 200
    assert len(walked) == 300


def test_after_a_write_only_the_changed_row_gets_a_new_search_text(ledger: Ledger,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    q.query_page(ledger, HistoryFilter(text="fox"))
    walked: list[str] = []
    real = q.search_text
    monkeypatch.setattr(q, "search_text", lambda row: walked.append(row.task_id) or real(row))
    ledger.update("t007", notes="the heron take")
    assert [r.task_id for r in q.query_page(ledger, HistoryFilter(text="heron")).rows] == ["t007"]
    assert walked == ["t007"]
