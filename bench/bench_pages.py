"""Page reruns: median script time of each page with 10,000 history rows and 50 elements, beside an empty page.

Every page and the empty page (`import streamlit as st; st.write("x")`) runs under AppTest in this process:
one warm-up run, then reruns interleaved page by page (so machine noise hits all alike). AppTest's own
cost (building the element tree, compiling the script) is inside every number, the empty page's included.
Also proves the History page does not re-read or re-parse the CSV on a rerun while the file is unchanged.

Run: python bench/bench_pages.py [--data DIR] [--reruns N] [--profile PAGE] [--quick]
"""

from __future__ import annotations

import argparse
import cProfile
import logging
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, Figure, data_folder, history_rows, ms, print_figures, quantiles, write_bare_app  # noqa: E402

from lib.history.row import HistoryRow

PAGES = {"Home": None, "Elements": "pages/1_Elements.py", "Compose": "pages/2_Compose.py",
         "History": "pages/3_History.py"}
EMPTY = "empty page"
RATIO_TARGET = 3.0
ABSOLUTE_TARGET_S = 0.100


def load_app(name: str, bare_dir: Path) -> object:
    """An AppTest on `name` after its warm-up run (the first run imports modules and fills caches)."""
    from streamlit.testing.v1 import AppTest

    if name == EMPTY:
        at = AppTest.from_file(str(write_bare_app(bare_dir)), default_timeout=120)
        return at.run()
    at = AppTest.from_file(str(ROOT / "home.py"), default_timeout=120).run()
    if PAGES[name]:
        at.switch_page(PAGES[name]).run()
    return at


@contextmanager
def server_like_script_cache() -> Iterator[None]:
    """One ScriptCache for every AppTest run, as the real server keeps one per process.

    AppTest builds a new ScriptCache on each run, so it re-reads, re-parses (magic) and recompiles the page
    every time: cost that grows with the file's size and that `streamlit run` pays once per file."""
    from streamlit.runtime.scriptrunner.script_cache import ScriptCache
    from streamlit.testing.v1 import app_test, local_script_runner

    shared, modules = ScriptCache(), (app_test, local_script_runner)  # both build their own per run
    for module in modules:
        module.ScriptCache = lambda: shared  # type: ignore[assignment,misc]
    try:
        yield
    finally:
        for module in modules:
            module.ScriptCache = ScriptCache  # type: ignore[misc]


def page_error(at: object) -> str:
    """The first exception the page showed, or ''."""
    errors = list(at.exception)  # type: ignore[attr-defined]
    return errors[0].message.splitlines()[0][:160] if errors else ""


@contextmanager
def timing_script_thread() -> Iterator[list[float]]:
    """Durations of AppTest's script thread (the script and Streamlit's runtime, without AppTest's parsing)."""
    from streamlit.testing.v1.local_script_runner import LocalScriptRunner

    durations: list[float] = []
    real = LocalScriptRunner._run_script_thread

    def timed(runner: LocalScriptRunner) -> None:
        start = time.perf_counter()
        try:
            real(runner)
        finally:
            durations.append(time.perf_counter() - start)

    LocalScriptRunner._run_script_thread = timed  # type: ignore[method-assign]
    try:
        yield durations
    finally:
        LocalScriptRunner._run_script_thread = real  # type: ignore[method-assign]


def time_reruns(apps: dict[str, object], reruns: int) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """(AppTest.run wall times, script-thread times) of `reruns` reruns of every app, interleaved."""
    samples: dict[str, list[float]] = {name: [] for name in apps}
    threads: dict[str, list[float]] = {name: [] for name in apps}
    with timing_script_thread() as durations:
        for _ in range(reruns):
            for name, at in apps.items():
                start = time.perf_counter()
                at.run()  # type: ignore[attr-defined]
                samples[name].append(time.perf_counter() - start)
                threads[name].append(durations[-1])
    return samples, threads


_WATCHERS: list[ReadCounter] = []


def _audit(event: str, args: tuple) -> None:
    """Audit hook: every open of a watched file, by any API (open, io.open, os.open, pandas)."""
    if event == "open" and _WATCHERS and isinstance(args[0], str | bytes | os.PathLike):
        path = os.path.abspath(os.fsdecode(args[0]))
        for counter in _WATCHERS:
            if path == counter.path:
                counter.opens += 1


class ReadCounter:
    """Counts, for one file: opens (audit hook), bytes scanned and CSV scans (Ledger._index),
    rows parsed (HistoryRow.from_csv_dict / from_csv_cells) and pandas.read_csv calls."""

    hooked = False

    def __init__(self, path: Path) -> None:
        self.path = str(path.resolve())
        self.opens = self.bytes_scanned = self.scans = self.rows_parsed = self.read_csv = 0

    @contextmanager
    def watching(self) -> Iterator[ReadCounter]:
        import pandas as pd

        from lib.history import ledger as history
        if not ReadCounter.hooked:  # audit hooks cannot be removed; it is inert while nothing is watched
            sys.addaudithook(_audit)
            ReadCounter.hooked = True
        real_index, real_parse, real_read_csv = history.Ledger._index, HistoryRow.from_csv_dict, pd.read_csv

        def counting_index(ledger: object, snap: object, sig: object, start: int, data: bytes = b"") -> object:
            self.scans += 1
            self.bytes_scanned += (len(snap.data) if snap is not None else len(data)) - start  # type: ignore[attr-defined]
            return real_index(ledger, snap, sig, start, data)

        def counting_parse(cls: type, data: object) -> object:
            self.rows_parsed += 1
            return real_parse.__func__(cls, data)  # type: ignore[attr-defined]

        real_cells = HistoryRow.from_csv_cells  # the ledger's own reads (positional cells)

        def counting_cells(cls: type, layout: object, cells: object) -> object:
            self.rows_parsed += 1
            return real_cells.__func__(cls, layout, cells)  # type: ignore[attr-defined]

        def counting_read_csv(*args: object, **kwargs: object) -> object:
            self.read_csv += 1
            return real_read_csv(*args, **kwargs)

        history.Ledger._index = counting_index  # type: ignore[method-assign,assignment]
        HistoryRow.from_csv_dict = classmethod(counting_parse)  # type: ignore[method-assign,assignment]
        HistoryRow.from_csv_cells = classmethod(counting_cells)  # type: ignore[method-assign,assignment]
        pd.read_csv = counting_read_csv
        _WATCHERS.append(self)
        try:
            yield self
        finally:
            _WATCHERS.remove(self)
            history.Ledger._index = real_index  # type: ignore[method-assign]
            HistoryRow.from_csv_dict = real_parse  # type: ignore[method-assign]
            HistoryRow.from_csv_cells = real_cells  # type: ignore[method-assign]
            pd.read_csv = real_read_csv

    @property
    def untouched(self) -> bool:
        return not (self.opens or self.bytes_scanned or self.scans or self.rows_parsed or self.read_csv)

    def summary(self) -> str:
        return (f"{self.opens} opens, {self.bytes_scanned:,} bytes scanned, {self.scans} scans, "
                f"{self.rows_parsed} rows parsed, {self.read_csv} read_csv")


def history_reads(at: object, data_dir: Path, reruns: int) -> tuple[ReadCounter, ReadCounter]:
    """File reads during `reruns` History reruns with the file unchanged, then one rerun after an append
    by another writer (the control: the counter must see that read, and only the new bytes)."""
    from lib.history.ledger import Ledger

    path = data_dir / "history.csv"
    with ReadCounter(path).watching() as unchanged:
        for _ in range(reruns):
            at.run()  # type: ignore[attr-defined]
    # another Ledger on the same file, as another process would write it
    Ledger(path, fsync=False).append(history_rows(1, seed=time.time_ns())[0])
    with ReadCounter(path).watching() as changed:
        at.run()  # type: ignore[attr-defined]
    return unchanged, changed


@contextmanager
def profiling_script_thread() -> Iterator[cProfile.Profile]:
    """cProfile inside AppTest's script thread (a profiler only sees the thread that enabled it)."""
    from streamlit.testing.v1.local_script_runner import LocalScriptRunner

    profiler, real = cProfile.Profile(), LocalScriptRunner._run_script_thread

    def profiled(runner: LocalScriptRunner) -> None:
        profiler.enable()
        try:
            real(runner)
        finally:
            profiler.disable()

    LocalScriptRunner._run_script_thread = profiled  # type: ignore[method-assign]
    try:
        yield profiler
    finally:
        LocalScriptRunner._run_script_thread = real  # type: ignore[method-assign]


def profile_page(at: object, reruns: int, limit: int = 15) -> str:
    """cProfile of `reruns` reruns: this repository's functions by cumulative time, then any code's by own time."""
    with profiling_script_thread() as profiler:
        for _ in range(reruns):
            at.run()  # type: ignore[attr-defined]
    own, anywhere = [], []
    for (file, line, func), (_cc, calls, tottime, cum, _) in pstats.Stats(profiler).stats.items():  # type: ignore[attr-defined]
        short = file.split("site-packages/")[-1].removeprefix(str(ROOT) + "/")
        where, per_call = f"{short}:{line} {func}", max(1, calls // reruns)
        anywhere.append((tottime / reruns, per_call, where))
        if file.startswith(str(ROOT)) and "/bench/" not in file:
            own.append((cum / reruns, per_call, where))

    def lines(rows: list[tuple[float, int, str]], label: str) -> list[str]:
        rows.sort(reverse=True)
        return [f"{label}:"] + [f"{t * 1000:8.1f} ms/rerun {n:6d} calls  {w}" for t, n, w in rows[:limit]]

    return "\n".join(lines(own, "this repository, cumulative") + lines(anywhere, "any code, own time"))


def page_figures(samples: dict[str, list[float]], threads: dict[str, list[float]],
                 errors: dict[str, str]) -> list[Figure]:
    """One row per page: median (p90) beside the empty page's median (p90); script-thread medians as notes."""
    empty_median, empty_p90 = quantiles(samples[EMPTY])

    def thread_note(name: str) -> str:
        return f"script thread alone (no AppTest parsing): median {ms(statistics.median(threads[name]))}"

    figures = [Figure(f"rerun: {EMPTY} (baseline)", f"{ms(empty_median)} (p90 {ms(empty_p90)})", "—", "—", None,
                      thread_note(EMPTY))]
    for name in PAGES:
        if errors.get(name):
            figures.append(Figure(f"rerun: {name}", "error", ms(empty_median), "≤3× empty and <100 ms", False,
                                  errors[name]))
            continue
        median, p90 = quantiles(samples[name])
        ok = median <= RATIO_TARGET * empty_median and median < ABSOLUTE_TARGET_S
        figures.append(Figure(f"rerun: {name}", f"{ms(median)} (p90 {ms(p90)}, {median / empty_median:.1f}×)",
                              f"{ms(empty_median)} (p90 {ms(empty_p90)})", "≤3× empty and <100 ms", ok,
                              thread_note(name)))
    return figures


def read_figures(unchanged: ReadCounter, changed: ReadCounter, reruns: int) -> list[Figure]:
    """The History page's CSV reads on unchanged reruns, and the control after one append."""
    size = os.path.getsize(changed.path)
    return [
        Figure(f"History: CSV reads over {reruns} unchanged reruns", unchanged.summary(), "—",
               "no open, scan or parse", unchanged.untouched),
        Figure("History: rerun after another writer appended 1 row (control)", changed.summary(),
               f"file {size:,} bytes", "reads and parses only the new row",
               0 < changed.bytes_scanned < size // 100 and 1 <= changed.rows_parsed <= 2 and not changed.read_csv),
    ]


@contextmanager
def studio_data(data_dir: Path) -> Iterator[None]:
    """KLING_STUDIO_DATA pointed at `data_dir`, sandbox mode, quiet Streamlit logs; restored after."""
    saved = {k: os.environ.get(k) for k in ("KLING_STUDIO_DATA", "KIE_API_KEY")}
    os.environ["KLING_STUDIO_DATA"] = str(data_dir)
    os.environ.pop("KIE_API_KEY", None)
    logging.getLogger("streamlit").setLevel(logging.ERROR)
    # AppTest's main thread touches st outside a script run; streamlit re-levels its loggers on import
    logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").disabled = True
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        yield
    finally:
        os.chdir(cwd)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run(data_dir: Path | None = None, quick: bool = False, reruns: int | None = None,
        profile: str | None = None, log: Callable[[str], None] = print) -> list[Figure]:
    """Measure every page against the empty page; profile any page that misses its target."""
    reruns = reruns or (3 if quick else 20)
    size = (200, 5) if quick else (10_000, 50)
    with (data_folder(data_dir, *size) as data, studio_data(data), tempfile.TemporaryDirectory() as bare,
          server_like_script_cache()):
        apps, errors = {}, {}
        for name in (EMPTY, *PAGES):
            apps[name] = load_app(name, Path(bare))
            errors[name] = page_error(apps[name])
        samples, threads = time_reruns(apps, reruns)
        errors.update({name: page_error(at) for name, at in apps.items() if page_error(at)})
        figures = page_figures(samples, threads, errors)
        unchanged, changed = history_reads(apps["History"], data, reruns)
        figures += read_figures(unchanged, changed, reruns)
        slow = [f.metric.removeprefix("rerun: ") for f in figures if f.metric.startswith("rerun:") and f.ok is False]
        for name in dict.fromkeys(([profile] if profile else []) + slow):
            if name in apps and not errors.get(name):
                log(f"\n### cProfile of {name} ({reruns} reruns), this repository's functions\n"
                    + profile_page(apps[name], reruns))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="an existing benchmark data folder (default: generate one)")
    parser.add_argument("--reruns", type=int, default=None)
    parser.add_argument("--profile", choices=list(PAGES), help="also print a cProfile of this page")
    parser.add_argument("--quick", action="store_true", help="tiny data and 3 reruns (smoke test)")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON (for run_all)")
    args = parser.parse_args()
    print_figures("Page reruns (AppTest)", run(args.data, args.quick, args.reruns, args.profile))


if __name__ == "__main__":
    main()
