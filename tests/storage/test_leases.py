"""Leases: two followers on one database never query the same task; a dead one's tasks move on after the lease."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest

from lib.history.row import HistoryRow
from lib.kie.models import TaskRecord, TaskState
from lib.storage.base import Storage
from lib.storage.files import FileMedia
from lib.storage.sql import SqlDrafts, SqlLedger, shared_engine
from lib.tasks.leases import LeaseClaimer, SharedRateLimiter
from lib.tasks.worker import MAX_QUERIES_PER_TICK, Follower

LEASE_S = 30.0


class Clock:
    """One injected clock for every server in a test (real time plus an offset, as the ledger's stamps are real)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class FakeKie:
    """Answers recordInfo with a fixed state and records who asked about what (and how many at once)."""

    def __init__(self, state: TaskState = TaskState.RUNNING) -> None:
        self.state = state
        self.asked: dict[str, list[str]] = defaultdict(list)
        self.in_flight: dict[str, int] = defaultdict(int)
        self.overlaps: list[str] = []
        self._lock = threading.Lock()

    def for_server(self, name: str) -> _ServerView:
        return _ServerView(self, name)


class _ServerView:
    def __init__(self, kie: FakeKie, name: str) -> None:
        self.kie, self.name = kie, name

    def get_task(self, task_id: str) -> TaskRecord:
        kie = self.kie
        with kie._lock:
            kie.asked[task_id].append(self.name)
            kie.in_flight[task_id] += 1
            if kie.in_flight[task_id] > 1:
                kie.overlaps.append(task_id)
        time.sleep(0.005)  # a query takes a moment: long enough for another server to try the same task
        with kie._lock:
            kie.in_flight[task_id] -= 1
        return TaskRecord(task_id, kie.state)


@pytest.fixture
def team(database_url: str, tmp_path: Path) -> Storage:
    engine = shared_engine(database_url)
    return Storage(ledger=SqlLedger(engine), library=None, drafts=SqlDrafts(engine),  # type: ignore[arg-type]
                   media=FileMedia(tmp_path))


def _server(team: Storage, kie: FakeKie, name: str, clock: Clock) -> Follower:
    ledger = team.ledger
    assert isinstance(ledger, SqlLedger)
    view = kie.for_server(name)
    return Follower(team, lambda row: view, allow_private=True, clock=clock,  # type: ignore[arg-type,return-value]
                    claimer=LeaseClaimer(ledger.engine, owner=name, lease_s=LEASE_S, clock=clock))


def _tasks(team: Storage, count: int) -> list[str]:
    ids = [f"t{i:02d}" for i in range(count)]
    for task_id in ids:
        team.ledger.append(HistoryRow(task_id=task_id, origin="sandbox", state="running"))
    return ids


def test_two_followers_never_query_the_same_task(team: Storage) -> None:
    clock, kie = Clock(), FakeKie()
    ids = _tasks(team, 12)
    a, b = _server(team, kie, "A", clock), _server(team, kie, "B", clock)
    for _ in range(5):
        a.run_once(clock())
        b.run_once(clock())
        clock.advance(10)  # everything is due again, well within the lease
    assert set(kie.asked) == set(ids)
    assert all(len(set(who)) == 1 for who in kie.asked.values()), dict(kie.asked)
    assert {kie.asked[t][0] for t in ids} == {"A", "B"}
    assert sum(len(w) for w in kie.asked.values() if w[0] == "A") == 5 * MAX_QUERIES_PER_TICK


def test_followers_ticking_at_the_same_moment_skip_each_others_claims(team: Storage) -> None:
    clock, kie = Clock(), FakeKie()
    ids = _tasks(team, 16)
    servers = [_server(team, kie, name, clock) for name in ("A", "B", "C")]
    for _ in range(4):
        start = threading.Barrier(len(servers))

        def tick(server: Follower, start: threading.Barrier = start) -> None:
            start.wait()
            server.run_once(clock())

        threads = [threading.Thread(target=tick, args=(s,)) for s in servers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        clock.advance(10)
    assert kie.overlaps == [] and set(kie.asked) <= set(ids)
    assert all(len(set(who)) == 1 for who in kie.asked.values()), dict(kie.asked)


def test_a_dead_follower_loses_its_leases_after_the_timeout(team: Storage) -> None:
    clock, kie = Clock(), FakeKie()
    ids = _tasks(team, 4)
    a, b = _server(team, kie, "A", clock), _server(team, kie, "B", clock)
    a.run_once(clock())
    assert {t for t in ids if kie.asked[t] == ["A"]} == set(ids)
    # A is killed (kill -9): it never renews or releases. Within the lease B must leave the tasks alone …
    clock.advance(LEASE_S / 2)
    assert b.due(clock()) == [] and b.run_once(clock()).finished == 0
    clock.advance(LEASE_S)
    kie.state = TaskState.SUCCEEDED
    assert b.run_once(clock()).finished == 4  # … after it, B takes them over and finishes them
    assert all(kie.asked[t] == ["A", "B"] for t in ids)
    assert team.ledger.unfinished() == [] and all(b.claimer.holder(t) is None for t in ids)


def test_a_living_follower_keeps_its_tasks_by_renewing(team: Storage) -> None:
    clock, kie = Clock(), FakeKie()
    ids = _tasks(team, 3)
    a, b = _server(team, kie, "A", clock), _server(team, kie, "B", clock)
    for _ in range(6):  # far longer than one lease in total; A ticks (and renews) well within each lease
        a.run_once(clock())
        clock.advance(LEASE_S / 3)
        b.run_once(clock())
    assert all(set(kie.asked[t]) == {"A"} for t in ids)


def test_a_clean_stop_hands_the_tasks_over_at_once(team: Storage) -> None:
    clock, kie = Clock(), FakeKie()
    ids = _tasks(team, 2)
    a, b = _server(team, kie, "A", clock), _server(team, kie, "B", clock)
    a.run_once(clock())
    a.stop()
    clock.advance(60)
    b.run_once(clock())
    assert all(kie.asked[t] == ["A", "B"] for t in ids)


def test_a_callback_landing_on_another_server_moves_the_task_there(team: Storage) -> None:
    clock, kie = Clock(), FakeKie()
    (task,) = _tasks(team, 1)
    a, b = _server(team, kie, "A", clock), _server(team, kie, "B", clock)
    a.run_once(clock())
    b.hint(task)  # KIE's callback reached B: B confirms it with one recordInfo right away
    kie.state = TaskState.SUCCEEDED
    assert b.run_once(clock()).finished == 1 and kie.asked[task] == ["A", "B"]
    assert a.run_once(clock()).finished == 0 and kie.asked[task] == ["A", "B"]


def test_finished_tasks_are_released(team: Storage) -> None:
    clock, kie = Clock(), FakeKie(TaskState.FAILED)
    (task,) = _tasks(team, 1)
    a = _server(team, kie, "A", clock)
    assert a.run_once(clock()).finished == 1 and a.claimer.holder(task) is None


def test_create_pacing_is_one_window_for_every_server(database_url: str) -> None:
    engine = shared_engine(database_url)
    now = [1000.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    a, b = (SharedRateLimiter(engine, "acct-1", limit=3, window_s=10, clock=lambda: now[0], sleep=sleep)
            for _ in range(2))
    other = SharedRateLimiter(engine, "acct-2", limit=3, window_s=10, clock=lambda: now[0], sleep=sleep)
    assert [a.try_turn(), b.try_turn(), a.try_turn()] == [0.0, 0.0, 0.0]
    assert b.try_turn() == pytest.approx(10.0) and other.try_turn() == 0.0  # another account has its own window
    now[0] += 4
    assert a.wait_turn() == pytest.approx(6.0) and slept == [pytest.approx(6.0)]
