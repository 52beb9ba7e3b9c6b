"""Polling: queries per task under the schedule, the cost of one progress tick with 20 running tasks, and
the app's CPU while nothing is running (the follower fragment must not tick then).

Run: python bench/bench_polling.py [--quick] [--idle-seconds S]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (  # noqa: E402
    ROOT,
    Figure,
    StreamlitServer,
    chromium,
    history_rows,
    ms,
    open_rendered,
    print_figures,
    sandbox_process,
    write_bare_app,
    write_ledger,
)

TASK_SECONDS = 5 * 60
MAX_QUERIES_PER_TASK = 40
NAIVE_INTERVAL_S = 2.0  # the baseline: poll every 2 s, KIE's fastest advised interval, for the whole task
RUNNING_TASKS = 20
TICK_LIMIT_S = 0.5
IDLE_SLACK_S = 0.05  # idle app CPU over the window may exceed the bare page's by at most this much


def schedule_figure() -> Figure:
    """Queries for one 5-minute task under lib.kie.schedule's schedule vs a fixed 2 s poll."""
    from lib.kie.schedule import queries_for

    ours, naive = queries_for(TASK_SECONDS), int(TASK_SECONDS / NAIVE_INTERVAL_S)
    return Figure("polling: queries for one 5-min task", str(ours), f"{naive} (every {NAIVE_INTERVAL_S:g} s)",
                  f"≤ {MAX_QUERIES_PER_TASK}", ours <= MAX_QUERIES_PER_TASK)


def _running_ledger(folder: Path, client: object, history: int) -> object:
    """A ledger of `history` finished rows plus RUNNING_TASKS rows for tasks really created on the sandbox."""
    from dataclasses import replace

    from lib.history.ledger import Ledger
    from lib.history.row import HistoryRow
    from lib.kling.job import Job, build_payload

    rows = history_rows(history, seed=3) if history else []
    for i in range(RUNNING_TASKS):
        payload = build_payload(Job(prompt=f"A paper boat drifts down a gutter, take {i}", duration=5))
        task_id = client.create_task(payload)  # type: ignore[attr-defined]
        rows.append(replace(HistoryRow.from_payload(task_id, payload, origin="sandbox"), state="running"))
    write_ledger(folder, rows)
    return Ledger.in_dir(folder, fsync=True)


def tick_figure(base: str, folder: Path, history: int) -> tuple[Figure, float]:
    """One lib.tasks.follow.follow_tick (the follower's work, without a browser) over 20 running tasks."""
    from lib.kie.client import KieClient
    from lib.storage.files import FileMedia
    from lib.tasks.follow import follow_tick

    logging.getLogger("streamlit").setLevel(logging.ERROR)
    client = KieClient("bench", base, base)
    ledger = _running_ledger(folder, client, history)
    sent: list[str] = []
    client.session.hooks["response"].append(lambda resp, *args, **kwargs: sent.append(resp.request.path_url))
    start = time.perf_counter()
    result = follow_tick(client, ledger, FileMedia(folder), ledger.unfinished(), origin="sandbox",
                         allow_private=(base,))
    took = time.perf_counter() - start
    finished, errors = result.finished, result.errors
    if errors:
        raise RuntimeError(f"the tick reported errors: {errors[:2]}")
    queries = sum("recordInfo" in path for path in sent)
    label = f"polling: one tick, {RUNNING_TASKS} running" + (f" (+{history:,} finished rows)" if history else "")
    return Figure(label, f"{queries} queries in {ms(took)}", "", f"≤ {RUNNING_TASKS} queries, ≤ 500 ms",
                  queries <= RUNNING_TASKS and len(sent) == queries and took <= TICK_LIMIT_S,
                  f"{len(sent)} requests in all; {finished} finished"), took


def bare_queries(base: str, task_ids: list[str], session: object = None) -> float:
    """The floor: the same number of recordInfo GETs by bare requests, no ledger work."""
    import requests

    session = session or requests.Session()
    start = time.perf_counter()
    for task_id in task_ids:
        session.get(base + "/api/v1/jobs/recordInfo", params={"taskId": task_id},  # type: ignore[attr-defined]
                    headers={"Authorization": "Bearer bench"}, timeout=10).raise_for_status()
    return time.perf_counter() - start


STEADY_HISTORY = 100_000
STEADY_TARGET = 1.2  # a warm tick over 20 due tasks: at most this many times 20 bare GETs


def _new_running(client: object, count: int, round_no: int) -> list:
    from dataclasses import replace

    from lib.history.row import HistoryRow
    from lib.kling.job import Job, build_payload

    rows = []
    for i in range(count):
        payload = build_payload(Job(prompt=f"A paper boat, round {round_no} take {i}", duration=5))
        task_id = client.create_task(payload)  # type: ignore[attr-defined]
        rows.append(replace(HistoryRow.from_payload(task_id, payload, origin="sandbox"), state="running"))
    return rows


def steady_tick_figure(base: str, folder: Path, history: int, rounds: int) -> Figure:
    """A running app's tick: the ledger already loaded (as the server holds it), 20 due tasks among `history`
    finished rows. Each round adds 20 new running tasks (untimed; the previous 20 are marked finished), then
    times one follow_tick over ledger.unfinished() beside 20 bare GETs for the same tasks; medians of the rounds."""
    from lib.history.ledger import Ledger
    from lib.kie.client import KieClient
    from lib.storage.files import FileMedia
    from lib.tasks.follow import follow_tick

    client = KieClient("bench", base, base)
    write_ledger(folder, history_rows(history, seed=3))
    ledger = Ledger.in_dir(folder, fsync=True)
    ledger.unfinished()  # the cold load happens once, when the server starts
    import requests

    ours, bare, queries = [], [], []
    sent: list[str] = []
    session = requests.Session()  # kept alive across rounds, as the app's client keeps its own
    client.session.hooks["response"].append(lambda resp, *args, **kwargs: sent.append(resp.request.path_url))
    for round_no in range(rounds):
        for row in ledger.unfinished():
            ledger.update(row.task_id, state="succeeded")
        for row in _new_running(client, RUNNING_TASKS, round_no):
            ledger.append(row)
        ids = [row.task_id for row in ledger.unfinished()]
        if round_no % 2 == 0:  # alternate which goes first, so a burst of load does not favour either
            bare.append(bare_queries(base, ids, session))
        sent.clear()
        start = time.perf_counter()
        result = follow_tick(client, ledger, FileMedia(folder), ledger.unfinished(), origin="sandbox",
                             allow_private=(base,))
        ours.append(time.perf_counter() - start)
        if round_no % 2 == 1:
            bare.append(bare_queries(base, ids, session))
        if result.errors:
            raise RuntimeError(f"the tick reported errors: {result.errors[:2]}")
        queries.append(sum("recordInfo" in path for path in sent))
    tick, floor = statistics.median(ours), statistics.median(bare)
    ratio = tick / floor
    return Figure(f"follower tick, {RUNNING_TASKS} running + {history:,} finished (ledger loaded)",
                  f"{ms(tick)} ({ratio:.2f}×), {max(queries)} queries", f"{RUNNING_TASKS} bare GETs: {ms(floor)}",
                  f"≤ {STEADY_TARGET:g}× bare", ratio <= STEADY_TARGET and max(queries) <= RUNNING_TASKS,
                  f"median of {rounds} rounds, each beside its own bare GETs (one kept-alive session; "
                  "alternating which goes first); fsync on")


def tick_figures(quick: bool) -> list[Figure]:
    from lib.history.ledger import Ledger

    figures = []
    with tempfile.TemporaryDirectory(prefix="kling-poll-") as tmp:
        with sandbox_process(Path(tmp) / "sandbox", "--progress", "queries", "--every-n", "1000",
                             "--credits", "1000000") as base:
            for history in (0, 200 if quick else 10_000):
                folder = Path(tmp) / f"data-{history}"
                figure, _ = tick_figure(base, folder, history)
                ids = [r.task_id for r in Ledger.in_dir(folder).unfinished()]
                floor = statistics.median(bare_queries(base, ids) for _ in range(3))
                figures.append(Figure(figure.metric, figure.value, f"{len(ids)} bare GETs: {ms(floor)}",
                                      figure.target, figure.ok, figure.note))
            figures.append(steady_tick_figure(base, Path(tmp) / "data-steady", 500 if quick else STEADY_HISTORY,
                                              3 if quick else 7))
    return figures


# ------------------------------------------------------------------------------------------- idle CPU

def idle_cpu(idle_s: float, data_root: Path) -> dict[str, float]:
    """CPU seconds each server uses over `idle_s` with its page open in Chromium and nothing to do.

    Three servers at once (same window, same machine noise): a bare page, the app with an empty history,
    and the app with one unfinished task (the control: its follower fragment ticks)."""
    control = data_root / "control"
    write_ledger(control, history_rows(0, unfinished=1))
    servers = {
        "bare page": (StreamlitServer(write_bare_app(data_root / "bare", "bare page ready"), data_root / "b"),
                      "bare page ready"),
        "app, empty history": (StreamlitServer(ROOT / "streamlit_app.py", data_root / "empty"), "Recent activity"),
        "app, 1 unfinished task": (StreamlitServer(ROOT / "streamlit_app.py", control), "Recent activity"),
    }
    try:
        for server, _ in servers.values():
            server.start()
        for server, _ in servers.values():
            server.wait_healthy()
        with chromium() as browser:
            pages = [open_rendered(browser, server.url, marker) for server, marker in servers.values()]
            time.sleep(2.0)  # let first-load work (sandbox start, balance read, websocket setup) settle
            before = {name: server.cpu_seconds() for name, (server, _) in servers.items()}
            time.sleep(idle_s)
            used = {name: server.cpu_seconds() - before[name] for name, (server, _) in servers.items()}
            for page in pages:
                page.close()  # type: ignore[attr-defined]
        return used
    finally:
        for server, _ in servers.values():
            server.stop()


def idle_figures(idle_s: float) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="kling-idle-") as tmp:
        used = idle_cpu(idle_s, Path(tmp))
    bare, empty, control = used["bare page"], used["app, empty history"], used["app, 1 unfinished task"]
    return [
        Figure(f"idle CPU over {idle_s:g} s: app, empty history", f"{empty:.2f} s",
               f"bare page: {bare:.2f} s", f"≤ bare + {IDLE_SLACK_S} s", empty <= bare + IDLE_SLACK_S),
        Figure(f"idle CPU over {idle_s:g} s: app, 1 unfinished (control)", f"{control:.2f} s",
               f"bare page: {bare:.2f} s", "> empty history (the follower ticks)", control > empty,
               "shows the measurement sees a ticking fragment"),
    ]


def run(data_dir: Path | None = None, quick: bool = False, idle_s: float | None = None,
        ticks_only: bool = False) -> list[Figure]:
    """Schedule, tick and idle figures."""
    idle = [] if ticks_only else idle_figures(idle_s or (2.0 if quick else 10.0))
    return [schedule_figure(), *tick_figures(quick), *idle]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small ledger, 2 s idle window (smoke test)")
    parser.add_argument("--idle-seconds", type=float, default=None)
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON (for run_all)")
    parser.add_argument("--data", type=Path, help="ignored (polling makes its own data)")
    parser.add_argument("--ticks-only", action="store_true", help="skip the idle-CPU servers")
    args = parser.parse_args()
    print_figures("Polling", run(quick=args.quick, idle_s=args.idle_seconds, ticks_only=args.ticks_only))


if __name__ == "__main__":
    main()
