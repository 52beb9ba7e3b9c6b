"""Regenerate the README screenshots: a fresh sandbox app, one element, one multi-shot job, every page.

Run: python docs/make_screenshots.py   (needs Debian's Chromium at /usr/bin/chromium and Playwright)
"""

from __future__ import annotations

import io
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
from PIL import Image, ImageDraw
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def portrait(colour: str, label: str) -> bytes:
    img = Image.new("RGB", (480, 480), colour)
    draw = ImageDraw.Draw(img)
    draw.ellipse((140, 90, 340, 290), fill="white")
    draw.rectangle((120, 300, 360, 470), fill="white")
    draw.text((20, 20), label, fill="black")
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def settle(page, ms: int = 2500) -> None:
    page.wait_for_selector('[data-testid="stApp"]')
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000)
    page.wait_for_timeout(ms)


def _pick(page, label: str, count: int) -> None:
    """Open a multiselect and pick its first `count` options, one at a time (each pick reruns the page)."""
    for _ in range(count):
        page.get_by_label(label).click()
        page.get_by_role("option").first.click()
        page.keyboard.press("Escape")
        settle(page, 1500)


def _compare_and_reel(page, url: str) -> None:
    """The synced compare of two demo takes, and the Reel page with two takes."""
    page.goto(url + "/History")
    settle(page)
    _pick(page, "Runs to compare (2–4 finished runs)", 2)
    page.get_by_text("Compare runs").scroll_into_view_if_needed()
    page.wait_for_function("() => [...document.querySelectorAll('video')].filter(v => v.readyState >= 2).length >= 2",
                           timeout=30_000)
    page.locator(".st-key-history_compare_players").screenshot(path=str(OUT / "history-compare.png"))
    page.goto(url + "/Reel")
    settle(page)
    _pick(page, "Takes in the reel", 2)
    page.screenshot(path=str(OUT / "reel.png"), full_page=True)


def main() -> None:
    from lib.elements.library import ElementLibrary
    from lib.kie.client import KieClient
    from lib.kie.uploads import upload_file

    OUT.mkdir(parents=True, exist_ok=True)
    data = Path(tempfile.mkdtemp(prefix="kling-shots-")) / "data"
    data.mkdir(parents=True)
    port, sandbox_port = free_port(), free_port()
    env = {**os.environ, "KLING_STUDIO_DATA": str(data), "KLING_SANDBOX_PORT": str(sandbox_port),
           "KLING_SANDBOX_SECONDS": "4"}
    env.pop("KIE_API_KEY", None)
    app = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.headless", "true",
                            "--server.port", str(port)], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if requests.get(url + "/_stcore/health", timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium",
                                         args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1400, "height": 1900})
            page.goto(url)
            settle(page)  # starts the app's sandbox on sandbox_port
            library = ElementLibrary(data)
            fox = library.create("fox", "a small red fox with a white-tipped tail",
                                 files=[("fox-front.png", portrait("#d9622b", "front")),
                                        ("fox-side.png", portrait("#c2541f", "side"))])
            sandbox = f"http://127.0.0.1:{sandbox_port}"
            client = KieClient("sandbox-demo", sandbox, sandbox)
            library.upload(fox.id, lambda src, **kw: upload_file(client, src, **kw))
            page.goto(url + "/Elements")
            settle(page)
            page.screenshot(path=str(OUT / "elements.png"), full_page=True)

            page.goto(url + "/Compose")
            settle(page)
            page.get_by_text("Multi-shot (up to 5 shots)").click()
            settle(page, 800)
            page.get_by_role("button", name="➕ Add shot").click()
            settle(page, 800)
            for i, (text, secs) in enumerate([("@fox wakes up in a snowy den, soft morning light", "4"),
                                              ("@fox trots across a frozen lake, tracking shot", "4")]):
                box = page.get_by_label(f"Shot {i + 1}", exact=True)
                box.fill(text)
                box.press("Tab")
                settle(page, 500)
                secs_box = page.get_by_label("Seconds").nth(i)
                secs_box.fill(secs)
                secs_box.press("Tab")
                settle(page, 500)
            settle(page)
            page.screenshot(path=str(OUT / "compose.png"), full_page=True)
            page.get_by_role("button", name=re.compile(r"^Submit · ")).click()
            settle(page)
            page.get_by_text("Progress of this session's tasks").scroll_into_view_if_needed()
            try:
                page.wait_for_function("() => [...document.querySelectorAll('video')].some(v => v.readyState >= 2)",
                                       timeout=60_000)
            except Exception:
                page.screenshot(path="/tmp/shots-debug.png", full_page=True)
                raise
            settle(page, 1500)
            page.screenshot(path=str(OUT / "compose-progress.png"), full_page=True)

            from lib.history.ledger import Ledger

            task_id = Ledger.in_dir(data).rows()[0].task_id
            page.goto(url + f"/History?task={task_id}")
            settle(page)
            page.wait_for_function("() => [...document.querySelectorAll('video')].some(v => v.readyState >= 2)",
                                   timeout=30_000)
            page.screenshot(path=str(OUT / "history.png"), full_page=True)
            page.goto(url + "/")
            settle(page)
            page.get_by_role("button", name="Load demo project").click()  # sandbox only: a finished 2×2 grid
            settle(page, 6000)
            page.screenshot(path=str(OUT / "home.png"), full_page=True)
            _compare_and_reel(page, url)
            browser.close()
    finally:
        app.terminate()
        app.wait(timeout=10)
    print("\n".join(str(p) for p in sorted(OUT.glob("*.png"))))


if __name__ == "__main__":
    main()
