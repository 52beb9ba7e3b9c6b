"""Rows from a CSV or a typed table: bounded, and every message names the row and the column."""

from __future__ import annotations

import pytest

from lib.batch.rows import MAX_ROWS, RowsRefused, rows_from_csv, rows_from_records, sample_csv

VARS = ["animal", "place"]
NAMES = ["fox", "Robot_7"]


def _refused(data: bytes, variables: list[str] = VARS) -> str:
    with pytest.raises(RowsRefused) as info:
        rows_from_csv(data, variables, NAMES)
    return " ".join(info.value.messages)


def test_a_good_csv_gives_one_row_per_line_with_options_parsed() -> None:
    found = rows_from_csv(b"\xef\xbb\xbfanimal,place,mode,sound,ratio,duration,takes\r\n"
                          b"cat,Paris,PRO,yes,9:16,7,2\r\ndog,Rome,,,,,\r\n\r\n", VARS, NAMES)
    assert [r.values for r in found.rows] == [{"animal": "cat", "place": "Paris"}, {"animal": "dog", "place": "Rome"}]
    assert found.rows[0].options == {"mode": "pro", "sound": True, "ratio": "9:16", "duration": 7, "takes": 2}
    assert found.rows[1].options == {} and not found.problems


def test_a_missing_variable_column_refuses_the_file_and_names_the_near_column() -> None:
    message = _refused(b"Animal,location\ncat,Paris\n")
    assert "Column 'animal' is missing" in message and "'Animal'" in message
    assert "Column 'place' is missing" in message and "Add a column 'place'" in message


def test_an_unknown_at_name_names_row_column_and_the_nearest_element() -> None:
    found = rows_from_csv(b"animal,place\n@fox,Paris\n@foxx,Rome\n@robot_7,Oslo\n", VARS, NAMES)
    texts = [p.text() for p in found.problems]
    assert any(t.startswith("Row 2 · column animal: No element named 'foxx'. Did you mean @fox?") for t in texts)
    assert any(t.startswith("Row 3 · column animal: @robot_7 is the element 'Robot_7'") for t in texts)
    assert not found.problems_of(1)


def test_an_empty_row_is_named_and_blank_lines_at_the_end_are_not_rows() -> None:
    found = rows_from_csv(b"animal,place\ncat,Paris\n,\ndog,Rome\n\n\n", VARS, NAMES)
    assert len(found.rows) == 3
    assert [p.text() for p in found.problems] == ["Row 2: the row is empty: fill it in or delete it (it is skipped)."]


def test_10000_rows_are_refused_with_the_count_and_the_limit() -> None:
    data = b"animal,place\n" + b"cat,Paris\n" * 10_000
    message = _refused(data)
    assert "10,000 rows" in message and f"at most {MAX_ROWS:,}" in message


@pytest.mark.parametrize(("data", "words"), [
    (b"", "empty"),
    (b",\n", "no header"),
    (b"animal,place\n", "no rows"),
    (b"animal,animal,place\ncat,dog,x\n", "appears twice"),
    (b"animal,place\ncat,Paris,extra\n", "Row 1 (line 2) has 3 cells"),
    (b"animal,place\n" + b"x" * 3000 + b",Paris\n", "Row 1 · column animal is 3,000 characters"),
    (b"animal,place\n\xff\xfe,x\n", "not UTF-8"),
    (b"animal,place\ncat\x00,x\n", "NUL"),
    (b"a" * (6 * 1024 * 1024), "the limit is 5.0 MB"),
])
def test_bad_files_are_refused_with_a_reason(data: bytes, words: str) -> None:
    assert words in _refused(data)


@pytest.mark.parametrize(("column", "cell", "words"), [
    ("mode", "ultra", "not a mode"), ("sound", "maybe", "not on or off"), ("ratio", "4:3", "not an aspect ratio"),
    ("duration", "20", "out of range"), ("duration", "five", "not a whole number"), ("takes", "9", "1 to 4"),
])
def test_bad_option_cells_are_problems_at_their_column(column: str, cell: str, words: str) -> None:
    found = rows_from_records([{"animal": "cat", "place": "x", column: cell}], VARS, NAMES)
    assert len(found.problems) == 1 and found.problems[0].column == column and words in found.problems[0].message


def test_a_typed_table_treats_none_and_nan_as_empty() -> None:
    found = rows_from_records([{"animal": None, "place": float("nan")}, {"animal": "cat", "place": "x"}], VARS)
    assert found.problems[0].row == 1 and "empty" in found.problems[0].message
    assert len(found.rows) == 2


def test_the_sample_csv_has_the_variables_and_option_columns() -> None:
    assert sample_csv(VARS).splitlines()[0] == b"animal,place,mode,sound,ratio,duration,takes"
