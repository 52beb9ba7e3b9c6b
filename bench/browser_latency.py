"""Click latency in headless Chromium: each interaction against a bare Streamlit click measured in the same run.

A click is timed from Playwright's click to the server's `script_finished` message on the page's websocket (decoded
with Streamlit's own ForwardMsg protobuf) plus two animation frames. Each interaction runs ROUNDS times, interleaved
with the bare click, and the script prints median and spread beside the issue's target (≤ 1.5× a bare click).
The History rows use a ledger of HISTORY_ROWS runs generated here.

Run: python bench/browser_latency.py [--rounds N] [--rows N] [--only History]
Rows live in bench/latency_<page>.py (one Interaction each).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import CHROMIUM, CHROMIUM_ARGS, ROOT, Figure, StreamlitServer, table  # noqa: E402
from _latency import Interaction, Page, settle  # noqa: E402

BARE = '''import streamlit as st


@st.dialog("Bare dialog", width="large")
def form():  # the widgets of Elements' edit dialog, with nothing behind them
    st.subheader("Edit @element")
    st.button("Cancel editing")
    left, right = st.columns(2)
    left.text_input("Name", help="Used in prompts as @name.")
    left.caption("Keeps its name")
    left.text_area("Description", help="Sent to Kling.")
    left.radio("Upload method", ["Auto", "Stream", "Base64", "URL"], horizontal=True)
    left.caption("Auto: local files are streamed.")
    right.markdown("**Current files**")
    right.multiselect("Remove files", ["front.png", "side.png"], help="Removed when you save.")
    right.file_uploader("Reference files", accept_multiple_files=True, help="Images at least 300 px.")
    right.text_area("…or web addresses")
    st.button("Save changes and upload", type="primary")


if st.query_params.get("table"):  # the floor of a table pick: a bare st.dataframe with row selection
    import pandas as pd
    st.dataframe(pd.DataFrame({f"c{i}": [f"row {r}" for r in range(50)] for i in range(10)}), hide_index=True,
                 on_select="rerun", selection_mode="single-row", key="bare_table")
elif st.query_params.get("dialog"):  # the floor of opening the edit dialog
    if st.button("bare dialog"):
        form()
else:
    st.button("bare click")
st.write("bare page ready")
'''
TWO_FRAMES = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"


class Watcher:
    """Counts `script_finished` messages on the page's Streamlit websocket."""

    def __init__(self, page: object) -> None:
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        self.finished = 0

        def on_frame(payload: bytes | str) -> None:
            if isinstance(payload, bytes):
                try:
                    if ForwardMsg.FromString(payload).WhichOneof("type") == "script_finished":
                        self.finished += 1
                except Exception:  # noqa: BLE001 - not every frame is a whole ForwardMsg
                    pass

        page.on("websocket", lambda ws: ws.on("framereceived", on_frame))  # type: ignore[attr-defined]
        self.page = page

    def timed(self, action: Callable[[], None], timeout_s: float = 30.0) -> float:
        """Seconds from `action` to the next script_finished plus two animation frames."""
        before = self.finished
        start = time.perf_counter()
        action()
        while self.finished == before:
            if time.perf_counter() - start > timeout_s:
                raise TimeoutError("no script_finished")
            self.page.wait_for_timeout(2)  # type: ignore[attr-defined]
        self.page.evaluate(TWO_FRAMES)  # type: ignore[attr-defined]
        return time.perf_counter() - start

    def painted(self, action: Callable[[], None]) -> float:
        """Seconds from `action` (which waits for what it shows) plus two animation frames, for an interaction
        that runs no script: a script_finished that arrives meanwhile would be a rerun the row says it avoids."""
        before = self.finished
        start = time.perf_counter()
        action()
        self.page.evaluate(TWO_FRAMES)  # type: ignore[attr-defined]
        took = time.perf_counter() - start
        if self.finished != before:
            raise AssertionError("a row marked reruns=False ran the script")
        return took


def _seed(data: Path, rows: int) -> None:
    from latency_history import seed  # finished runs like a real history (bench_history's are all queued)

    seed(data, rows)


def interactions(only: str = "") -> list[Interaction]:
    """Every page's rows (bench/latency_<page>.py), those whose name contains `only` when given."""
    import latency_compose
    import latency_elements
    import latency_history

    rows = [*latency_compose.INTERACTIONS, *latency_history.INTERACTIONS, *latency_elements.INTERACTIONS]
    return [row for row in rows if only.lower() in row.name.lower()]


def _bare_table_click(table_page: Page, table_watch: Watcher, turn: int) -> float:
    """A row click in the bare table (alternating rows, so each click changes the selection)."""
    box = table_page.locator('[data-testid="stDataFrame"]').first.bounding_box()
    row = 1 + turn % 2
    took = table_watch.timed(lambda: table_page.mouse.click(box["x"] + 18, box["y"] + 35 * row + 17))
    settle(table_page)
    return took


def _bare_dialog_open(dialog_page: Page, dialog_watch: Watcher, turn: int) -> float:
    """Open the bare page's dialog (its form like Elements' edit dialog), then close it untimed."""
    took = dialog_watch.timed(lambda: dialog_page.get_by_role("button", name="bare dialog").click())
    dialog_page.keyboard.press("Escape")
    dialog_page.locator('[data-testid="stDialog"]').wait_for(state="detached")
    settle(dialog_page)
    return took


# a row's floor: what the bare page's ?<kind>=1 variant times, and the figure it prints
FLOORS = {"table": (_bare_table_click, "bare table row click (floor of a table pick)"),
          "dialog": (_bare_dialog_open, "bare dialog open (floor of open edit: the same form in a bare dialog)")}


AGAINST = " [against]"  # a row timed on the --against checkout


def _open(page: Page, url: str, row: Interaction) -> None:
    page.goto(f"{url}/{row.path}")
    settle(page)
    if row.setup:
        row.setup(page)


def _measure(bare_page: Page, bare_watch: Watcher, app_page: Page, app_watch: Watcher, url: str,
             rows: list[Interaction], rounds: int,
             floors: dict[str, tuple[Page, Watcher]] | None = None,
             against: tuple[Page, Watcher, str] | None = None) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"bare click": []}
    for row in rows:
        _open(app_page, url, row)
        apps = [(row.name, app_page, app_watch)]
        if against:
            _open(against[0], against[2], row)
            apps.append((row.name + AGAINST, against[0], against[1]))
        for name, _, _ in apps:
            results[name] = []
        for turn in range(rounds):
            results["bare click"].append(bare_watch.timed(
                lambda: bare_page.get_by_role("button", name="bare click").click()))
            if _is_paint(row):
                results.setdefault(BARE_PAINT, []).append(_bare_paint(bare_page, bare_watch))
            if row.floor in (floors or {}):
                floor = results.setdefault(FLOORS[row.floor][1], [])
                floor.append(FLOORS[row.floor][0](*floors[row.floor], len(floor)))
            for name, page, watch in (apps if turn % 2 == 0 else apps[::-1]):  # neither side always goes first
                if row.before:
                    row.before(page)
                timed = watch.timed if row.reruns else watch.painted
                results[name].append(timed(lambda r=row, p=page: r.action(p)))
    return results


BARE_PAINT = "bare page: first paint"


def _is_paint(row: Interaction) -> bool:
    return row.name.endswith("first paint")


def _bare_paint(bare_page: Page, bare_watch: Watcher) -> float:
    """Reload the bare page (the baseline of a 'first paint' row), interleaved with that row's rounds."""
    took = bare_watch.timed(lambda: bare_page.reload())
    settle(bare_page)
    return took


def _paint_target(rows: int) -> float:
    return 1.3 if rows <= 10_000 else 2.0  # issue 17: first paint ≤ 1.3× a bare page at 10,000 runs, ≤ 2× at 100,000


def run(rounds: int = 7, rows: int = 10_000, only: str = "", against: Path | None = None) -> list[Figure]:
    """Measure and return the figures (medians, with the spread as a note). `against`: another checkout (e.g. a
    `git worktree` of the code before a change) served on a copy of the same data and timed in the same rounds."""
    from playwright.sync_api import sync_playwright

    chosen = interactions(only)
    with tempfile.TemporaryDirectory() as tmp:
        bare_script = Path(tmp) / "bare.py"
        bare_script.write_text(BARE)
        data = Path(tmp) / "data"
        data.mkdir()
        if any(row.uses_ledger for row in chosen):
            _seed(data, rows)
        other = None
        if against is not None:
            shutil.copytree(data, Path(tmp) / "against-data")
            other = StreamlitServer(against / "streamlit_app.py", Path(tmp) / "against-data").start()
        bare = StreamlitServer(bare_script, Path(tmp) / "bare-data").start()
        app = StreamlitServer(ROOT / "streamlit_app.py", data).start()
        try:
            bare.wait_healthy()
            app.wait_healthy()
            if other is not None:
                other.wait_healthy()
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                bare_page, app_page = browser.new_page(), browser.new_page(viewport={"width": 1400, "height": 1600})
                bare_watch, app_watch = Watcher(bare_page), Watcher(app_page)
                bare_page.goto(bare.url)
                settle(bare_page)
                floors = {}
                for kind in sorted({row.floor for row in chosen if row.floor}):
                    floor_page = browser.new_page(viewport={"width": 1400, "height": 1600})
                    floors[kind] = (floor_page, Watcher(floor_page))
                    floor_page.goto(f"{bare.url}/?{kind}=1")
                    settle(floor_page)
                second = None
                if other is not None:
                    other_page = browser.new_page(viewport={"width": 1400, "height": 1600})
                    second = (other_page, Watcher(other_page), other.url)
                results = _measure(bare_page, bare_watch, app_page, app_watch, app.url, chosen, rounds, floors,
                                   second)
                browser.close()
        finally:
            for server in (bare, app, other):
                if server is not None:
                    server.proc.terminate()  # type: ignore[union-attr]
    return _figures(results, {row.name for row in chosen if row.uses_ledger}, rows)


def context_figure(metric: str, times: list[float], base: float) -> Figure:
    """A median shown for context beside the bare click (no target), with its spread."""
    median = statistics.median(times)
    return Figure(metric, f"{median * 1000:.0f} ms ({median / base:.1f}×)", f"bare: {base * 1000:.0f} ms", "—", None,
                  f"spread {min(times) * 1000:.0f}–{max(times) * 1000:.0f} ms over {len(times)} runs")


def _figures(results: dict[str, list[float]], ledger_rows: set[str], rows: int) -> list[Figure]:
    base = statistics.median(results.pop("bare click"))
    paint = results.pop(BARE_PAINT, None)
    figures = [Figure("bare click (baseline)", f"{base * 1000:.0f} ms", "—", "—", None)]
    for _, label in FLOORS.values():  # Streamlit's own table or dialog: this slow in a bare app too
        if floor := results.pop(label, None):
            figures.append(context_figure(label, floor, base))
    if paint:
        figures.append(Figure("bare page reload (baseline)", f"{statistics.median(paint) * 1000:.0f} ms", "—", "—",
                              None))
    for name, times in results.items():
        median = statistics.median(times)
        is_paint = bool(paint) and name.removesuffix(AGAINST).endswith("first paint")
        ref, limit = (statistics.median(paint), _paint_target(rows)) if is_paint else (base, 1.5)
        figures.append(Figure(f"{'' if is_paint else 'click: '}{name}" + (f" ({rows:,} runs)" if name.removesuffix(AGAINST)
                                                                           in ledger_rows else ""),
                              f"{median * 1000:.0f} ms ({median / ref:.1f}×)",
                              f"{'bare page' if is_paint else 'bare'}: {ref * 1000:.0f} ms",
                              f"≤ {limit:g}× bare", median <= limit * ref,
                              f"spread {min(times) * 1000:.0f}–{max(times) * 1000:.0f} ms over {len(times)} runs"))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--only", default="", help="only the rows whose name contains this, e.g. History")
    parser.add_argument("--against", type=Path, default=None,
                        help="another checkout (e.g. `git worktree add /tmp/before HEAD~1`) timed in the same rounds")
    args = parser.parse_args()
    print(table(run(args.rounds, args.rows, args.only, args.against)))


if __name__ == "__main__":
    main()
