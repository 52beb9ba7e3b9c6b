"""Why Elements' cards are keyed by their place on the page: a bare page of twelve cards like Elements' own,
turned page by page in headless Chromium, beside a bare click measured in the same run.

Variants (one server each, interleaved round by round):
- element: container and buttons keyed by the element they show (a page turn brings new keys);
- slot: keyed by the card's place on the page (a page turn updates the same keys), as Elements does;
- slot-no-images, slot-no-buttons-or-images: what the images and the buttons cost on top.

Run: python bench/bench_card_keys.py [--rounds N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import CHROMIUM, CHROMIUM_ARGS, Figure, StreamlitServer, table  # noqa: E402
from _latency import settle  # noqa: E402
from browser_latency import BARE, Watcher, context_figure  # noqa: E402

CARDS = '''import io, os
import streamlit as st
from PIL import Image
MODE = os.environ["CARD_MODE"]

@st.cache_data
def thumb(i):
    out = io.BytesIO()
    Image.new("RGB", (140, 140), (i * 7 % 255, 90, 140)).save(out, "JPEG")
    return out.getvalue()

if st.button("next page", key="next"):
    st.session_state["page"] = st.session_state.get("page", 0) + 1
page = st.session_state.get("page", 0)
for row in range(4):
    for col, column in enumerate(st.columns(3)):
        slot = row * 3 + col
        i = page * 12 + slot
        k = f"e{i}" if MODE == "element" else f"s{slot}"
        with column, st.container(border=True, key=f"card_{k}"):
            st.markdown(f"##### @element_{i}")
            if "images" not in MODE:
                st.image([thumb(i), thumb(i + 1)], caption=["front.png", "side.png"], width=70)
            st.badge("uploaded · expires in 70 h", color="green")
            st.caption(f"2 images · element number {i}")
            if "buttons" in MODE:
                continue
            st.button("Use in Compose", key=f"use_{k}", type="primary", icon="➕", width="stretch")
            left, right = st.columns(2)
            left.button("Edit / rename", key=f"edit_{k}", width="stretch")
            right.button("Refresh upload", key=f"refresh_{k}", width="stretch")
            left.button("Duplicate", key=f"duplicate_{k}", width="stretch")
            right.button("Delete", key=f"delete_{k}", width="stretch")
st.write("ready")
'''
MODES = {"element": "keyed by element", "slot": "keyed by slot", "slot-no-images": "keyed by slot, no images",
         "slot-no-buttons-or-images": "keyed by slot, no images or buttons"}


def run(rounds: int = 9) -> list[Figure]:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "bare.py").write_text(BARE)
        (folder / "cards.py").write_text(CARDS)
        servers = {"bare": StreamlitServer(folder / "bare.py", folder / "data-bare").start()}
        for mode in MODES:
            servers[mode] = StreamlitServer(folder / "cards.py", folder / f"data-{mode}", CARD_MODE=mode).start()
        times: dict[str, list[float]] = {name: [] for name in servers}
        try:
            for server in servers.values():
                server.wait_healthy()
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                pages = {}
                for name, server in servers.items():
                    page = browser.new_page(viewport={"width": 1400, "height": 1600})
                    pages[name] = (page, Watcher(page))
                    page.goto(server.url)
                    settle(page)
                for _ in range(rounds):
                    for name, (page, watch) in pages.items():
                        label = "bare click" if name == "bare" else "next page"
                        times[name].append(watch.timed(lambda p=page, lb=label: p.get_by_role("button", name=lb).click()))
                        settle(page)
                browser.close()
        finally:
            for server in servers.values():
                server.proc.terminate()  # type: ignore[union-attr]
    base = statistics.median(times.pop("bare"))
    figures = [Figure("bare click (baseline)", f"{base * 1000:.0f} ms", "—", "—", None)]
    return figures + [context_figure(f"12 cards, next page: {MODES[name]}", runs, base) for name, runs in times.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    print(table(run(parser.parse_args().rounds)))


if __name__ == "__main__":
    main()
