"""Team storage in PostgreSQL (SQLAlchemy 2 + psycopg 3): the History ledger and Compose drafts.

A ledger row is stored as the same text cells the CSV file holds (`HistoryRow.to_csv_dict`), so row.py stays the
one owner of the schema and its parsing, and a row someone edited into nonsense is reported, never fatal, exactly
like a bad CSV line. `created_ts` and `state` are indexed for sorting and filtering; the lease columns belong to
lib.tasks.leases. The schema is versioned SQL, applied at start under an advisory lock.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import threading
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, Connection, DateTime, Engine, MetaData, Table, Text, bindparam, create_engine, text
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.engine import make_url

from lib.compose.drafts import FORMS_KEPT, fits_form_field, valid_form_id
from lib.compose.form import FORM_DEFAULTS, default_form
from lib.history.errors import DuplicateTaskError, UnknownTaskError
from lib.history.ledger import MergeResult
from lib.history.query import HistoryOverview, HistoryPage
from lib.history.row import COLUMNS, UNFINISHED_STATES, HistoryRow, editable_fields
from lib.history.transfer import ImportReport
from lib.history.view import Facets, HistoryFilter
from lib.storage import sql_history as q
from lib.storage.sql_history import MIGRATION_4

log = logging.getLogger(__name__)

SCHEMA_LOCK = 0x6B6C_6E67_0001  # pg advisory lock key: "klng" + 1; two servers starting together wait here
_CHUNK = 1_000

_CELLS = ",\n".join(f'  "{name}" text NOT NULL DEFAULT \'\'' for name in COLUMNS if name != "task_id")
MIGRATIONS: tuple[tuple[int, str], ...] = (
    (1, f"""
CREATE TABLE kling_ledger (
  seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  task_id text PRIMARY KEY,
  created_ts timestamptz,
{_CELLS},
  lease_owner text,
  lease_expires double precision
);
CREATE INDEX kling_ledger_created ON kling_ledger (created_ts);
CREATE INDEX kling_ledger_state ON kling_ledger (state);
CREATE INDEX kling_ledger_lease ON kling_ledger (lease_expires) WHERE lease_owner IS NOT NULL;
CREATE TABLE kling_counters (name text PRIMARY KEY, value bigint NOT NULL);
INSERT INTO kling_counters VALUES ('ledger', 0);
CREATE TABLE kling_drafts (name text PRIMARY KEY, saved_at text NOT NULL, form jsonb NOT NULL);
CREATE TABLE kling_create_slots (account text NOT NULL, at double precision NOT NULL);
CREATE INDEX kling_create_slots_at ON kling_create_slots (account, at);
"""),
    (2, """
CREATE TABLE kling_forms (form_id text PRIMARY KEY, saved_at timestamptz NOT NULL DEFAULT now(), form jsonb NOT NULL);
CREATE INDEX kling_forms_saved ON kling_forms (saved_at);
"""),
    (3, """
CREATE TABLE kling_elements (
  seq bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  id text PRIMARY KEY,
  name text NOT NULL,
  record jsonb NOT NULL,
  saved_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX kling_elements_name ON kling_elements (lower(name));
INSERT INTO kling_counters VALUES ('elements', 0);
"""),  # the element library (lib.storage.sql_library): one row per element, names unique ignoring case
    (4, MIGRATION_4),  # History's typed, indexed query columns (lib.storage.sql_history)
)
SCHEMA_VERSION = max(version for version, _ in MIGRATIONS)


def engine_url(url: str) -> str:
    """Accept plain `postgresql://` (and `postgres://`) URLs and use the psycopg 3 driver for them."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain):]
    return url


def redacted(url: str) -> str:
    """The URL without its password, for logs and messages."""
    return make_url(engine_url(url)).render_as_string(hide_password=True)


def migrate(engine: Engine) -> int:
    """Create or upgrade the schema under an advisory lock; returns the schema version now in place."""
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
        conn.execute(text("CREATE TABLE IF NOT EXISTS kling_schema (version integer NOT NULL)"))
        applied = set(conn.execute(text("SELECT version FROM kling_schema")).scalars())
        for version, sql in sorted(MIGRATIONS):  # by set, not max: a version merged late still runs
            if version not in applied:
                conn.exec_driver_sql(sql)
                conn.execute(text("INSERT INTO kling_schema VALUES (:v)"), {"v": version})
                log.info("database schema upgraded to version %d", version)
        return max(applied | {SCHEMA_VERSION})


_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def shared_engine(url: str) -> Engine:
    """One engine (connection pool) per database URL and process, its schema migrated on first use."""
    url = engine_url(url)
    with _engines_lock:
        if url not in _engines:
            engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
            migrate(engine)
            _engines[url] = engine
        return _engines[url]


def _record(row: HistoryRow) -> dict[str, Any]:
    return {**row.to_csv_dict(), "created_ts": row.created_at}


def _bump(conn: Connection) -> None:
    conn.execute(text("UPDATE kling_counters SET value = value + 1 WHERE name = 'ledger'"))


_LEDGER = Table("kling_ledger", MetaData(), *(Column(name, Text) for name in COLUMNS),
                Column("created_ts", DateTime(timezone=True)))  # for inserts; the DDL is MIGRATIONS
_SELECT = "SELECT seq, " + ", ".join(f'"{c}"' for c in COLUMNS) + " FROM kling_ledger"


class SqlLedger:
    """The LedgerStore in PostgreSQL: upserts keyed by task id, one counter for `version`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = insert(_LEDGER)
        # unreadable(): each row checked so far, by seq: (its row version, the reason when it does not parse)
        self._checked: dict[int, tuple[str, str | None]] = {}
        self._checked_lock = threading.Lock()

    def version(self) -> tuple[int, ...]:
        """The ledger's write counter: changes with every committed row change."""
        with self.engine.connect() as conn:
            return (int(conn.execute(text("SELECT value FROM kling_counters WHERE name = 'ledger'")).scalar_one()),)

    def rows(self) -> list[HistoryRow]:
        """Every readable row, oldest first (in the order they were recorded)."""
        return [row for _, row, _ in self._scan(f"{_SELECT} ORDER BY seq") if row is not None]

    def unfinished(self) -> list[HistoryRow]:
        """Rows still queued, running or unknown (an indexed query, not a scan of finished rows)."""
        sql = f"{_SELECT} WHERE state = ANY(:states) ORDER BY seq"
        found = self._scan(sql, {"states": sorted(UNFINISHED_STATES)})
        return [row for _, row, _ in found if row is not None and row.state in UNFINISHED_STATES]

    def unreadable(self) -> list[tuple[int, str]]:
        """(seq, reason) of stored rows whose cells no longer parse; they are left untouched.

        Only rows written since the last call are parsed again: every write gives a row a new version
        (PostgreSQL's `xmin`), so one narrow query of (seq, version) says which rows to read; a row that changes
        between the two queries is simply parsed again next time."""
        with self._checked_lock, self.engine.connect() as conn:
            versions = dict(conn.execute(text("SELECT seq, xmin::text FROM kling_ledger")).all())  # Rows are pairs
            checked = {seq: self._checked[seq] for seq in versions if seq in self._checked}  # deleted rows drop out
            changed = [seq for seq, version in versions.items() if checked.get(seq, ("",))[0] != version]
            for start in range(0, len(changed), _CHUNK):
                part = changed[start:start + _CHUNK]
                for seq, row, why in self._scan(f"{_SELECT} WHERE seq = ANY(:seqs)", {"seqs": part}, conn):
                    checked[seq] = (versions[seq], None if row is not None else why)
            self._checked = checked
        return sorted((seq, why) for seq, (_, why) in checked.items() if why is not None)

    def warm(self) -> threading.Thread:
        """Run the first unreadable-row check (every row parsed once) in the background, so the first History
        visit after a server start finds only the rows written since to parse."""
        def check() -> None:
            try:
                self.unreadable()
            except Exception as exc:  # noqa: BLE001 - a failed warm-up only means History checks later
                log.warning("the ledger's first unreadable-row check failed (%s); History will check", exc)

        thread = threading.Thread(target=check, name="ledger-first-check", daemon=True)
        thread.start()
        return thread

    def get(self, task_id: str) -> HistoryRow | None:
        """The row for `task_id`, or None (also when its cells are unreadable)."""
        found = self._scan(f"{_SELECT} WHERE task_id = :id", {"id": task_id})
        return found[0][1] if found else None

    def append(self, row: HistoryRow) -> HistoryRow:
        """Record a new task; DuplicateTaskError when its id is already recorded (by any server)."""
        with self.engine.begin() as conn:
            added = conn.execute(self._insert.on_conflict_do_nothing(index_elements=["task_id"])
                                 .returning(text("task_id")), _record(row)).first()
            if added is None:
                raise DuplicateTaskError(f"Task {row.task_id} is already in the history.")
            _bump(conn)
        return row

    def update(self, task_id: str, /, **fields: Any) -> HistoryRow:
        """Change fields of one row under a row lock (updated_at defaults to now); return the new row."""
        fields = editable_fields(fields)
        with self.engine.begin() as conn:
            found = self._scan(f"{_SELECT} WHERE task_id = :id FOR UPDATE", {"id": task_id}, conn)
            old = found[0][1] if found else None
            if old is None:
                raise UnknownTaskError(f"Task {task_id} is not in the history, or its row is unreadable.")
            new = dataclasses.replace(old, **fields)
            cells = {k: v for k, v in _record(new).items() if k != "task_id"}
            assignments = ", ".join(f'"{name}" = :{name}' for name in cells)
            conn.execute(text(f"UPDATE kling_ledger SET {assignments} WHERE task_id = :task_id"),
                         {**cells, "task_id": task_id})
            _bump(conn)
        return new

    def delete(self, task_ids: Collection[str]) -> int:
        """Remove rows; returns how many were removed."""
        if not task_ids:
            return 0
        with self.engine.begin() as conn:
            gone = conn.execute(text("DELETE FROM kling_ledger WHERE task_id = ANY(:ids)"),
                                {"ids": list(task_ids)}).rowcount
            if gone:
                _bump(conn)
        return gone

    def merge(self, report: ImportReport) -> MergeResult:
        """Add imported rows whose task id is not yet recorded; never changes existing rows."""
        first: dict[str, HistoryRow] = {}
        for row in report.rows_ok:  # a repeated id in one import: its first row counts, as in the CSV ledger
            first.setdefault(row.task_id, row)
        firsts = list(first.values())
        new: set[str] = set()
        stmt = self._insert.on_conflict_do_nothing(index_elements=["task_id"]).returning(text("task_id"))
        with self.engine.begin() as conn:
            for start in range(0, len(firsts), _CHUNK):
                chunk = firsts[start:start + _CHUNK]
                new.update(conn.execute(stmt, [_record(r) for r in chunk]).scalars())
            if new:
                _bump(conn)
        added: list[str] = []
        skipped: list[str] = []
        for row in report.rows_ok:  # in the report's order, as the CSV ledger reports it
            fresh = row.task_id in new
            new.discard(row.task_id)
            (added if fresh else skipped).append(row.task_id)
        return MergeResult(tuple(added), tuple(skipped))

    def query(self, flt: HistoryFilter, sort_by: str = "Created", descending: bool = True, offset: int = 0,
              limit: int = 50, *, account: str | None = None) -> HistoryPage:
        """One page of the rows `account` may see that pass `flt`, and the match count: filtered, sorted, counted
        and paged by PostgreSQL on indexed columns (rows whose cells no longer parse are left off the page)."""
        clause, params = q.where(flt, account)
        page = f"{_SELECT}{clause}{q.order_by(sort_by, descending)} LIMIT :limit OFFSET :offset"
        with self.engine.connect() as conn:
            total = int(conn.execute(text(f"SELECT count(*) FROM kling_ledger{clause}"), params).scalar_one())
            found = self._scan(page, {**params, "limit": max(0, limit), "offset": max(0, offset)}, conn)
        return HistoryPage([row for _, row, _ in found if row is not None], total)

    def overview(self, account: str | None = None) -> HistoryOverview:
        """Runs `account` sees, live runs hidden from it, and the modes and element names in use."""
        counts, params = q.counts_query(account)
        modes, elements, facet_params = q.facet_queries(account)
        with self.engine.connect() as conn:
            total, hidden = conn.execute(text(counts), params).one()
            mode_names = sorted(conn.execute(text(modes), facet_params).scalars())
            element_names = sorted(conn.execute(text(elements), facet_params).scalars(), key=str.lower)
        return HistoryOverview(int(total), int(hidden), Facets(tuple(mode_names), tuple(element_names), None, None))

    def _scan(self, sql: str, params: Mapping[str, Any] | None = None,
              conn: Connection | None = None) -> list[tuple[int, HistoryRow | None, str]]:
        if conn is None:
            with self.engine.connect() as own:
                return self._scan(sql, params, own)
        out = []
        for record in conn.execute(text(sql), dict(params or {})).mappings():
            seq = record["seq"]
            try:
                out.append((seq, HistoryRow.from_csv_dict(record), ""))
            except (ValueError, TypeError, OverflowError, RecursionError) as exc:
                log.warning("ledger row %s (seq %d) is unreadable (%s); it is left as it is", record["task_id"],
                            seq, exc)
                out.append((seq, None, str(exc)[:200]))
        return out


class SqlDrafts:
    """The DraftsStore in PostgreSQL: one row per named draft (saving one never rewrites the others)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def names(self) -> list[str]:
        """Draft names, newest first."""
        with self.engine.connect() as conn:
            return list(conn.execute(text("SELECT name FROM kling_drafts ORDER BY saved_at DESC, name")).scalars())

    def save(self, name: str, form: Mapping[str, Any]) -> str:
        """Save (or overwrite) a draft; returns the cleaned name. ValueError for an empty name."""
        name = " ".join(name.split())[:60]  # the same cleaning as lib.compose.drafts.DraftStore
        if not name:
            raise ValueError("Give the draft a name, e.g. 'beach run v2'.")
        fields = {k: copy.deepcopy(form[k]) for k in FORM_DEFAULTS if k in form}
        stmt = text("INSERT INTO kling_drafts VALUES (:name, :at, :form) ON CONFLICT (name) DO UPDATE "
                    "SET saved_at = excluded.saved_at, form = excluded.form").bindparams(
            bindparam("form", type_=JSONB()))
        with self.engine.begin() as conn:
            conn.execute(stmt, {"name": name, "at": datetime.now(UTC).isoformat(timespec="seconds"), "form": fields})
        return name

    def load(self, name: str) -> dict[str, Any]:
        """A draft's form fields (defaults filled in); KeyError when there is no such draft."""
        with self.engine.connect() as conn:
            saved = conn.execute(text("SELECT form FROM kling_drafts WHERE name = :n"), {"n": name}).scalar()
        if saved is None:
            raise KeyError(name)
        form = default_form()
        form.update({k: v for k, v in saved.items() if k in FORM_DEFAULTS})
        return form

    def delete(self, name: str) -> None:
        """Remove a draft (no error when it is already gone)."""
        with self.engine.begin() as conn:
            conn.execute(text("DELETE FROM kling_drafts WHERE name = :n"), {"n": name})

    def save_form(self, form_id: str, form: Mapping[str, Any]) -> None:
        """Keep the Compose form a `?form=<id>` address names, for every server (only form fields, never a key)."""
        if not valid_form_id(form_id):
            raise ValueError("not a form id")
        fields = {k: copy.deepcopy(form[k]) for k in FORM_DEFAULTS if k in form}
        stmt = text("INSERT INTO kling_forms (form_id, form) VALUES (:id, :form) ON CONFLICT (form_id) DO UPDATE "
                    "SET saved_at = now(), form = excluded.form").bindparams(bindparam("form", type_=JSONB()))
        with self.engine.begin() as conn:
            conn.execute(stmt, {"id": form_id, "form": fields})
            conn.execute(text("DELETE FROM kling_forms WHERE form_id IN (SELECT form_id FROM kling_forms "
                              "ORDER BY saved_at DESC OFFSET :keep)"), {"keep": FORMS_KEPT})

    def load_form(self, form_id: str) -> dict[str, Any] | None:
        """The form an address names (defaults filled in), or None for an unknown or malformed id."""
        if not valid_form_id(form_id):
            return None
        with self.engine.connect() as conn:
            saved = conn.execute(text("SELECT form FROM kling_forms WHERE form_id = :id"), {"id": form_id}).scalar()
        if not isinstance(saved, dict):
            return None
        form = default_form()
        form.update({k: v for k, v in saved.items() if k in FORM_DEFAULTS and fits_form_field(FORM_DEFAULTS[k], v)})
        return form

    def all(self) -> dict[str, dict[str, Any]]:
        """Every draft as DraftStore.all() gives it: {name: {"saved_at", "form"}} (used by the copy command)."""
        with self.engine.connect() as conn:
            found = conn.execute(text("SELECT name, saved_at, form FROM kling_drafts")).all()
        return {name: {"saved_at": at, "form": form} for name, at, form in found}

    def put_raw(self, entries: Iterable[tuple[str, str, dict[str, Any]]]) -> list[str]:
        """Add drafts (name, saved_at, form) that are not here yet, unchanged; returns the names added."""
        stmt = text("INSERT INTO kling_drafts VALUES (:name, :at, :form) ON CONFLICT (name) DO NOTHING "
                    "RETURNING name").bindparams(bindparam("form", type_=JSONB()))
        added = []
        with self.engine.begin() as conn:
            for name, at, form in entries:
                if conn.execute(stmt, {"name": name, "at": at, "form": form}).first() is not None:
                    added.append(name)
        return added
