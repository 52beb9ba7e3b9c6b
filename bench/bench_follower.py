"""The server-side follower: recordInfo queries per task with and without callbacks, and its CPU when idle.

Everything runs in this process against the offline sandbox (wall-clock progress): a follower thread, and for the
callback case a small HTTP receiver that hands each verified callback to the follower, as streamlit_app.py does.
Baselines measured in the same run: KIE's polling schedule computed for the same task length (no app code), and
the CPU of an idle Python thread that only sleeps.

Run: python bench/bench_follower.py [--tasks N] [--seconds S]
"""

from __future__ import annotations

import argparse
import re
import resource
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import Figure, table  # noqa: E402

from lib.kie.client import KieClient  # noqa: E402
from lib.kie.schedule import queries_for  # noqa: E402
from lib.sandbox.server import start_sandbox  # noqa: E402
from lib.storage.files import open_file_storage  # noqa: E402
from lib.tasks.callbacks import CallbackReceiver, public_url  # noqa: E402, F401
from lib.tasks.submit import submit_payload  # noqa: E402
from lib.tasks.worker import Follower  # noqa: E402

PAYLOAD = {"model": "kling-3.0/video", "input": {"prompt": "a paper boat", "duration": "3", "mode": "std",
                                                 "sound": False, "aspect_ratio": "16:9", "multi_shots": False}}
KEY = "bench-webhook-key"


def _receiver_server(receiver: CallbackReceiver) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            match = re.fullmatch(r"/kie/callback/([\w-]+)", self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            answer = receiver.handle(match.group(1) if match else "", dict(self.headers), body)
            self.send_response(answer.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def queries_per_task(tasks: int, seconds: float, callbacks: bool) -> tuple[float, float]:
    """(recordInfo queries per task, seconds until all were archived)."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        sandbox = start_sandbox(data_dir=data / "sandbox", progress="wall", seconds=seconds)
        client = KieClient("sandbox-demo", sandbox.base_url, sandbox.base_url)
        storage = open_file_storage(data)
        follower = Follower(storage, lambda row: client, allow_private=(sandbox.base_url,), callbacks_on=callbacks,
                            tick_s=0.25)
        httpd, base = None, None
        if callbacks:
            httpd = _receiver_server(CallbackReceiver(storage.ledger, follower, KEY))
            base = f"http://127.0.0.1:{httpd.server_address[1]}"
            sandbox.backend.configure(callback_origins=base, webhook_key=KEY)
        start = time.monotonic()
        ids = [submit_payload(client, storage.ledger, PAYLOAD, origin="sandbox", batch_id="bench",
                              callbacks_to=base).row.task_id for _ in range(tasks)]
        follower.start()
        try:
            while any(storage.media.video(t) is None for t in ids):
                if time.monotonic() - start > seconds + 120:
                    raise RuntimeError("tasks did not finish")
                time.sleep(0.1)
            took = time.monotonic() - start
        finally:
            follower.stop()
            if httpd is not None:
                httpd.shutdown()
            sandbox.stop()
        total = sum(sandbox.backend.tasks[t].queries for t in ids)
        return total / tasks, took


def idle_cpu(seconds: float) -> tuple[float, float]:
    """(follower CPU %, idle-thread CPU %) over `seconds` with nothing unfinished."""
    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    with tempfile.TemporaryDirectory() as tmp:
        storage = open_file_storage(Path(tmp))
        follower = Follower(storage, lambda row: None, allow_private=False).start()
        before, start = cpu(), time.monotonic()
        time.sleep(seconds)
        ours = (cpu() - before) / (time.monotonic() - start) * 100
        follower.stop()
    stop = threading.Event()
    sleeper = threading.Thread(target=lambda: [stop.wait(1.0) for _ in range(int(seconds) + 2)], daemon=True)
    sleeper.start()
    before, start = cpu(), time.monotonic()
    time.sleep(seconds)
    base = (cpu() - before) / (time.monotonic() - start) * 100
    stop.set()
    return ours, base


def run(tasks: int = 10, seconds: float = 3.0, idle_s: float = 5.0) -> list[Figure]:
    """Measure and return the figures."""
    polled, polled_s = queries_per_task(tasks, seconds, callbacks=False)
    called, called_s = queries_per_task(tasks, seconds, callbacks=True)
    schedule = queries_for(seconds)
    ours, base = idle_cpu(idle_s)
    return [
        Figure(f"follower: recordInfo per task, polling ({seconds:g} s tasks)", f"{polled:.1f}",
               f"KIE schedule: {schedule}", "≈ schedule", polled <= schedule + 1, f"all archived in {polled_s:.1f} s"),
        Figure(f"follower: recordInfo per task, callbacks ({seconds:g} s tasks)", f"{called:.1f}",
               f"polling: {polled:.1f}", "≤ 2", called <= 2, f"all archived in {called_s:.1f} s"),
        Figure("follower: CPU when idle", f"{ours:.2f} %", f"sleeping thread: {base:.2f} %", "≤ 1 %", ours <= 1.0),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    print(table(run(args.tasks, args.seconds)))


if __name__ == "__main__":
    main()
