"""Team mode (issue 19) on real components: History at 100,000 runs and a follower tick on PostgreSQL beside the
CSV ledger measured in the same run, and two replicas following 50 tasks (recordInfo and SQL per task).

The bench starts its own throwaway PostgreSQL cluster and moto S3 server (lib/storage/testbed.py, the same code
the tests use) and an in-process sandbox. History is timed under AppTest in this process: "first paint" is a new
session's first run of the History page (Home run first, as a visitor arrives); "search" is one rerun after
typing a word into Search. The two replicas are two server followers in this process, each with its own storage,
lease owner and KIE client, sharing one database and one bucket, as two `streamlit run` servers do
(tests/storage/test_two_replicas.py covers the real processes).

Run: python bench/bench_team.py [--rows N] [--tasks N] [--quick]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, Figure, history_rows, ms, print_figures, write_ledger  # noqa: E402
from bench_pages import server_like_script_cache, studio_data  # noqa: E402

from lib.history.row import HistoryRow  # noqa: E402
from lib.history.transfer import ImportReport  # noqa: E402
from lib.kie.client import KieClient  # noqa: E402
from lib.kie.schedule import queries_for  # noqa: E402
from lib.kling.job import Job, build_payload  # noqa: E402
from lib.sandbox.server import SandboxServer, start_sandbox  # noqa: E402
from lib.storage.files import open_file_storage  # noqa: E402
from lib.storage.open import StorageChoice, build_storage  # noqa: E402
from lib.storage.sql import SqlLedger, shared_engine  # noqa: E402
from lib.storage.testbed import PgCluster, S3Server, moto_s3, pg_cluster  # noqa: E402
from lib.tasks.leases import LeaseClaimer  # noqa: E402
from lib.tasks.submit import submit_payload  # noqa: E402
from lib.tasks.worker import MAX_QUERIES_PER_TICK, Follower  # noqa: E402

HISTORY = "pages/3_History.py"
DATABASE = "KLING_STUDIO_DATABASE_URL"
SEARCHES = ("lighthouse", "robots", "fox", "neon", "storm", "chess", "snow")
RUNNING = 20                    # unfinished tasks in the follower-tick ledger
PAINT_TARGET_S = 1.0            # issue 19: History stays usable at 100,000 runs
TICK_TARGET_S = 0.5
PAYLOAD = {"model": "kling-3.0/video", "input": {"prompt": "a paper boat", "duration": "3", "mode": "std",
                                                 "sound": False, "aspect_ratio": "16:9", "multi_shots": False}}


# ------------------------------------------------------------------------------------------------ helpers

class StatementCounter:
    """SQL statements sent through an engine (a SQLAlchemy cursor event), for queries-per-task figures."""

    def __init__(self, engine: object) -> None:
        from sqlalchemy import event

        self.count = 0
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *args: object) -> None:
        self.count += 1


def seed_sql(url: str, rows: list[HistoryRow]) -> SqlLedger:
    ledger = SqlLedger(shared_engine(url))
    ledger.merge(ImportReport(rows_ok=rows))
    return ledger


@contextmanager
def aws_settings(s3: S3Server) -> Iterator[None]:
    """The AWS variables boto3 reads (endpoint, test credentials) pointed at the moto server, restored after."""
    saved = {name: os.environ.get(name) for name in s3.env()}
    os.environ.update(s3.env())
    try:
        yield
    finally:
        for name, value in saved.items():
            os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)


@contextmanager
def database_setting(url: str | None) -> Iterator[None]:
    """KLING_STUDIO_DATABASE_URL for the app's storage choice (unset: the CSV ledger), restored after."""
    saved = os.environ.get(DATABASE)
    os.environ.pop(DATABASE, None) if url is None else os.environ.__setitem__(DATABASE, url)
    try:
        yield
    finally:
        os.environ.pop(DATABASE, None) if saved is None else os.environ.__setitem__(DATABASE, saved)


# ------------------------------------------------------------------------------------------------ History

def _new_history_session() -> tuple[object, float]:
    """(AppTest on History, seconds of its first History run) for a new session."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "home.py"), default_timeout=300).run()
    at.switch_page(HISTORY)
    start = time.perf_counter()
    at.run()
    took = time.perf_counter() - start
    if at.exception:
        raise RuntimeError(f"History failed: {at.exception[0].message.splitlines()[0][:200]}")
    return at, took


def _search_s(at: object, sessions: int) -> float:
    times = []
    for word in SEARCHES[:max(3, sessions)]:
        box = at.text_input(key="history_f_text")  # type: ignore[attr-defined]
        start = time.perf_counter()
        box.set_value(word).run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def history_times(data_dir: Path, url: str | None, sessions: int) -> dict[str, float]:
    """First paint (the process's first session, then the median of new sessions) and search, in seconds."""
    with studio_data(data_dir), database_setting(url), server_like_script_cache():
        at, cold = _new_history_session()
        warm = statistics.median(_new_history_session()[1] for _ in range(sessions))
        return {"cold": cold, "paint": warm, "search": _search_s(at, sessions)}


def history_figures(root: Path, cluster: PgCluster, rows: int, sessions: int) -> list[Figure]:
    made = history_rows(rows)
    write_ledger(root / "csv", made)
    seed_sql(url := cluster.new_database_url(), made)
    write_ledger(root / "warmup", made[:50])
    history_times(root / "warmup", None, 1)  # imports and Streamlit's first-run costs, paid by neither side
    csv = history_times(root / "csv", None, sessions)
    sql = history_times(root / "sql", url, sessions)
    return [
        Figure(f"team: History first paint, {rows:,} runs on PostgreSQL", ms(sql["paint"]),
               f"CSV: {ms(csv['paint'])}", f"≤ {ms(PAINT_TARGET_S)}", sql["paint"] <= PAINT_TARGET_S,
               f"a new session; the process's first session: PostgreSQL {ms(sql['cold'])}, CSV {ms(csv['cold'])}"),
        Figure(f"team: History search, {rows:,} runs on PostgreSQL", ms(sql["search"]), f"CSV: {ms(csv['search'])}",
               f"≤ {ms(PAINT_TARGET_S)}", sql["search"] <= PAINT_TARGET_S, "median rerun after typing one word"),
    ]


def unreadable_figure(cluster: PgCluster, rows: int, rounds: int = 5) -> Figure:
    """History's check for unreadable rows after one write (every write changes the ledger's version), against
    parsing every row, the way it worked before (the baseline, timed in the same run)."""
    made = history_rows(rows)
    ledger = seed_sql(cluster.new_database_url(), made)
    ledger.unreadable()  # the first look parses every row once
    after_write, full = [], []
    for i in range(rounds):
        ledger.update(made[i].task_id, rating=1 + i % 5)
        start = time.perf_counter()
        ledger.unreadable()
        after_write.append(time.perf_counter() - start)
        start = time.perf_counter()
        SqlLedger(ledger.engine).unreadable()  # a new ledger knows nothing: it parses every row
        full.append(time.perf_counter() - start)
    took, base = statistics.median(after_write), statistics.median(full)
    return Figure(f"team: unreadable-row check after one write, {rows:,} runs", ms(took),
                  f"every row parsed: {ms(base)}", "≤ 0.2× the full parse", took <= 0.2 * base,
                  f"median of {rounds}; each write changes the version History's check is cached on")


# ------------------------------------------------------------------------------------------------ follower tick

def _running_rows(client: KieClient, count: int) -> list[HistoryRow]:
    rows = []
    for i in range(count):
        payload = build_payload(Job(prompt=f"A paper boat drifts down a gutter, take {i}", duration=5))
        rows.append(replace(HistoryRow.from_payload(client.create_task(payload), payload, origin="sandbox",
                                                    account=client.account), state="running"))
    return rows


def _tick_s(follower: Follower, ticks: int) -> tuple[float, int]:
    """(median seconds of a tick in which every running task is due, recordInfo queries per tick)."""
    times, before = [], follower.queries
    for n in range(ticks):
        start = time.perf_counter()
        result = follower.run_once(now=time.time() + 3600 * (n + 1))  # each tick an hour later: all due
        times.append(time.perf_counter() - start)
        if result.errors:
            raise RuntimeError(f"the tick reported errors: {result.errors[:2]}")
    return statistics.median(times), (follower.queries - before) // ticks


def tick_figure(root: Path, cluster: PgCluster, rows: int, ticks: int) -> Figure:
    with start_sandbox(port=0, data_dir=root / "sandbox", progress="queries", every_n=100_000,
                       credits="1000000") as box:
        client = KieClient("bench", box.base_url, box.base_url)
        made = history_rows(rows, seed=3) + _running_rows(client, RUNNING)
        write_ledger(root / "tick-csv", made)
        csv = Follower(open_file_storage(root / "tick-csv"), lambda row: client, allow_private=(box.base_url,))
        url = cluster.new_database_url()
        seed_sql(url, made)
        engine = shared_engine(url)
        storage = build_storage(StorageChoice(root / "tick-sql", url))
        sql = Follower(storage, lambda row: client, allow_private=(box.base_url,),
                       claimer=LeaseClaimer(engine, "bench"))
        csv_s, _ = _tick_s(csv, ticks)
        counter = StatementCounter(engine)
        sql_s, per_tick = _tick_s(sql, ticks)
    statements = counter.count / ticks
    return Figure(f"team: follower tick, {RUNNING} running + {rows:,} runs on PostgreSQL",
                  f"{ms(sql_s)} ({per_tick} recordInfo, {statements:.0f} SQL)", f"CSV: {ms(csv_s)}",
                  f"≤ {ms(TICK_TARGET_S)}", sql_s <= TICK_TARGET_S and per_tick <= RUNNING,
                  f"median of {ticks} ticks, every running task due; a tick queries at most "
                  f"{MAX_QUERIES_PER_TICK} (KIE's rate); lease claim and renew included")


# ------------------------------------------------------------------------------------------------ two replicas

@dataclass
class CountingClient:
    """A KieClient that records which tasks this replica asked about."""

    inner: KieClient
    asked: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get_task(self, task_id: str) -> object:
        with self.lock:
            self.asked.append(task_id)
        return self.inner.get_task(task_id)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def _follow_all(followers: list[Follower], submit: Callable[[], str], tasks: int,
                done: Callable[[str], bool], limit_s: float) -> tuple[list[str], float]:
    """Start the followers, then submit `tasks` tasks as users would (servers already running); wait until every
    one is archived. Returns (task ids, seconds from the first submit to the last archive)."""
    for follower in followers:
        follower.start()
    start = time.monotonic()
    try:
        ids = [submit() for _ in range(tasks)]
        while not all(done(t) for t in ids):
            if time.monotonic() - start > limit_s:
                raise RuntimeError("tasks did not finish")
            time.sleep(0.2)
        return ids, time.monotonic() - start
    finally:
        for follower in followers:
            follower.stop()


def _submitter(client: KieClient, ledger: object) -> Callable[[], str]:
    return lambda: submit_payload(client, ledger, PAYLOAD, origin="sandbox",  # type: ignore[arg-type]
                                  batch_id="bench").row.task_id


def one_server(root: Path, box: SandboxServer, tasks: int, seconds: float) -> float:
    """The baseline: one server on the CSV ledger following the same tasks (recordInfo per task)."""
    client = CountingClient(KieClient("sandbox-demo", box.base_url, box.base_url))
    storage = open_file_storage(root / "single")
    follower = Follower(storage, lambda row: client, allow_private=(box.base_url,), tick_s=0.25)  # type: ignore[arg-type,return-value]
    _follow_all([follower], _submitter(client.inner, storage.ledger), tasks,
                lambda t: storage.media.video(t) is not None, seconds + 60)
    return len(client.asked) / tasks


def _archived(row: HistoryRow | None) -> bool:
    return row is not None and bool(row.local_video)


def replica_figures(root: Path, cluster: PgCluster, s3: S3Server, tasks: int, seconds: float) -> list[Figure]:
    url, media = cluster.new_database_url(), f"s3://{s3.new_bucket()}/team"
    with aws_settings(s3), start_sandbox(port=0, data_dir=root / "box", progress="wall", seconds=seconds,
                                         credits="1000000") as box:
        single = one_server(root, box, tasks, seconds)
        kie = KieClient("sandbox-demo", box.base_url, box.base_url)
        replicas = {name: (build_storage(StorageChoice(root / name, url, media)),
                           CountingClient(KieClient("sandbox-demo", box.base_url, box.base_url)))
                    for name in ("A", "B")}
        engine = shared_engine(url)
        ledger = replicas["A"][0].ledger
        counter = StatementCounter(engine)
        followers = [Follower(storage, lambda row, c=client: c, allow_private=(box.base_url,), tick_s=0.25,  # type: ignore[misc]
                              claimer=LeaseClaimer(engine, name)) for name, (storage, client) in replicas.items()]
        _, took = _follow_all(followers, _submitter(kie, ledger), tasks, lambda t: _archived(ledger.get(t)),
                              seconds + 60)
    asked = {name: client.asked for name, (_, client) in replicas.items()}
    both = len(set(asked["A"]) & set(asked["B"]))
    total = sum(len(a) for a in asked.values()) / tasks
    split = ", ".join(f"{name} {len(a) / tasks:.1f}" for name, a in asked.items())
    return [
        Figure(f"team: two replicas following {tasks} tasks, recordInfo per task", f"{total:.1f} ({split})",
               f"one server: {single:.1f}; KIE schedule: {queries_for(seconds)}", "≤ one server + 0.5",
               total <= single + 0.5 and both == 0,
               f"{both} tasks polled by both servers; submitted while both followed, all archived to the bucket "
               f"{took:.1f} s after the first submit"),
        Figure(f"team: two replicas following {tasks} tasks, SQL statements per task", f"{counter.count / tasks:.0f}",
               "—", "info", None, "both followers' ticks (claim, renew, reads, updates, release), both servers"),
    ]


# ------------------------------------------------------------------------------------------------ run

PARTS = ("history", "tick", "replicas")


def run(data_dir: Path | None = None, quick: bool = False, rows: int | None = None,
        tasks: int | None = None, parts: tuple[str, ...] = PARTS) -> list[Figure]:
    """Start the cluster and bucket, measure `parts`, return the figures (data_dir is unused: data is generated)."""
    rows = rows or (300 if quick else 100_000)
    tasks = tasks or (4 if quick else 50)
    sessions, ticks, seconds = (1, 2, 1.0) if quick else (3, 5, 3.0)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    with tempfile.TemporaryDirectory(prefix="kling-team-") as tmp, pg_cluster() as cluster, moto_s3() as s3:
        root = Path(tmp)
        figures = history_figures(root, cluster, rows, sessions) if "history" in parts else []
        figures += [unreadable_figure(cluster, rows)] if "history" in parts else []
        figures += [tick_figure(root, cluster, rows, ticks)] if "tick" in parts else []
        figures += replica_figures(root, cluster, s3, tasks, seconds) if "replicas" in parts else []
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None, help="History runs (default 100,000)")
    parser.add_argument("--tasks", type=int, default=None, help="tasks the two replicas follow (default 50)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--only", choices=PARTS, action="append", help="measure only this part (repeatable)")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON (for run_all)")
    args = parser.parse_args()
    print_figures("Team mode (PostgreSQL + bucket)", run(None, args.quick, args.rows, args.tasks,
                                                          tuple(args.only or PARTS)))


if __name__ == "__main__":
    main()
