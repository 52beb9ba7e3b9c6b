"""The cold load's fast path (lib.history.cells): canonical cells give the very row the tolerant parser builds,
and anything else goes to the tolerant parser, which decides and names the problem as before."""

from __future__ import annotations

import pickle
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from lib.history import row as row_module
from lib.history.ledger import Ledger
from lib.history.row import COLUMNS, FIELDS, HistoryRow, csv_layout
from tests.history.test_ledger import NASTY, full_row, make_row


def _tolerant(data: dict[str, str]) -> HistoryRow:
    return row_module._tolerant(data)


def _same(a: HistoryRow, b: HistoryRow) -> None:
    assert a == b
    for name in FIELDS:
        assert type(getattr(a, name)) is type(getattr(b, name)), name
        assert getattr(a, name) == getattr(b, name), name


@pytest.mark.parametrize("text", NASTY)
def test_canonical_cells_take_the_fast_path_and_give_the_tolerant_row(text: str) -> None:
    data = full_row(text=text).to_csv_dict()
    assert row_module._canonical([data[c] for c in COLUMNS]) is not None
    _same(HistoryRow.from_csv_dict(data), _tolerant(data))
    cells = [data[c] for c in COLUMNS]
    _same(HistoryRow.from_csv_cells(csv_layout(COLUMNS), cells), _tolerant(data))


@pytest.mark.parametrize(("column", "text"), [
    ("sound", "TRUE"), ("sound", " yes "), ("sound", "0"), ("duration", "5.0"), ("duration", " 7 "),
    ("duration", "٣"), ("rating", "5.0"), ("state", " Succeeded "), ("origin", "LIVE"), ("elements", " a , b ,"),
    ("credits_consumed", " 12.25 "), ("created_at", "2026-03-01 12:00:00"), ("created_at", "2026-03-01T13:00+01:00"),
    ("updated_at", "1767225600"), ("last_checked_at", " 2026-03-01T12:00:00Z"), ("schema_version", "1.0"),
    ("task_id", " padded "), ("kie_cost_time", " 2.5 "), ("estimated_credits", "0081"),
])
def test_tolerated_cells_read_as_before(column: str, text: str) -> None:
    data = make_row().to_csv_dict() | {column: text}
    _same(HistoryRow.from_csv_dict(data), _tolerant(data))


@pytest.mark.parametrize(("column", "text"), [
    ("duration", "abc"), ("duration", "2.5"), ("duration", "99999"), ("rating", "7"), ("state", "done"),
    ("origin", "cloud"), ("created_at", ""), ("created_at", " "), ("created_at", "yesterday"), ("sound", "maybe"),
    ("task_id", "  "), ("schema_version", "2"), ("credits_consumed", "-1"), ("credits_consumed", "inf"),
    ("estimated_credits", "99999999999"), ("updated_at", "soon"),
])
def test_bad_cells_fail_with_the_column_named_on_both_paths(column: str, text: str) -> None:
    data = make_row().to_csv_dict() | {column: text}
    with pytest.raises(ValueError, match=column):
        HistoryRow.from_csv_dict(data)
    with pytest.raises(ValueError, match=column):
        HistoryRow.from_csv_cells(csv_layout(COLUMNS), [data[c] for c in COLUMNS])


def test_a_header_without_the_optional_columns_reads_their_defaults() -> None:
    header = [c for c in COLUMNS if c not in ("imported_at", "callback_key", "kie_cost_time")]
    data = full_row().to_csv_dict()
    row = HistoryRow.from_csv_cells(csv_layout(header), [data[c] for c in header])
    _same(row, full_row())
    assert row.imported_at is None and row.callback_key == "" and row.kie_cost_time is None


def test_a_reordered_header_reads_by_name() -> None:
    header = list(reversed(COLUMNS))
    data = full_row().to_csv_dict()
    _same(HistoryRow.from_csv_cells(csv_layout(header), [data[c] for c in header]), full_row())


def test_missing_cells_in_a_mapping_take_the_tolerant_path() -> None:
    data: dict[str, Any] = make_row().to_csv_dict() | {"prompt": None, "notes": None}
    _same(HistoryRow.from_csv_dict(data), replace(make_row(), prompt=""))


def test_rows_built_fast_behave_like_rows_built_by_init(tmp_path: Path) -> None:
    ledger = Ledger.in_dir(tmp_path)
    ledger.append(full_row())
    loaded = Ledger.in_dir(tmp_path).rows()[0]
    assert type(loaded) is HistoryRow and loaded == full_row() and hash(loaded) == hash(full_row())
    assert pickle.loads(pickle.dumps(loaded)) == loaded
    assert replace(loaded, rating=1).rating == 1
    with pytest.raises(AttributeError):
        loaded.rating = 2  # type: ignore[misc]
    assert not hasattr(loaded, "__dict__")  # slotted: no per-row dict


def test_repeated_words_share_one_string_and_equal_times_one_datetime(tmp_path: Path) -> None:
    ledger = Ledger.in_dir(tmp_path)
    for i in range(3):
        ledger.append(make_row(f"t{i}", model="kling-3.0/" + "video", mode="p" + "ro", aspect_ratio="16" + ":9",
                               batch_id="b-" + str(7), credits_consumed=40.0 + 10 * (i > 0)))
    again = Ledger.in_dir(tmp_path)
    rows = again.rows()
    assert rows[0].mode is rows[1].mode is rows[2].mode
    assert rows[0].batch_id is rows[1].batch_id is rows[2].batch_id
    assert rows[1].credits_consumed is rows[2].credits_consumed == 50.0
    assert all(row.task_id is known for row, known in zip(rows, again._snap.task_ids, strict=True))  # type: ignore[union-attr]
    assert rows[0].aspect_ratio is rows[2].aspect_ratio and rows[0].model is rows[1].model
    assert all(r.updated_at is r.created_at for r in rows)
