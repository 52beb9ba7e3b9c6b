"""Start-up: `streamlit run streamlit_app.py` to healthy and to the first page rendered in headless Chromium,
beside a bare Streamlit page started the same way. The app runs on the benchmark data (10,000 history rows,
50 elements), so its first render includes the first ledger load and the sandbox start.

Run: python bench/bench_startup.py [--data DIR] [--repeats N] [--quick]
"""

from __future__ import annotations

import argparse
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
    data_folder,
    open_rendered,
    print_figures,
    write_bare_app,
)

HEALTHY_SLACK_S = 0.5  # the app's server is plain Streamlit until a page runs: healthy as fast as a bare page
RENDER_SLACK_S = 2.0   # first page: Streamlit's own start plus our imports, first ledger load and sandbox start


def start_once(browser: object, script: Path, data_dir: Path, marker: str) -> tuple[float, float]:
    """(seconds to healthy, seconds to the first page rendered), both from the launch."""
    with StreamlitServer(script, data_dir) as server:
        healthy = server.wait_healthy()
        page = open_rendered(browser, server.url, marker)
        rendered = time.monotonic() - server.started
        page.close()  # type: ignore[attr-defined]
    return healthy, rendered


def run(data_dir: Path | None = None, quick: bool = False, repeats: int | None = None) -> list[Figure]:
    """Alternate bare and app starts `repeats` times each; medians."""
    repeats = repeats or (1 if quick else 3)
    size = (200, 5) if quick else (10_000, 50)
    times: dict[str, list[tuple[float, float]]] = {"bare": [], "app": []}
    with data_folder(data_dir, *size) as data, tempfile.TemporaryDirectory() as tmp, chromium() as browser:
        bare = write_bare_app(Path(tmp), "bare page ready")
        for _ in range(repeats):
            times["bare"].append(start_once(browser, bare, Path(tmp) / "bare-data", "bare page ready"))
            times["app"].append(start_once(browser, ROOT / "streamlit_app.py", data, "Recent activity"))
    bare_h, bare_r = (statistics.median(t[i] for t in times["bare"]) for i in (0, 1))
    app_h, app_r = (statistics.median(t[i] for t in times["app"]) for i in (0, 1))
    note = f"median of {repeats} starts each, alternating"
    return [
        Figure("start-up: to /_stcore/health", f"{app_h:.2f} s", f"bare page: {bare_h:.2f} s",
               f"≤ bare + {HEALTHY_SLACK_S} s", app_h <= bare_h + HEALTHY_SLACK_S, note),
        Figure("start-up: to first page rendered", f"{app_r:.2f} s", f"bare page: {bare_r:.2f} s",
               f"≤ bare + {RENDER_SLACK_S} s", app_r <= bare_r + RENDER_SLACK_S, note),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="an existing benchmark data folder (default: generate one)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="small data, one start each (smoke test)")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON (for run_all)")
    args = parser.parse_args()
    print_figures("Start-up", run(args.data, args.quick, args.repeats))


if __name__ == "__main__":
    main()
