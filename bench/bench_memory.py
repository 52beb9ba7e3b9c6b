"""The app server's memory with 100,000 runs loaded, beside the same app on an empty data folder.

Each server is `streamlit run streamlit_app.py` on its own data folder (a generated ledger of finished runs, or
nothing). Its Home page and then its History page are opened once in headless Chromium and waited on until
rendered (History loads and shows every run); after a short settle the server's resident memory (VmRSS) and its
peak (VmHWM) are read from /proc/<pid>/status. A bare Streamlit page is measured the same way for context.

Run: python bench/bench_memory.py [--rows N] [--quick]   (starts servers and Chromium: run under the browser lock)
"""

from __future__ import annotations

import argparse
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
    make_data_dir,
    open_rendered,
    print_figures,
    write_bare_app,
)

TARGET_MB = 300.0
ROWS = 100_000
SETTLE_S = 2.0


def status_mb(pid: int) -> dict[str, float]:
    """The memory lines of /proc/<pid>/status (VmRSS, VmHWM, RssAnon, RssFile, …) in MB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key.startswith(("Vm", "Rss")) and rest.strip().endswith("kB"):
            values[key] = int(rest.split()[0]) / 1024
    return values


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB."""
    values = status_mb(pid)
    return values["VmRSS"], values["VmHWM"]


def measure(script: Path, data_dir: Path, pages: list[tuple[str, str]], timeout_s: float) -> dict[str, float]:
    """Start one server, open each (path, marker) once in Chromium, settle, and read its memory."""
    with StreamlitServer(script, data_dir) as server:
        server.wait_healthy()
        with chromium() as browser:
            for path, marker in pages:
                page = open_rendered(browser, server.url + path, marker, timeout_s=timeout_s)
                page.close()  # type: ignore[attr-defined]
            time.sleep(SETTLE_S)
            assert server.proc is not None
            return status_mb(server.proc.pid)


def run(data_dir: Path | None = None, quick: bool = False, rows: int | None = None) -> list[Figure]:
    """Memory of the app with `rows` runs (History opened), of the app on an empty folder, and of a bare page."""
    rows = rows if rows is not None else (2_000 if quick else ROWS)
    app = ROOT / "streamlit_app.py"
    app_pages = [("/", "Recent activity"), ("/History", "History")]
    with tempfile.TemporaryDirectory(prefix="kling-mem-") as tmp:
        root = Path(tmp)
        started = time.monotonic()
        loaded = make_data_dir(root / "loaded", rows=rows, elements=0)
        made_s = time.monotonic() - started
        (root / "empty").mkdir()
        bare = measure(write_bare_app(root / "bare", "bare page ready"), root / "b", [("/", "bare page ready")], 60)
        empty = measure(app, root / "empty", app_pages, 60)
        full = measure(app, loaded, app_pages, 300)
        size_mb = (loaded / "history.csv").stat().st_size / 2**20
    full_rss, empty_rss = full["VmRSS"], empty["VmRSS"]
    return [
        Figure(f"app memory, {rows:,} runs (History opened)",
               f"{full_rss:.0f} MB RSS (peak {full['VmHWM']:.0f} MB)",
               f"empty app: {empty_rss:.0f} MB (peak {empty['VmHWM']:.0f} MB)", f"≤ {TARGET_MB:.0f} MB RSS",
               full_rss <= TARGET_MB,
               f"{size_mb:.0f} MB history.csv generated in {made_s:.0f} s; +{full_rss - empty_rss:.0f} MB over the "
               f"empty app; anonymous/file-backed: {full['RssAnon']:.0f}/{full['RssFile']:.0f} MB (empty app "
               f"{empty['RssAnon']:.0f}/{empty['RssFile']:.0f} MB); a bare Streamlit page: {bare['VmRSS']:.0f} MB"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="2,000 rows (smoke test)")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON (for run_all)")
    parser.add_argument("--data", type=Path, help="ignored (the bench makes its own data)")
    args = parser.parse_args()
    print_figures("Memory", run(quick=args.quick, rows=args.rows))


if __name__ == "__main__":
    main()
