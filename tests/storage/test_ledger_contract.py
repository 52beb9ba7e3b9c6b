"""The LedgerStore contract: the same tests, unchanged, against the CSV ledger and the PostgreSQL one."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lib.history.errors import DuplicateTaskError, UnknownTaskError
from lib.history.ledger import Ledger
from lib.history.row import HistoryRow
from lib.history.transfer import ImportReport, as_imported, export_csv, import_csv
from lib.kie.models import TaskState
from lib.storage.base import LedgerStore
from lib.tasks.follow import is_followable

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
NASTY = "=1+1 ünïcødé 🎬 漢字 line1\nline2 a,b,c say \"hi\" \r\n 'quoted"


def make_row(task_id: str = "t1", **fields: object) -> HistoryRow:
    base: dict[str, object] = {"task_id": task_id, "origin": "sandbox", "created_at": T0, "prompt": "A fox"}
    base.update(fields)
    return HistoryRow(**base)  # type: ignore[arg-type]


def full_row(task_id: str = "full", text: str = NASTY) -> HistoryRow:
    return make_row(
        task_id, batch_id="b-1", updated_at=T0 + timedelta(seconds=5), origin="live", state="succeeded",
        prompt=text, shots_json=json.dumps([{"prompt": text, "duration": 3}]), duration=3, mode="pro",
        sound=True, multi_shots=True, elements=("cat", "dog"), aspect_ratio="9:16", estimated_credits=81,
        credits_consumed=80.5, result_url="https://tempfile.aiquickdraw.com/r.mp4", local_video="videos/full.mp4",
        fail_msg=text, payload_json=json.dumps({"model": "kling-3.0/video", "input": {"prompt": text}}),
        rating=4, notes=text, last_checked_at=T0 + timedelta(minutes=1), stale=True, account="acct-1",
        callback_key="abc123",
    )


@dataclass
class Subject:
    """One implementation under test: a store, a second view of the same data, and a way to spoil a row."""

    store: LedgerStore
    reopen: Callable[[], LedgerStore]       # another server's / process's view of the same data
    spoil: Callable[[str], None]            # make the stored row of a task id unreadable (a hand edit)


def _csv_subject(tmp_path: Path) -> Subject:
    path = tmp_path / "history.csv"

    def spoil(task_id: str) -> None:
        text = path.read_bytes().decode("utf-8")
        lines = text.split("\r\n")
        header = lines[0].split(",")
        at = header.index("duration")
        for i, line in enumerate(lines):
            cells = line.split(",")
            if len(cells) > at and cells[1] == task_id:
                cells[at] = "forty"
                lines[i] = ",".join(cells)
        path.write_bytes("\r\n".join(lines).encode("utf-8"))

    return Subject(Ledger(path, fsync=False), lambda: Ledger(path, fsync=False), spoil)


def _sql_subject(database_url: str) -> Subject:
    from sqlalchemy import create_engine, text

    from lib.storage.sql import SqlLedger, migrate

    engine = create_engine(database_url)
    migrate(engine)

    def spoil(task_id: str) -> None:
        with engine.begin() as conn:
            conn.execute(text("UPDATE kling_ledger SET duration = 'forty' WHERE task_id = :t"), {"t": task_id})

    return Subject(SqlLedger(engine), lambda: SqlLedger(create_engine(database_url)), spoil)


@pytest.fixture(params=["csv", "sql"])
def subject(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Subject]:
    if request.param == "csv":
        yield _csv_subject(tmp_path)
    else:
        yield _sql_subject(request.getfixturevalue("database_url"))


def test_an_empty_ledger(subject: Subject) -> None:
    store = subject.store
    assert store.rows() == [] and store.unfinished() == [] and store.unreadable() == []
    assert store.get("t1") is None and store.delete(["t1"]) == 0


def test_append_get_update_delete(subject: Subject) -> None:
    store = subject.store
    store.append(make_row("t1"))
    store.append(make_row("t2", state="running"))
    store.append(make_row("t3", state="unknown"))
    assert [r.task_id for r in store.rows()] == ["t1", "t2", "t3"]
    new = store.update("t2", state="succeeded", result_url="https://x/y.mp4", rating=5)
    assert new.state == "succeeded" and new.updated_at > T0
    other = subject.reopen()
    assert other.get("t2") == new
    assert [r.task_id for r in other.unfinished()] == ["t1", "t3"]
    assert store.delete(["t1", "nope"]) == 1
    assert [r.task_id for r in subject.reopen().rows()] == ["t2", "t3"]


def test_every_field_round_trips_exactly(subject: Subject) -> None:
    row = full_row()
    subject.store.append(row)
    assert subject.reopen().get("full") == row and subject.reopen().rows() == [row]


@pytest.mark.parametrize("state", list(TaskState))
def test_a_task_state_is_stored_by_value(subject: Subject, state: TaskState) -> None:
    subject.store.append(make_row("e", state=state))
    assert subject.reopen().get("e").state == state.value


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda s: s.append(make_row("t1", prompt="again")), DuplicateTaskError),
        (lambda s: s.update("missing", state="failed"), UnknownTaskError),
        (lambda s: s.update("t1", colour="red"), ValueError),
        (lambda s: s.update("t1", task_id="t2"), ValueError),
        (lambda s: s.update("t1", rating=9), ValueError),
        (lambda s: s.update("t1", state="exploded"), ValueError),
    ],
)
def test_bad_writes_raise_and_change_nothing(subject: Subject, call: object, error: type[Exception]) -> None:
    subject.store.append(make_row("t1"))
    version = subject.store.version()
    with pytest.raises(error):
        call(subject.store)  # type: ignore[operator]
    assert subject.reopen().rows() == [make_row("t1")] and subject.store.version() == version


def test_version_changes_with_every_write_and_never_with_a_read(subject: Subject) -> None:
    store = subject.store
    seen = {store.version()}
    for write in (lambda: store.append(make_row("a")), lambda: store.update("a", rating=2),
                  lambda: store.merge(ImportReport(rows_ok=[make_row("b")])), lambda: store.delete(["a"])):
        write()
        version = store.version()
        store.rows(), store.get("b"), store.unfinished()
        assert version not in seen and store.version() == version == subject.reopen().version()
        seen.add(version)


def test_unfinished_is_queued_running_and_unknown_oldest_first(subject: Subject) -> None:
    for i, state in enumerate(["succeeded", "running", "failed", "queued", "unknown"]):
        subject.store.append(make_row(f"t{i}", state=state, created_at=T0 + timedelta(seconds=i)))
    assert [r.task_id for r in subject.store.unfinished()] == ["t1", "t3", "t4"]


def test_merge_adds_new_rows_and_never_changes_existing(subject: Subject) -> None:
    store = subject.store
    store.append(make_row("keep", rating=5, notes="mine"))
    report = import_csv(export_csv([make_row("keep", rating=1, notes="theirs"), make_row("new1"), make_row("new2")]))
    result = store.merge(report)
    assert result.added == ("new1", "new2") and result.skipped == ("keep",)
    assert store.merge(report) == ((), ("keep", "new1", "new2"))
    rows = subject.reopen().rows()
    assert [r.task_id for r in rows] == ["keep", "new1", "new2"] and rows[0].notes == "mine"
    assert store.merge(ImportReport(error="bad")) == ((), ())


def test_a_repeated_id_inside_one_import_counts_once(subject: Subject) -> None:
    result = subject.store.merge(ImportReport(rows_ok=[make_row("a", notes="first"), make_row("a", notes="2nd")]))
    assert result == (("a",), ("a",)) and subject.reopen().get("a").notes == "first"


def test_imported_rows_are_kept_as_records_never_as_work(subject: Subject) -> None:
    now = T0 + timedelta(days=1)
    rows = [full_row("a", text="=x"), make_row("b", state="running")]
    assert subject.store.merge(import_csv(export_csv(rows), now=now)).added == ("a", "b")
    kept = subject.reopen().rows()
    assert kept == [as_imported(r, now) for r in rows]
    assert all(r.imported_at == now for r in kept)
    assert not any(is_followable(r, "sandbox") for r in subject.store.unfinished())


def test_an_unreadable_row_is_reported_and_left_untouched(subject: Subject) -> None:
    store = subject.store
    for name in ("good1", "bad", "good2"):
        store.append(make_row(name))
    subject.spoil("bad")
    other = subject.reopen()
    assert [r.task_id for r in other.rows()] == ["good1", "good2"] and other.get("bad") is None
    problems = other.unreadable()
    assert len(problems) == 1 and "duration" in problems[0][1]
    with pytest.raises(UnknownTaskError):
        other.update("bad", rating=1)
    other.update("good2", rating=3)
    other.append(make_row("good3"))
    assert len(subject.reopen().unreadable()) == 1  # still there, still unreadable: never rewritten
    assert [r.task_id for r in subject.reopen().rows()] == ["good1", "good2", "good3"]


def test_two_views_see_each_others_writes(subject: Subject) -> None:
    a, b = subject.store, subject.reopen()
    a.append(make_row("from-a"))
    b.append(make_row("from-b", created_at=T0 - timedelta(hours=1)))
    with pytest.raises(DuplicateTaskError):
        b.append(make_row("from-a"))
    b.update("from-a", state="succeeded")
    assert a.get("from-a").state == "succeeded" and [r.task_id for r in a.rows()] == ["from-a", "from-b"]


def test_updated_at_defaults_to_now_and_can_be_given(subject: Subject) -> None:
    subject.store.append(make_row("t"))
    given = T0 + timedelta(hours=2)
    assert subject.store.update("t", notes="n", updated_at=given).updated_at == given
    assert subject.reopen().get("t") == replace(make_row("t"), notes="n", updated_at=given)


# -- History's query seam: the same answers as filtering and sorting every row in Python ---------------------------
def _query_rows() -> list[HistoryRow]:
    shots = json.dumps([{"prompt": "wide shot of a HERON", "duration": 3}, {"prompt": "close-up", "duration": 2}])
    specs: list[tuple[str, int, dict[str, object]]] = [
        ("q-fox", 0, dict(state="succeeded", mode="pro", sound=True, elements=("Fox", "owl"), rating=5,
                          credits_consumed=80.0, duration=5, aspect_ratio="16:9", notes="keeper 50% off",
                          updated_at=T0 + timedelta(seconds=95))),
        ("q-owl", 1, dict(state="failed", mode="std", elements=("owl",), fail_msg="Content policy", duration=10,
                          estimated_credits=40, updated_at=T0 + timedelta(minutes=1, seconds=30))),
        ("q-heron", 2, dict(state="succeeded", mode="std", multi_shots=True, shots_json=shots, prompt="",
                            rating=3, estimated_credits=60, credits_consumed=55.5, duration=5,
                            updated_at=T0 + timedelta(minutes=2, seconds=20), aspect_ratio="9:16")),
        ("q-queued", 3, dict(state="queued", mode="4K", estimated_credits=200, batch_id="batch_7")),
        ("q-tie-a", 4, dict(state="running", mode="pro", rating=2)),
        ("q-tie-b", 4, dict(state="unknown", mode="pro", rating=2, prompt="a_b snake")),
        ("q-live-mine", 5, dict(origin="live", account="acct-1", state="succeeded", mode="std", rating=1)),
        ("q-live-theirs", 6, dict(origin="live", account="acct-2", state="succeeded", mode="master")),
        ("q-live-open", 7, dict(origin="live", state="failed", mode="std", sound=True, prompt="An old import")),
    ]
    return [make_row(task_id, created_at=T0 + timedelta(days=day % 3, minutes=day), **fields)
            for task_id, day, fields in specs]


def _expected(store: LedgerStore, flt: object, by: str, descending: bool, account: str | None) -> list[str]:
    from lib.history import view as hv
    from lib.history.row import visible_to

    rows = [r for r in store.rows() if account is None or visible_to(r, account)]
    return [r.task_id for r in hv.sort_rows(hv.filter_rows(rows, flt), by, descending)]  # type: ignore[arg-type]


def _filters() -> list[object]:
    from datetime import date

    from lib.history.view import HistoryFilter as F

    day = T0.date()
    return [F(), F(states=("succeeded", "failed")), F(origins=("live",)), F(modes=("pro", "4K")), F(sound="on"),
            F(sound="off"), F(elements=("OWL",)), F(elements=("fox", "nobody")), F(date_from=day, date_to=day),
            F(date_from=date(2026, 3, 2)), F(text="heron"), F(text="KEEPER 50%"), F(text="50_"), F(text="a_b"),
            F(text="policy content"), F(text="batch_7"), F(text="q-tie"), F(min_rating=2),
            F(states=("succeeded",), min_rating=1, sound="off")]


@pytest.mark.parametrize("account", [None, "acct-1", ""])
@pytest.mark.parametrize("by", ["Created", "Rating", "Cost (credits)", "Duration (s)", "Generation time", "State",
                                "Mode"])
def test_query_sorts_filters_and_counts_like_the_rows_do(subject: Subject, by: str, account: str | None) -> None:
    from lib.history.query import query_page

    subject.store.merge(ImportReport(rows_ok=_query_rows()))
    store = subject.reopen()
    for flt in _filters():
        for descending in (True, False):
            want = _expected(store, flt, by, descending, account)
            got = query_page(store, flt, by, descending, 0, 100, account=account)  # type: ignore[arg-type]
            assert ([r.task_id for r in got.rows], got.total) == (want, len(want)), (flt, descending)


def test_query_pages_through_the_matches(subject: Subject) -> None:
    from lib.history.query import query_page
    from lib.history.view import HistoryFilter

    subject.store.merge(ImportReport(rows_ok=_query_rows()))
    every = _expected(subject.store, HistoryFilter(), "Created", True, None)
    pages = [query_page(subject.store, HistoryFilter(), "Created", True, start, 4) for start in (0, 4, 8, 12)]
    assert [p.total for p in pages] == [9] * 4 and [len(p.rows) for p in pages] == [4, 4, 1, 0]
    assert [r.task_id for p in pages for r in p.rows] == every
    assert pages[0].rows[0] == subject.store.get(every[0])  # whole rows, every field


def test_query_and_overview_follow_writes(subject: Subject) -> None:
    from lib.history.query import history_overview, query_page
    from lib.history.view import HistoryFilter

    store = subject.store
    store.merge(ImportReport(rows_ok=_query_rows()))
    five = HistoryFilter(min_rating=5)
    assert [r.task_id for r in query_page(store, five).rows] == ["q-fox"]
    store.update("q-owl", rating=5, notes="now a keeper")
    assert [r.task_id for r in query_page(subject.reopen(), five).rows] == ["q-owl", "q-fox"]
    assert query_page(store, HistoryFilter(text="now keeper")).rows == [store.get("q-owl")]
    store.delete(["q-fox"])
    assert query_page(store, five).total == 1
    view = history_overview(subject.reopen(), "acct-1")
    assert (view.total, view.hidden) == (7, 1)  # q-live-theirs is another key's
    assert view.facets.modes == ("4K", "pro", "std") and view.facets.elements == ("owl",)
    assert history_overview(store, None).total == 8 and history_overview(store, None).hidden == 0


def test_query_refuses_an_unknown_sort(subject: Subject) -> None:
    from lib.history.query import query_page
    from lib.history.view import HistoryFilter

    subject.store.append(make_row("t1"))
    with pytest.raises(ValueError, match="cannot sort"):
        query_page(subject.store, HistoryFilter(), "Colour")
