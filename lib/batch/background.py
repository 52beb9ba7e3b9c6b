"""Batches in the background: one runner thread per batch per process (a closed tab does not stop it), and the
server's resume of batches left running by a restart (lib.tasks.service starts it)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from lib.batch.runner import Batch, Sender, batch_pace, list_batches, run_batch
from lib.kie.client import KieClient
from lib.storage.base import LedgerStore, LibraryStore
from lib.tasks.submit import RateLimiter

log = logging.getLogger(__name__)

_lock = threading.Lock()
_threads: dict[str, tuple[threading.Thread, threading.Event]] = {}  # one runner per batch per process


def is_running(batch_id: str) -> bool:
    """True while this process is sending the batch."""
    with _lock:
        entry = _threads.get(batch_id)
        return entry is not None and entry[0].is_alive()


def start_batch(data_dir: Path, batch_id: str, sender: Sender) -> bool:
    """Send the batch in a background thread (a closed tab does not stop it); False when already running."""
    with _lock:
        entry = _threads.get(batch_id)
        if entry is not None and entry[0].is_alive():
            return False
        stop = threading.Event()

        def work() -> None:
            try:
                run_batch(data_dir, batch_id, sender, stop)
            except Exception:  # the batch file keeps every state written so far; a restart resumes it
                log.exception("batch %s stopped", batch_id)

        thread = threading.Thread(target=work, name=f"kling-batch-{batch_id}", daemon=True)
        _threads[batch_id] = (thread, stop)
        thread.start()
        return True


def pause_batch(batch_id: str) -> None:
    """Ask the runner to stop after the row in flight."""
    with _lock:
        entry = _threads.get(batch_id)
    if entry is not None:
        entry[1].set()


def resume_unfinished(data_dir: Path, sender_for: Callable[[Batch], Sender | None]) -> list[str]:
    """At server start: resume every batch still marked running (its sender decides who may send it)."""
    started = []
    for batch in list_batches(data_dir):
        sender = sender_for(batch) if batch.status == "running" else None
        if sender is not None and start_batch(data_dir, batch.batch_id, sender):
            started.append(batch.batch_id)
    if started:
        log.info("resumed batches: %s", ", ".join(started))
    return started


def unsent(batches: Iterable[Batch]) -> list[Batch]:
    """Batches with jobs left to send."""
    return [b for b in batches if not b.finished]


def server_senders(ledger: LedgerStore, library: LibraryStore, sandbox_client: KieClient | None,
                   live_client: KieClient | None, callbacks_to: str | None = None) -> Callable[[Batch], Sender | None]:
    """Who may resume a batch in the server with no tab open: sandbox batches the sandbox client, live batches
    the server's own key when it made them (a key typed in a browser waits for that browser's Resume)."""
    limiters = {id(c): RateLimiter() for c in (sandbox_client, live_client) if c is not None}

    def sender_for(batch: Batch) -> Sender | None:
        client = sandbox_client if batch.origin == "sandbox" else live_client
        if client is None or (batch.origin == "live" and client.account != batch.account):
            return None
        return Sender(client, ledger, library, limiters[id(client)], batch_pace(), callbacks_to)

    return sender_for
