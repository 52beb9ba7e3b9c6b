"""Shared bench helpers: the result table, a generated data folder, and sandbox/Streamlit/Chromium processes.

Every bench module exposes `run(data_dir: Path | None = None, quick: bool = False) -> list[Figure]` and a
`main()` that prints its figures; bench/run_all.py gathers them into one table.
"""

from __future__ import annotations

import io
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CHROMIUM = os.environ.get("KLING_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
MIB = 1024 * 1024
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Figure:
    """One row of the results table. `ok` is None for figures shown for context only (no target)."""

    metric: str
    value: str
    baseline: str
    target: str
    ok: bool | None
    note: str = ""

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "info"}[self.ok]


def table(figures: Sequence[Figure]) -> str:
    """The figures as a Markdown table (readable in a terminal and pasteable into docs/PERFORMANCE.md)."""
    head = ("metric", "value", "baseline", "target", "result")
    rows = [head] + [(f.metric, f.value, f.baseline, f.target, f.verdict) for f in figures]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    notes = [f"- {f.metric}: {f.note}" for f in figures if f.note]
    return "\n".join(lines + ([""] + notes if notes else []))


def print_figures(title: str, figures: Sequence[Figure]) -> None:
    """Print one bench's figures; with --json also one JSON line run_all can read."""
    print(f"\n## {title}\n\n{table(figures)}", flush=True)
    if "--json" in sys.argv:
        print("FIGURES-JSON " + json.dumps([asdict(f) for f in figures]), flush=True)


def quantiles(samples: Sequence[float]) -> tuple[float, float]:
    """(median, p90) of the samples."""
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return statistics.median(ordered), p90


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


# ---------------------------------------------------------------------------------------------- data folder

PROMPTS = ("A red fox runs through fresh snow at dawn", "@hero walks into a neon-lit alley, rain falling",
           "Slow dolly shot of a lighthouse in a storm", "Two robots play chess in a quiet library")


def history_rows(count: int, *, origin: str = "sandbox", unfinished: int = 0, seed: int = 1) -> list:
    """`count` plausible finished ledger rows (succeeded/failed), oldest first, plus `unfinished` running ones."""
    from lib.history.row import HistoryRow
    from lib.kling.job import Job, build_payload

    rng = random.Random(seed)
    start = datetime.now(UTC) - timedelta(days=90)
    rows = []
    for i in range(count + unfinished):
        prompt = f"{rng.choice(PROMPTS)} (take {i})"
        payload = build_payload(Job(prompt=prompt, duration=rng.choice((5, 10)), mode=rng.choice(("std", "pro"))))
        created = start + timedelta(minutes=12 * i) if i < count else datetime.now(UTC) - timedelta(seconds=5)
        row = HistoryRow.from_payload(f"task-{seed}-{i:06d}", payload, origin=origin, batch_id=f"b-{i // 4:05d}",
                                      estimated_credits=rng.choice((50, 100, 150)), created_at=created)
        if i < count:
            failed = rng.random() < 0.1
            fields = {"state": "failed", "fail_code": "500", "fail_msg": "Generation failed"} if failed else {
                "state": "succeeded", "result_url": f"https://tempfile.example/{i}.mp4", "credits_consumed": 50.0}
            row = replace(row, **fields, updated_at=created + timedelta(minutes=3))
        else:
            row = replace(row, state="running")
        rows.append(row)
    return rows


def write_ledger(data_dir: Path, rows: list) -> Path:
    """Write rows to `<data_dir>/history.csv` through the ledger's own import path (one rewrite, not 10k)."""
    from lib.history.ledger import Ledger
    from lib.history.transfer import ImportReport

    ledger = Ledger.in_dir(data_dir, fsync=False)
    ledger.merge(ImportReport(rows_ok=rows))
    return ledger.path


def small_png(seed: int, size: int = 320) -> bytes:
    """A small generated PNG."""
    from PIL import Image

    rng = random.Random(seed)
    image = Image.new("RGB", (size, size), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    for _ in range(20):
        x, y = rng.randrange(size), rng.randrange(size)
        image.putpixel((x, y), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def write_library(data_dir: Path, count: int, uploaded_every: int = 3) -> None:
    """`count` elements with two small PNGs each; every `uploaded_every`-th is uploaded to an in-process sandbox."""
    from lib.elements.library import ElementLibrary
    from lib.kie.client import KieClient
    from lib.kie.uploads import upload_file
    from lib.sandbox.server import start_sandbox

    library = ElementLibrary(data_dir)
    with tempfile.TemporaryDirectory() as box, start_sandbox(port=0, data_dir=Path(box)) as sandbox:
        client = KieClient("bench", sandbox.base_url, sandbox.base_url)

        def uploader(source, file_name, upload_path, method="auto"):  # noqa: ANN001, ANN202
            return upload_file(client, source, file_name=file_name, upload_path=upload_path, method=method)

        for i in range(count):
            element = library.create(f"element_{i:02d}", f"Generated element {i}",
                                     files=[(f"e{i}a.png", small_png(2 * i)), (f"e{i}b.png", small_png(2 * i + 1))])
            if i % uploaded_every == 0:
                library.upload(element.id, uploader)


def make_data_dir(data_dir: Path, rows: int = 10_000, elements: int = 50) -> Path:
    """The benchmark data folder: a ledger of `rows` finished tasks and a library of `elements` elements."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if rows:
        write_ledger(data_dir, history_rows(rows))
    if elements:
        write_library(data_dir, elements)
    return data_dir


@contextmanager
def data_folder(data_dir: Path | None, rows: int = 10_000, elements: int = 50) -> Iterator[Path]:
    """The given data folder, or a freshly generated temporary one."""
    if data_dir is not None:
        yield data_dir
        return
    with tempfile.TemporaryDirectory(prefix="kling-bench-") as tmp:
        yield make_data_dir(Path(tmp) / "data", rows, elements)


# ---------------------------------------------------------------------------------------------- processes

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 30.0) -> float:
    """Poll `url` until it answers 200; returns the monotonic time it did."""
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return time.monotonic()
        except requests.RequestException:
            pass
        time.sleep(0.02)
    raise TimeoutError(f"{url} did not answer within {timeout} s")


def stop(proc: subprocess.Popen) -> None:
    """Terminate a process we started, then kill it if it lingers."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any KIE key (benches always run in sandbox mode)."""
    env = {k: v for k, v in os.environ.items() if k != "KIE_API_KEY"}
    env.update(extra)
    return env


@contextmanager
def sandbox_process(data_dir: Path, *extra: str) -> Iterator[str]:
    """`python -m lib.sandbox` in its own process (so its memory is not the client's); yields its base URL."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "lib.sandbox", "--port", str(port), "--data", str(data_dir),
                             *extra], cwd=ROOT, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base + "/sandbox/state", proc)
        yield base
    finally:
        stop(proc)


class StreamlitServer:
    """`streamlit run SCRIPT` in a subprocess; `.started` is the monotonic time of the launch."""

    def __init__(self, script: Path, data_dir: Path, **env: str) -> None:
        self.script, self.port = script, free_port()
        self.env = clean_env(KLING_STUDIO_DATA=str(data_dir), **env)
        self.proc: subprocess.Popen | None = None
        self.started = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> StreamlitServer:
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(self.script), "--server.headless", "true",
             "--server.port", str(self.port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats",
             "false", "--server.fileWatcherType", "none"],
            cwd=self.script.parent, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self

    def wait_healthy(self) -> float:
        """Seconds from launch to /_stcore/health answering."""
        assert self.proc is not None
        return wait_healthy(self.url + "/_stcore/health", self.proc) - self.started

    def cpu_seconds(self) -> float:
        """utime + stime of the server process, read from /proc/<pid>/stat."""
        assert self.proc is not None
        return cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)

    def __enter__(self) -> StreamlitServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) a process has used, from /proc/<pid>/stat (no psutil)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()  # the command name may contain spaces
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # fields 14 and 15 of proc(5)


@contextmanager
def chromium() -> Iterator[object]:
    """A headless Debian Chromium driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as play:
        browser = play.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


DONE_JS = """(marker) => {
  const text = document.body ? document.body.innerText : "";
  const status = document.querySelector('[data-testid="stStatusWidget"]');
  const running = status && /running/i.test(status.innerText);
  return text.includes(marker) && !running;
}"""


def open_rendered(browser: object, url: str, marker: str, timeout_s: float = 60.0) -> object:
    """Open `url` in a new page and wait until `marker` text is shown and the script is no longer running."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page = browser.new_page()  # type: ignore[attr-defined]
    page.goto(url, wait_until="commit", timeout=timeout_s * 1000)
    try:
        page.wait_for_function(DONE_JS, arg=marker, timeout=timeout_s * 1000, polling=50)
    except PlaywrightTimeout:
        shown = " ".join(page.inner_text("body").split())[:300]
        page.close()
        raise RuntimeError(f"{url} never showed {marker!r} within {timeout_s:.0f} s; it shows: {shown!r}") from None
    return page


def write_bare_app(folder: Path, text: str = "x") -> Path:
    """The baseline: an empty Streamlit page, `import streamlit as st; st.write("x")`."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "bare_app.py"
    script.write_text(f"import streamlit as st\n\nst.write({text!r})\n")
    return script
