"""Team mode: which server follows which task, and KIE's create rate shared by every server.

A follower claims the due rows it will query with a lease (`SELECT … FOR UPDATE SKIP LOCKED`, then a lease owner
and expiry on the row), renews its leases every tick, and releases a task when it is final or at shutdown. A
server that dies simply stops renewing: after `lease_s` another server claims its tasks. Times come from an
injectable clock (servers' clocks must agree to well within `lease_s`; NTP does).
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Collection, Sequence

from sqlalchemy import Engine, text

from lib.history.row import UNFINISHED_STATES
from lib.tasks.submit import KIE_CREATE_LIMIT, KIE_CREATE_WINDOW_S

log = logging.getLogger(__name__)

LEASE_S = 90.0   # several follower ticks and a slow recordInfo; short enough that a dead server's tasks move on
RATE_LOCK = 0x6B6C_6E67_0002  # advisory lock class for create pacing (with the account's hash as second key)

_CLAIM = text("""
WITH free AS (
  SELECT task_id FROM kling_ledger
  WHERE task_id = ANY(:ids) AND state = ANY(:states)
    AND (lease_owner IS NULL OR lease_owner = :me OR lease_expires < :now)
  ORDER BY seq LIMIT :n
  FOR UPDATE SKIP LOCKED
)
UPDATE kling_ledger AS l SET lease_owner = :me, lease_expires = :until
FROM free WHERE l.task_id = free.task_id
RETURNING l.task_id
""")


def server_name() -> str:
    """A lease owner unique to this process (host, pid and a random part, so a restart is a new owner)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaseClaimer:
    """This server's leases on ledger rows in the shared database."""

    def __init__(self, engine: Engine, owner: str | None = None, lease_s: float = LEASE_S,
                 clock: Callable[[], float] = time.time) -> None:
        self.engine, self.owner, self.lease_s, self.clock = engine, owner or server_name(), lease_s, clock

    def claim(self, task_ids: Sequence[str], limit: int) -> set[str]:
        """Lease up to `limit` of these unfinished tasks (free, expired or already ours); returns those we hold.
        Rows another server is claiming at this very moment are skipped, never waited for."""
        if not task_ids or limit <= 0:
            return set()
        now = self.clock()
        with self.engine.begin() as conn:
            found = conn.execute(_CLAIM, {"ids": list(task_ids), "states": sorted(UNFINISHED_STATES), "me": self.owner,
                                          "now": now, "until": now + self.lease_s, "n": limit}).scalars()
            return set(found)

    def renew(self) -> set[str]:
        """Extend every lease this server holds on an unfinished task; returns their task ids."""
        now = self.clock()
        with self.engine.begin() as conn:
            found = conn.execute(text(
                "UPDATE kling_ledger SET lease_expires = :until WHERE lease_owner = :me AND state = ANY(:states) "
                "AND lease_expires >= :now RETURNING task_id"),
                {"until": now + self.lease_s, "me": self.owner, "now": now, "states": sorted(UNFINISHED_STATES)})
            return set(found.scalars())

    def release(self, task_ids: Collection[str]) -> None:
        """Give up our leases on these tasks (they are final, or we stop)."""
        if task_ids:
            with self.engine.begin() as conn:
                conn.execute(text("UPDATE kling_ledger SET lease_owner = NULL, lease_expires = NULL "
                                  "WHERE lease_owner = :me AND task_id = ANY(:ids)"),
                             {"me": self.owner, "ids": list(task_ids)})

    def release_all(self) -> None:
        """Give up every lease this server holds (a clean shutdown hands its tasks over at once)."""
        with self.engine.begin() as conn:
            conn.execute(text("UPDATE kling_ledger SET lease_owner = NULL, lease_expires = NULL "
                              "WHERE lease_owner = :me"), {"me": self.owner})

    def end(self, task_id: str) -> None:
        """End whoever's lease is on a task (a callback for it landed here): the next claim takes it."""
        with self.engine.begin() as conn:
            conn.execute(text("UPDATE kling_ledger SET lease_owner = NULL, lease_expires = NULL "
                              "WHERE task_id = :id"), {"id": task_id})

    def holder(self, task_id: str) -> str | None:
        """Who holds a live lease on the task now (None: nobody)."""
        with self.engine.connect() as conn:
            return conn.execute(text("SELECT lease_owner FROM kling_ledger WHERE task_id = :id "
                                     "AND lease_expires >= :now"), {"id": task_id, "now": self.clock()}).scalar()


class SharedRateLimiter:
    """KIE's 20 creates per 10 s per account, counted in the database so every server shares one window.
    The same `wait_turn()` as lib.tasks.submit.RateLimiter."""

    def __init__(self, engine: Engine, account: str, limit: int = KIE_CREATE_LIMIT,
                 window_s: float = KIE_CREATE_WINDOW_S, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.engine, self.account, self.limit, self.window_s = engine, account, limit, window_s
        self.clock, self.sleep = clock, sleep

    def try_turn(self) -> float:
        """Take a create slot now and return 0, or return how long to wait before trying again."""
        with self.engine.begin() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:cls, hashtext(:account))"),
                         {"cls": RATE_LOCK & 0x7FFF_FFFF, "account": self.account})
            now = self.clock()
            conn.execute(text("DELETE FROM kling_create_slots WHERE account = :a AND at <= :edge"),
                         {"a": self.account, "edge": now - self.window_s})
            sent = conn.execute(text("SELECT at FROM kling_create_slots WHERE account = :a ORDER BY at"),
                                {"a": self.account}).scalars().all()
            if len(sent) < self.limit:
                conn.execute(text("INSERT INTO kling_create_slots VALUES (:a, :now)"), {"a": self.account, "now": now})
                return 0.0
            return max(sent[len(sent) - self.limit] + self.window_s - now, 0.001)

    def wait_turn(self) -> float:
        """Block until another task may be created on this account by any server; returns the seconds waited."""
        waited = 0.0
        while (delay := self.try_turn()) > 0:
            self.sleep(delay)
            waited += delay
        return waited
