"""History's query seam for the CSV ledger: filter, sort, count and page without walking rows on every click.

One `RowIndex` per (ledger version, account) holds the visible rows, a lowercase search text per row (reused for
rows that did not change since the previous version), and each sort order once computed. Filtered orders are kept in
a small LRU, so a rerun whose filter, sort and ledger are unchanged slices a cached list. `FileQueries` is the mixin
that gives the CSV `Ledger` the `LedgerStore.query` / `overview` methods; SqlLedger answers the same in SQL.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import NamedTuple

from lib.history import view as hv
from lib.history.row import HistoryRow

log = logging.getLogger(__name__)

PAGE_SIZE = 50
_FILTERED_KEPT = 16  # filtered orders remembered per index (each a list of row references)
_INDEXES_KEPT = 4  # (version, account) indexes remembered per ledger


Carried = tuple[Sequence[HistoryRow], dict[int, str]]  # (rows that own the ids, id -> search text)


class HistoryPage(NamedTuple):
    """One page of a query: the rows on it and how many rows match in all."""

    rows: list[HistoryRow]
    total: int


@dataclass(frozen=True)
class HistoryOverview:
    """What the page needs before it queries: visible runs, live runs hidden from this key, filter choices."""

    total: int
    hidden: int
    facets: hv.Facets


def search_text(row: HistoryRow) -> str:
    """The lowercase text a search looks in: the same stored cells the SQL ledger searches."""
    return hv.searchable(row)


def _visible(rows: Sequence[HistoryRow], account: str | None) -> list[HistoryRow]:
    """row.visible_to, inlined: at 100,000 rows a function call per row is most of the walk."""
    if account is None:
        return list(rows)
    return [r for r in rows if r.origin != "live" or not r.account or r.account == account]


def _facets(rows: Sequence[HistoryRow]) -> hv.Facets:
    """The filter choices (modes, element names); the date span is not needed by a query."""
    modes = sorted({r.mode for r in rows} - {""})
    elements = sorted({e for r in rows if r.elements for e in r.elements}, key=str.lower)
    return hv.Facets(tuple(modes), tuple(elements), None, None)


class RowIndex:
    """The rows one account sees in one ledger version, with their search texts, sort orders and filter results."""

    def __init__(self, rows: Sequence[HistoryRow], account: str | None, every: Sequence[HistoryRow] = (),
                 texts: Carried | None = None) -> None:
        self.rows = _visible(rows, account)
        self.hidden = hv.hidden_live_runs(every or rows, account) if account is not None else 0
        self._known: Carried | None = texts
        self._texts: list[str] | None = None
        self._orders: dict[tuple[str, bool], list[int]] = {}
        self._filtered: OrderedDict[tuple[hv.HistoryFilter, str, bool], list[HistoryRow]] = OrderedDict()
        self._facets: hv.Facets | None = None
        self._lock = threading.Lock()

    def texts(self) -> list[str]:
        """One lowercase search text per row, built once per version (unchanged rows keep theirs)."""
        if self._texts is None:
            _, known = self._known or ((), {})
            # safe by id: the previous version's rows are alive in self._known, so no new row can reuse their ids
            self._texts = [known.get(id(row)) or search_text(row) for row in self.rows]
            self._known = None
        return self._texts

    def carried_texts(self) -> Carried | None:
        """This version's search texts by row id, with the rows that keep those ids taken, for the next version
        (plain ints and strings: no per-row objects for the garbage collector to walk)."""
        if self._texts is None:
            return self._known
        return self.rows, dict(zip(map(id, self.rows), self._texts, strict=True))

    def facets(self) -> hv.Facets:
        """Modes and element names present (computed once per version)."""
        if self._facets is None:
            self._facets = _facets(self.rows)
        return self._facets

    def order(self, sort_by: str, descending: bool) -> list[int]:
        """Row positions in one sort order (hv.sort_rows' rules: values missing last, ties newest first)."""
        if sort_by not in hv.SORT_KEYS:
            raise ValueError(f"cannot sort by {sort_by!r}; choose one of {', '.join(hv.SORT_KEYS)}")
        found = self._orders.get((sort_by, descending))
        if found is None and sort_by == "Created":  # one stable sort: equal times keep the recorded order
            rows = self.rows
            found = sorted(range(len(rows)), key=lambda i: rows[i].created_at, reverse=descending)
            self._orders[(sort_by, descending)] = found
        if found is None:
            rows, key = self.rows, hv.SORT_KEYS[sort_by]
            newest = sorted(range(len(rows)), key=lambda i: rows[i].created_at, reverse=True)
            values = [key(r) for r in rows]
            present = [i for i in newest if values[i] is not None]
            missing = [i for i in newest if values[i] is None]
            found = sorted(present, key=values.__getitem__, reverse=descending) + missing
            self._orders[(sort_by, descending)] = found
        return found

    def _mask(self, flt: hv.HistoryFilter) -> list[bool] | None:
        """Which rows pass `flt` (None: all of them); the text part walks the search texts, not the rows."""
        words = flt.text.lower().split()
        rest = replace(flt, text="")
        mask: list[bool] | None = None
        if words:
            mask = [all(w in t for w in words) for t in self.texts()]
        if rest != hv.HistoryFilter():
            passed = [hv.matches(r, rest) for r in self.rows]
            mask = passed if mask is None else [a and b for a, b in zip(mask, passed, strict=True)]
        return mask

    def matching(self, flt: hv.HistoryFilter, sort_by: str, descending: bool) -> list[HistoryRow]:
        """Every row passing `flt`, in order (remembered for the next identical query)."""
        key = (flt, sort_by, descending)
        with self._lock:
            if key in self._filtered:
                self._filtered.move_to_end(key)
                return self._filtered[key]
            order, mask = self.order(sort_by, descending), self._mask(flt)
            rows = self.rows
            found = [rows[i] for i in order] if mask is None else [rows[i] for i in order if mask[i]]
            self._filtered[key] = found
            while len(self._filtered) > _FILTERED_KEPT:
                self._filtered.popitem(last=False)
            return found


def page_of(found: Sequence[HistoryRow], offset: int, limit: int) -> HistoryPage:
    """Rows [offset, offset + limit) of a result, and its size."""
    offset, limit = max(0, offset), max(0, limit)
    return HistoryPage(list(found[offset:offset + limit]), len(found))


def _index_of(ledger: object, account: str | None) -> RowIndex:
    state = ledger.__dict__.setdefault("_history_indexes", _IndexCache())  # one per shared ledger object
    return state.get(ledger, account)


def query_page(store: object, flt: hv.HistoryFilter | None = None, sort_by: str = "Created",
               descending: bool = True, offset: int = 0, limit: int = PAGE_SIZE, *,
               account: str | None = None) -> HistoryPage:
    """One page of the rows `account` may see (None: every row) that pass `flt`, sorted, and the match count:
    the store's own `query` when it has one (SQL), else the in-memory index of its rows (CSV)."""
    own = getattr(store, "query", None)
    if own is not None:
        return own(flt or hv.HistoryFilter(), sort_by, descending, offset, limit, account=account)
    return page_of(_index_of(store, account).matching(flt or hv.HistoryFilter(), sort_by, descending), offset, limit)


def history_overview(store: object, account: str | None = None) -> HistoryOverview:
    """Visible runs, hidden live runs and the filter choices for the store's current version."""
    own = getattr(store, "overview", None)
    if own is not None:
        return own(account)
    index = _index_of(store, account)
    return HistoryOverview(len(index.rows), index.hidden, index.facets())


class FileQueries:
    """The LedgerStore `query` / `overview` methods for a ledger whose rows are in memory (mixed into the CSV
    Ledger); the work is the module functions above, cached on the ledger's version."""

    def query(self, flt: hv.HistoryFilter | None = None, sort_by: str = "Created", descending: bool = True,
              offset: int = 0, limit: int = PAGE_SIZE, *, account: str | None = None) -> HistoryPage:
        """One page of matching rows and the match count (see query_page)."""
        index = _index_of(self, account)
        return page_of(index.matching(flt or hv.HistoryFilter(), sort_by, descending), offset, limit)

    def overview(self, account: str | None = None) -> HistoryOverview:
        """Visible runs, hidden live runs and the filter choices (see history_overview)."""
        index = _index_of(self, account)
        return HistoryOverview(len(index.rows), index.hidden, index.facets())


class _IndexCache:
    """The RowIndex of each recent (version, account) of one ledger, shared by every session."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._indexes: OrderedDict[tuple[tuple[int, ...], str | None], RowIndex] = OrderedDict()

    def get(self, ledger: object, account: str | None) -> RowIndex:
        version = ledger.version()  # type: ignore[attr-defined]
        key = (version, account)
        with self._lock:
            found = self._indexes.get(key)
            if found is not None:
                self._indexes.move_to_end(key)
                return found
            previous = next(reversed(self._indexes.values()), None)
        every = ledger.rows()  # type: ignore[attr-defined]
        carried = previous.carried_texts() if previous is not None else None
        index = RowIndex(every, account, every, carried)
        with self._lock:
            self._indexes[key] = index
            while len(self._indexes) > _INDEXES_KEPT:
                self._indexes.popitem(last=False)
        return index
