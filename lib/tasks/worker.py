"""The server-side follower: one thread per server process follows every unfinished task the server can query.

It starts from the ledger (so it survives restarts), polls on KIE's schedule (or, with callbacks on, on a slow
safety schedule), keeps under KIE's query rate, archives each result as soon as it succeeds, and never blocks a
page: pages only read the ledger. A callback wakes it for one task (`hint`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lib.history.row import HistoryRow
from lib.kie.client import KieClient
from lib.kie.schedule import is_due
from lib.storage.base import Storage
from lib.tasks.follow import TickResult, is_followable, refresh_tasks
from lib.trust.fetch import Allowance

if TYPE_CHECKING:
    from lib.tasks.leases import LeaseClaimer

log = logging.getLogger(__name__)

TICK_S = 1.0
MAX_QUERIES_PER_TICK = 8          # KIE allows about 10 recordInfo queries per second per key
SAFETY_FIRST_S = 60.0             # with callbacks on: the first safety poll a minute after creation …
SAFETY_EVERY_S = 120.0            # … then every two minutes until a callback (or this) finds it final

ClientFor = Callable[[HistoryRow], KieClient | None]


def safety_due(row: HistoryRow, now: float) -> bool:
    """The slow fallback schedule used while callbacks are expected."""
    if row.last_checked_at is None:
        return now - row.created_at.timestamp() >= SAFETY_FIRST_S
    return now - row.last_checked_at.timestamp() >= SAFETY_EVERY_S


@dataclass
class Follower:
    """Follows unfinished tasks from inside the server; `client_for(row)` says who may query a row (None: nobody
    here — e.g. a live task made with a key typed in a browser session, which waits for that key).
    With a `claimer` (team mode) it queries only the rows it holds a lease on, so servers never share a task."""

    storage: Storage
    client_for: ClientFor
    allow_private: Allowance
    callbacks_on: bool = False
    tick_s: float = TICK_S
    clock: Callable[[], float] = time.time
    _hints: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _wake: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _memo: tuple[tuple[int, ...], list[HistoryRow]] | None = None
    queries: int = 0
    claimer: LeaseClaimer | None = None

    def start(self) -> Follower:
        """Run in a daemon thread until stop()."""
        self._thread = threading.Thread(target=self._loop, name="kling-follower", daemon=True)
        self._thread.start()
        log.info("server-side follower started (callbacks %s)", "on" if self.callbacks_on else "off")
        return self

    def stop(self) -> None:
        """Stop the thread (it finishes the query in flight)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self.claimer is not None:
            self.claimer.release_all()  # hand this server's tasks over now rather than after the lease

    def hint(self, task_id: str) -> None:
        """A callback said this task changed: query it on the next tick (its answer is the truth)."""
        with self._lock:
            self._hints.add(task_id)
        if self.claimer is not None:
            self.claimer.end(task_id)  # the callback landed here: this server takes the task on its next tick
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # never let one bad tick end following for the whole server
                log.exception("follower tick failed")
            self._wake.wait(self.tick_s)
            self._wake.clear()

    def _unfinished(self) -> list[HistoryRow]:
        """Unfinished rows, re-read only when the ledger changed (no scan of finished rows per tick)."""
        version = self.storage.ledger.version()
        if self._memo is None or self._memo[0] != version:
            self._memo = (version, self.storage.ledger.unfinished())
        return self._memo[1]

    def _due(self, row: HistoryRow, now: float, hinted: set[str]) -> bool:
        if row.task_id in hinted:
            return True
        if self.callbacks_on:
            return safety_due(row, now)
        last = row.last_checked_at.timestamp() if row.last_checked_at else None
        return is_due(row.created_at.timestamp(), last, now)

    def due(self, now: float | None = None) -> list[tuple[HistoryRow, KieClient]]:
        """The rows to query now, with the client that may query each."""
        now = self.clock() if now is None else now
        with self._lock:
            hinted = set(self._hints)
        out = []
        for row in self._unfinished():
            client = self.client_for(row) if is_followable(row, row.origin) else None
            if client is not None and self._due(row, now, hinted):
                out.append((row, client))
                if self.claimer is None and len(out) >= MAX_QUERIES_PER_TICK:
                    break
        if self.claimer is not None and out:  # team mode: only the rows leased to this server
            mine = self.claimer.claim([row.task_id for row, _ in out], MAX_QUERIES_PER_TICK)
            out = [(row, client) for row, client in out if row.task_id in mine]
        return out

    def run_once(self, now: float | None = None) -> TickResult:
        """One tick: query each due row once, record what changed, archive successes."""
        finished, errors = 0, []
        if self.claimer is not None:
            self.claimer.renew()  # keep the tasks this server follows, due now or not
        due = self.due(now)
        with self._lock:
            self._hints.difference_update(row.task_id for row, _ in due)
        self.queries += len(due)
        results = refresh_tasks(due, self.storage.ledger, self.storage.media, allow_private=self.allow_private)
        for (row, _), (new, err) in zip(due, results, strict=True):
            if err:
                errors.append((row.task_id, err))
            finished += new.finished
            if self.claimer is not None and new.finished:
                self.claimer.release([row.task_id])
        return TickResult(finished, tuple(errors))
