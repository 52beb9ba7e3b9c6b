"""Click latency in headless Chromium: each interaction against a bare Streamlit click measured in the same run.

A click is timed from Playwright's click to the server's `script_finished` message on the page's websocket (decoded
with Streamlit's own ForwardMsg protobuf) plus two animation frames. Each interaction runs ROUNDS times, interleaved
with the bare click, and the script prints median and spread beside the issue's target (≤ 1.5× a bare click).
The History rows use a ledger of HISTORY_ROWS runs generated here.

Run: python bench/browser_latency.py [--rounds N] [--rows N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import CHROMIUM, CHROMIUM_ARGS, ROOT, Figure, StreamlitServer, table  # noqa: E402

BARE = '''import streamlit as st
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


def _settle(page: object) -> None:
    page.wait_for_timeout(1500)  # type: ignore[attr-defined]


def _seed(data: Path, rows: int) -> None:
    from bench_history import seed

    from lib.history.ledger import Ledger

    seed(Ledger.in_dir(data), rows)


def interactions(page: object, url: str) -> dict[str, tuple[str, Callable[[], None]]]:
    """name -> (page to open, the action to time); each action is repeatable."""
    toggle = {"on": False}

    def add_shot() -> None:
        page.get_by_role("button", name="➕ Add shot").click()  # type: ignore[attr-defined]

    def remove_shot() -> None:
        page.get_by_role("button", name="✕ Remove").last.click()  # type: ignore[attr-defined]

    def toggle_multi() -> None:
        page.get_by_text("Multi-shot (up to 5 shots)").click()  # type: ignore[attr-defined]
        toggle["on"] = not toggle["on"]

    def search() -> None:
        box = page.get_by_placeholder("prompt, notes, task id, element…")  # type: ignore[attr-defined]
        box.fill("take 1" if box.input_value() != "take 1" else "take 2")
        box.press("Enter")

    return {"Compose: toggle Multi-shot": ("Compose", toggle_multi),
            "Compose: add a shot": ("Compose", add_shot),
            "Compose: remove a shot": ("Compose", remove_shot),
            "History: search": ("History", search)}


def run(rounds: int = 7, rows: int = 10_000) -> list[Figure]:
    """Measure and return the figures (medians, with the spread as a note)."""
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        bare_script = Path(tmp) / "bare.py"
        bare_script.write_text(BARE)
        data = Path(tmp) / "data"
        data.mkdir()
        _seed(data, rows)
        bare = StreamlitServer(bare_script, Path(tmp) / "bare-data").start()
        app = StreamlitServer(ROOT / "streamlit_app.py", data).start()
        try:
            bare.wait_healthy()
            app.wait_healthy()
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                bare_page, app_page = browser.new_page(), browser.new_page(viewport={"width": 1400, "height": 1600})
                bare_watch, app_watch = Watcher(bare_page), Watcher(app_page)
                bare_page.goto(bare.url)
                _settle(bare_page)
                results: dict[str, list[float]] = {"bare click": []}
                for name, (path, action) in interactions(app_page, app.url).items():
                    app_page.goto(f"{app.url}/{path}")
                    _settle(app_page)
                    if name.startswith("Compose: add") or name.startswith("Compose: remove"):
                        if not app_page.get_by_role("button", name="➕ Add shot").count():
                            app_page.get_by_text("Multi-shot (up to 5 shots)").click()
                            _settle(app_page)
                    results[name] = []
                    for _ in range(rounds):
                        results["bare click"].append(bare_watch.timed(
                            lambda: bare_page.get_by_role("button", name="bare click").click()))
                        if name == "Compose: add a shot" and app_page.get_by_role("button", name="✕ Remove").count() >= 4:
                            app_page.get_by_role("button", name="✕ Remove").last.click()
                            _settle(app_page)
                        if name == "Compose: remove a shot" and app_page.get_by_role("button", name="✕ Remove").count() <= 1:
                            app_page.get_by_role("button", name="➕ Add shot").click()
                            _settle(app_page)
                        results[name].append(app_watch.timed(action))
                browser.close()
        finally:
            bare.proc.terminate()  # type: ignore[union-attr]
            app.proc.terminate()  # type: ignore[union-attr]
    base = statistics.median(results.pop("bare click"))
    figures = [Figure("bare click (baseline)", f"{base * 1000:.0f} ms", "—", "—", None)]
    for name, times in results.items():
        median = statistics.median(times)
        figures.append(Figure(f"click: {name}" + (f" ({rows:,} runs)" if name.startswith("History") else ""),
                              f"{median * 1000:.0f} ms ({median / base:.1f}×)", f"bare: {base * 1000:.0f} ms",
                              "≤ 1.5× bare", median <= 1.5 * base,
                              f"spread {min(times) * 1000:.0f}–{max(times) * 1000:.0f} ms over {len(times)} clicks"))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    print(table(run(args.rounds, args.rows)))


if __name__ == "__main__":
    main()
