"""History's filters, sorting, counting and paging as PostgreSQL (the SQL side of LedgerStore.query).

Migration 4 adds typed columns generated from the stored text cells (rating, sound, cost, duration, generation time,
a lowercase search text), indexes for each sort key, and a trigram index on the search text when pg_trgm can be
created without a superuser (a trusted extension since PostgreSQL 13); without it search still works, unindexed.
The rules mirror lib.history.view (matches, sort_rows) and are checked by the ledger contract tests.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from lib.history import view as hv
from lib.history.row import STATES

_FINISHED = "('succeeded', 'failed')"
_SAFE_CASTS = """
CREATE OR REPLACE FUNCTION kling_int(t text) RETURNS integer LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN RETURN nullif(btrim(t), '')::numeric::integer; EXCEPTION WHEN others THEN RETURN NULL; END $$;
CREATE OR REPLACE FUNCTION kling_float(t text) RETURNS double precision LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN RETURN nullif(btrim(t), '')::double precision; EXCEPTION WHEN others THEN RETURN NULL; END $$;
CREATE OR REPLACE FUNCTION kling_ts(t text) RETURNS timestamptz LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN RETURN nullif(btrim(t), '')::timestamptz; EXCEPTION WHEN others THEN RETURN NULL; END $$;
"""
_STATE_ORDER = "array_position(ARRAY[" + ", ".join(f"'{s}'" for s in STATES) + "]::text[], state)"
SORT_SQL: dict[str, str] = {
    "Created": "created_ts", "Rating": "q_rating", "Cost (credits)": "q_cost", "Duration (s)": "q_duration",
    "Generation time": "q_took", "State": _STATE_ORDER, "Mode": 'mode COLLATE "C"',
}


def _index_on(name: str, key: str, direction: str) -> str:
    """An index whose forward scan is exactly order_by(key, direction): a page is a LIMIT on it, no sort."""
    return (f"CREATE INDEX kling_ledger_q_{name} ON kling_ledger "
            f"(({key}) {direction} NULLS LAST, created_ts DESC, seq ASC);")


_SORT_INDEXES = "\n".join(
    ["CREATE INDEX kling_ledger_q_created_desc ON kling_ledger (created_ts DESC, seq ASC);",
     "CREATE INDEX kling_ledger_q_created_asc ON kling_ledger (created_ts ASC, seq ASC);"]
    + [_index_on(f"{name}_{d.lower()}", SORT_SQL[key], d) for name, key in
       (("rating", "Rating"), ("cost", "Cost (credits)"), ("duration", "Duration (s)"), ("took", "Generation time"))
       for d in ("DESC", "ASC")]
    + [_index_on(name, SORT_SQL[key], "DESC") for name, key in (("state", "State"), ("mode", "Mode"))])


# The app writes times with a Z suffix (clock.format_time), so kling_ts does not depend on the session's time zone.
MIGRATION_4 = _SAFE_CASTS + f"""
ALTER TABLE kling_ledger
  ADD COLUMN q_rating integer GENERATED ALWAYS AS (coalesce(kling_int(rating), 0)) STORED,
  ADD COLUMN q_sound boolean GENERATED ALWAYS AS (lower(btrim(sound)) IN ('true', '1', 'yes', 'y', 't')) STORED,
  ADD COLUMN q_cost double precision
    GENERATED ALWAYS AS (coalesce(kling_float(credits_consumed), kling_float(estimated_credits))) STORED,
  ADD COLUMN q_duration integer GENERATED ALWAYS AS (kling_int(duration)) STORED,
  ADD COLUMN q_took double precision GENERATED ALWAYS AS (CASE WHEN state IN {_FINISHED} THEN
    greatest(0, extract(epoch FROM coalesce(kling_ts(updated_at), created_ts) - created_ts)) END) STORED,
  ADD COLUMN q_search text GENERATED ALWAYS AS (lower(task_id || ' ' || batch_id || ' ' || prompt || ' ' ||
    shots_json || ' ' || notes || ' ' || elements || ' ' || fail_msg || ' ' || mode || ' ' || aspect_ratio)) STORED;
{_SORT_INDEXES}
CREATE INDEX kling_ledger_q_live ON kling_ledger (account) WHERE origin = 'live';
DO $$ BEGIN
  CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION WHEN others THEN RAISE NOTICE 'pg_trgm is not available: History search runs unindexed';
END $$;
DO $$ BEGIN
  IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
    EXECUTE 'CREATE INDEX kling_ledger_q_search ON kling_ledger USING gin (q_search gin_trgm_ops)';
  END IF;
END $$;
"""

VISIBLE = "(origin <> 'live' OR account = '' OR account = :account)"


def like_escape(text: str) -> str:
    """`text` with LIKE's wildcards and escape character taken literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _day_start(day: Any) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def where(flt: hv.HistoryFilter, account: str | None) -> tuple[str, dict[str, Any]]:
    """The WHERE clause (and its parameters) for hv.matches' rules plus who may see a row."""
    parts: list[str] = []
    params: dict[str, Any] = {}
    if account is not None:
        parts.append(VISIBLE)
        params["account"] = account
    for column, values in (("state", flt.states), ("origin", flt.origins), ("mode", flt.modes)):
        if values:
            parts.append(f"{column} = ANY(:{column}s)")
            params[f"{column}s"] = list(values)
    if flt.sound != "any":
        parts.append("q_sound" if flt.sound == "on" else "NOT q_sound")
    if flt.elements:
        parts.append("lower(',' || elements || ',') LIKE ANY(:elements)")
        params["elements"] = [f"%,{like_escape(e.lower())},%" for e in flt.elements]
    if flt.date_from:
        parts.append("created_ts >= :day_from")
        params["day_from"] = _day_start(flt.date_from)
    if flt.date_to:
        parts.append("created_ts < :day_after")
        params["day_after"] = _day_start(flt.date_to) + timedelta(days=1)
    if flt.min_rating:
        parts.append("q_rating >= :min_rating")
        params["min_rating"] = flt.min_rating
    for n, word in enumerate(flt.text.lower().split()):
        parts.append(f"q_search LIKE :word{n}")
        params[f"word{n}"] = f"%{like_escape(word)}%"
    return (" WHERE " + " AND ".join(parts)) if parts else "", params


def order_by(sort_by: str, descending: bool) -> str:
    """ORDER BY for hv.sort_rows' rules: values missing last, ties newest first, then in recorded order."""
    if sort_by not in SORT_SQL:
        raise ValueError(f"cannot sort by {sort_by!r}; choose one of {', '.join(SORT_SQL)}")
    direction = "DESC" if descending else "ASC"
    if sort_by == "Created":  # never empty; equal times keep the recorded order either way
        return f" ORDER BY created_ts {direction}, seq ASC"
    return f" ORDER BY ({SORT_SQL[sort_by]}) {direction} NULLS LAST, created_ts DESC, seq ASC"


def facet_queries(account: str | None) -> tuple[str, str, dict[str, Any]]:
    """(distinct modes, distinct element names) among the rows `account` sees."""
    visible = f" AND {VISIBLE}" if account is not None else ""
    params = {"account": account} if account is not None else {}
    modes = f"SELECT DISTINCT mode FROM kling_ledger WHERE mode <> ''{visible}"
    elements = ("SELECT DISTINCT btrim(e) FROM kling_ledger, unnest(string_to_array(elements, ',')) AS e "
                f"WHERE elements <> '' AND btrim(e) <> ''{visible}")
    return modes, elements, params


def counts_query(account: str | None) -> tuple[str, dict[str, Any]]:
    """(rows `account` sees, live rows made with another key)."""
    if account is None:
        return "SELECT count(*), 0 FROM kling_ledger", {}
    hidden = "count(*) FILTER (WHERE origin = 'live' AND account <> '' AND account <> :account)"
    return f"SELECT count(*) FILTER (WHERE {VISIBLE}), {hidden} FROM kling_ledger", {"account": account}
