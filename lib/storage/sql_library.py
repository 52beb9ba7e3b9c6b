"""Element records in PostgreSQL for team mode: one `kling_elements` row per element (migration 3 in sql.py).

A row holds the element's library.json record as JSON (local paths relative, `files/<id>/<name>`), keyed by its
id, with a unique index on the lower-cased name (names ignore case). Saving writes only the elements that changed,
so two servers saving at once never lose each other's elements; load-modify-save runs under a PostgreSQL advisory
lock, so every server sees the same rules a file lock gives one server. A counter row (`kling_counters`,
'elements') changes with every write: the cache key sessions and `load` use.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError, OperationalError

from lib.elements.model import Element, ElementError
from lib.elements.transfer import element_from_json, element_to_json

log = logging.getLogger(__name__)

LIBRARY_LOCK = 0x6B6C_6E67_0003  # pg advisory lock key: "klng" + 3 (the element library's load-modify-save)
LOCK_TIMEOUT = "30s"             # as long as the file lock waits in folder mode

_UPSERT = text("INSERT INTO kling_elements (id, name, record) VALUES (:id, :name, :record) "
               "ON CONFLICT (id) DO UPDATE SET name = excluded.name, record = excluded.record, saved_at = now()"
               ).bindparams(bindparam("record", type_=JSONB()))
_BUMP = text("UPDATE kling_counters SET value = value + 1 WHERE name = 'elements'")
_VERSION = text("SELECT value FROM kling_counters WHERE name = 'elements'")


class LibraryLock:
    """A re-entrant lock shared by every server: a thread lock, then a transaction-scoped advisory lock.

    Threads of one process queue on the thread lock first, so at most one pooled connection per process waits
    in PostgreSQL (waiting connections can never starve the holder of the pool)."""

    def __init__(self, engine: Engine, key: int = LIBRARY_LOCK) -> None:
        self.engine, self.key = engine, key
        self._mutex = threading.RLock()
        self._depth = 0
        self._conn: Connection | None = None

    def __enter__(self) -> LibraryLock:
        self._mutex.acquire()
        if self._depth == 0:
            try:
                self._conn = self._take()
            except BaseException:
                self._mutex.release()
                raise
        self._depth += 1
        return self

    def _take(self) -> Connection:
        conn = self.engine.connect()
        try:
            conn.begin()
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'")
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": self.key})
        except OperationalError as exc:
            conn.close()
            raise ElementError(["The element library is busy (another server is saving it): try again in a "
                                "moment."]) from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._depth -= 1
        try:
            if self._depth == 0 and self._conn is not None:
                conn, self._conn = self._conn, None
                conn.rollback()  # ends the transaction, which releases the advisory lock
                conn.close()
        finally:
            self._mutex.release()


class SqlRecords:
    """The ElementRecords seam in PostgreSQL: rows keyed by element id, written per element."""

    def __init__(self, engine: Engine, root: Path) -> None:
        self.engine, self.root = engine, Path(root)
        self.lock = LibraryLock(engine)
        self._memo: tuple[int, dict[str, Element]] | None = None

    def version(self) -> int:
        """The library's write counter: changes with every committed write (by any server)."""
        with self.engine.connect() as conn:
            return int(conn.execute(_VERSION).scalar_one())

    def load(self) -> dict[str, Element]:
        """Every readable element by id, oldest first; re-read only when the counter moved."""
        with self.engine.connect() as conn:
            version = int(conn.execute(_VERSION).scalar_one())
            memo = self._memo
            if memo is not None and memo[0] == version:
                return dict(memo[1])
            rows = conn.execute(text("SELECT id, record FROM kling_elements ORDER BY seq")).all()
        elements = {}
        for element_id, record in rows:
            element = self._parse(element_id, record)
            if element is not None:
                elements[element.id] = element
        self._memo = (version, elements)  # read before the rows: a write in between only forces a re-read
        return dict(elements)

    def _parse(self, element_id: str, record: Any) -> Element | None:
        try:
            element = element_from_json(record, self.root)
            if element.id != element_id:
                raise ValueError(f"its record names id {element.id!r}")
            return element
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("element row %s is unreadable (%s); it is left as it is", element_id, exc)
            return None

    def write(self, changed: Sequence[Element], removed: Collection[str]) -> None:
        """Drop `removed`, then upsert `changed`, in one transaction; a taken name raises ElementError."""
        if not changed and not removed:
            return
        try:
            with self.engine.begin() as conn:
                if removed:
                    conn.execute(text("DELETE FROM kling_elements WHERE id = ANY(:ids)"), {"ids": list(removed)})
                for element in changed:
                    conn.execute(_UPSERT, {"id": element.id, "name": element.name,
                                           "record": element_to_json(element, self.root)})
                conn.execute(_BUMP)
        except IntegrityError as exc:
            names = ", ".join(sorted(e.name for e in changed))
            raise ElementError([f"An element named {names} was just saved by another server: reload the page "
                                "and pick another name."]) from exc
