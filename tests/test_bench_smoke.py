"""Keep the benchmarks runnable: import each bench module and run its cheapest part at tiny sizes.

No timing is asserted here; the figures live in bench/ output and docs/PERFORMANCE.md.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))


@pytest.mark.parametrize("name", ["bench_pages", "bench_uploads", "bench_polling", "bench_startup",
                                  "run_all", "bench_history", "bench_media", "bench_follower", "bench_reel", "bench_batch", "bench_animatic", "browser_latency",
                                  "bench_memory"])
def test_imports(name: str) -> None:
    module = importlib.import_module(name)
    assert callable(getattr(module, "run", None) or getattr(module, "main", None))


@pytest.mark.parametrize(("samples", "median", "p90"), [
    ([1.0], 1.0, 1.0),
    ([3.0, 1.0, 2.0], 2.0, 3.0),
    (list(range(1, 11)), 5.5, 9.0),
])
def test_quantiles(samples: list[float], median: float, p90: float) -> None:
    from _common import quantiles

    assert quantiles(samples) == (median, p90)


@pytest.mark.parametrize(("ok", "verdict"), [(True, "PASS"), (False, "FAIL"), (None, "info")])
def test_table_shows_every_figure(ok: bool | None, verdict: str) -> None:
    from _common import Figure, table

    text = table([Figure("metric a", "1 ms", "2 ms", "≤ 3 ms", ok, "a note")])
    assert "| metric a" in text and verdict in text and "- metric a: a note" in text


def test_data_folder_has_rows_and_elements(tmp_path: Path) -> None:
    from _common import make_data_dir

    from lib.elements.library import ElementLibrary
    from lib.elements.model import upload_status
    from lib.history.ledger import Ledger

    make_data_dir(tmp_path, rows=30, elements=3)
    rows = Ledger.in_dir(tmp_path).rows()
    assert len(rows) == 30 and all(row.finished for row in rows)
    labels = [upload_status(e).label for e in ElementLibrary(tmp_path).list()]
    assert len(labels) == 3 and "uploaded" in labels and "not uploaded" in labels


@pytest.mark.parametrize("reads_again", [False, True])
def test_read_counter_sees_ledger_reads(tmp_path: Path, reads_again: bool) -> None:
    from _common import history_rows, write_ledger
    from bench_pages import ReadCounter

    from lib.history.ledger import Ledger

    path = write_ledger(tmp_path, history_rows(20))
    ledger = Ledger(path)
    ledger.rows()
    if reads_again:
        Ledger(path).append(history_rows(1, seed=5)[0])  # another writer changes the file
    with ReadCounter(path).watching() as counter:
        assert len(ledger.rows()) == 20 + reads_again
    assert counter.untouched is not reads_again
    assert counter.rows_parsed == (1 if reads_again else 0)


def test_page_timing_runs_the_empty_page(tmp_path: Path) -> None:
    from bench_pages import EMPTY, load_app, page_error, time_reruns

    at = load_app(EMPTY, tmp_path)
    samples, threads = time_reruns({EMPTY: at}, 2)
    assert not page_error(at)
    assert len(samples[EMPTY]) == len(threads[EMPTY]) == 2


@pytest.mark.parametrize("way", ["stream", "base64", "bare"])
def test_upload_client_process_measures_memory(sandbox: object, tmp_path: Path, way: str) -> None:
    from bench_uploads import make_image, measure

    image = make_image(tmp_path / "still.png", 200_000)
    result = measure(way, sandbox.base_url, image, "memory")  # type: ignore[attr-defined]
    assert result["peak"] > 0 and "rss_growth" in result


def test_polling_tick_counts_queries(tmp_path: Path) -> None:
    from bench_polling import RUNNING_TASKS, schedule_figure, tick_figure

    from lib.sandbox.server import start_sandbox

    assert schedule_figure().ok is not None
    with start_sandbox(port=0, data_dir=tmp_path / "box", progress="queries", every_n=1000,
                       credits="1000000") as box:
        figure, took = tick_figure(box.base_url, tmp_path / "data", history=0)
    assert figure.value.startswith(f"{RUNNING_TASKS} queries") and took > 0


def test_cpu_seconds_of_a_started_streamlit(tmp_path: Path) -> None:
    from _common import StreamlitServer, cpu_seconds, write_bare_app

    assert cpu_seconds(os.getpid()) > 0
    with StreamlitServer(write_bare_app(tmp_path), tmp_path / "data") as server:
        assert server.wait_healthy() > 0
        assert server.cpu_seconds() > 0


def test_run_all_reads_the_ledger_bench(tmp_path: Path) -> None:
    from _common import history_rows, write_ledger
    from run_all import history_figures

    write_ledger(tmp_path, history_rows(50))
    figures = history_figures(tmp_path, quick=True)
    assert [f.metric.split(": ")[1] for f in figures] == ["append one row", "update one row", "load all rows (cold)"]


def test_team_bench_runs_on_a_throwaway_cluster_and_bucket() -> None:
    """bench_team at tiny sizes: History (CSV beside PostgreSQL), a follower tick, two replicas sharing tasks."""
    from bench_team import run

    from lib.storage.testbed import have_postgres

    if not have_postgres():
        pytest.skip("PostgreSQL is not installed (no initdb/pg_ctl)")
    pytest.importorskip("moto.server", reason="moto[server] is not installed (requirements-dev)")
    figures = run(quick=True, rows=40, tasks=2)
    assert [f.metric.split(",")[0] for f in figures] == [
        "team: History first paint", "team: History search", "team: unreadable-row check after one write",
        "team: follower tick", "team: two replicas following 2 tasks", "team: two replicas following 2 tasks"]
    assert "PostgreSQL" in figures[0].metric and figures[0].baseline.startswith("CSV: ")
    assert figures[2].baseline.startswith("every row parsed: ")
    assert figures[4].ok, figures[4]  # no task polled by both replicas


def test_steady_follower_tick_beside_bare_gets(tmp_path: Path) -> None:
    from bench_polling import RUNNING_TASKS, steady_tick_figure

    from lib.sandbox.server import start_sandbox

    with start_sandbox(port=0, data_dir=tmp_path / "box", progress="queries", every_n=1000,
                       credits="1000000") as box:
        figure = steady_tick_figure(box.base_url, tmp_path / "data", history=30, rounds=1)
    assert f"{RUNNING_TASKS} queries" in figure.value and "bare GETs" in figure.baseline


def test_memory_bench_reads_a_process_memory() -> None:
    from bench_memory import memory_mb

    rss, peak = memory_mb(os.getpid())
    assert 0 < rss <= peak


def test_run_all_reads_the_100k_ledger_bench() -> None:
    from run_all import ledger_100k_figures

    figures = ledger_100k_figures(quick=True)
    assert [f.metric for f in figures] == [f"ledger @2,000: {name}" for name in
                                           ("append one row", "update one row", "load all rows (cold)")]
    assert "stdlib csv.DictReader" in figures[2].baseline and figures[2].ok is not None
