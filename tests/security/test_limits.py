"""Bounded input: decompression bombs, deeply nested and oversized JSON, absurd numbers and unknown enums are refused
(or cleaned) with a message naming the limit; pages keep loading and nothing saved changes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lib.compose.form import upload_frame
from lib.elements.library import ElementLibrary
from lib.elements.model import ElementError
from lib.history.ledger import Ledger
from lib.history.transfer import import_csv
from lib.kling.media import check_image, check_media, thumbnail_jpeg
from lib.trust.limits import MAX_IMAGE_PIXELS, InputTooLarge, loads_bounded
from tests.conftest import shown_text
from tests.security.conftest import APP, bomb_png, edited_csv, nested_json, png_bytes, run

LIMIT = f"{MAX_IMAGE_PIXELS / 1e6:.0f} megapixels"


def texts(elements) -> str:
    return "\n".join(shown_text(e.value) for e in elements)


def open_page(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


# ---------------------------------------------------------------- decompression bombs

def test_the_bomb_is_refused_from_its_header_naming_the_limit(tmp_path: Path) -> None:
    for check in (check_image("bomb.png", io.BytesIO(bomb_png())), check_media("bomb.png", io.BytesIO(bomb_png()))):
        assert not check.ok and LIMIT in " ".join(check.problems) and "13000×13000" in " ".join(check.problems)
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb_png())
    assert thumbnail_jpeg(path, 96) is None  # a bomb already on disk is never decoded for a card


def test_the_bomb_never_becomes_an_element_or_a_frame(tmp_path: Path) -> None:
    library = ElementLibrary(tmp_path / "data")
    with pytest.raises(ElementError) as info:
        library.create("bomb_cat", "a cat", [("bomb.png", io.BytesIO(bomb_png())), ("ok.png", io.BytesIO(png_bytes()))])
    assert LIMIT in " ".join(info.value.problems)
    assert not library.path.exists() and not list((tmp_path / "data").rglob("*.png"))
    calls: list[str] = []
    frame = upload_frame(lambda *a, **k: calls.append("upload"), "bomb.png", bomb_png())
    assert LIMIT in " ".join(frame.problems) and not frame.url and calls == []


def test_the_elements_and_compose_uploaders_name_the_megapixel_limit(data: Path) -> None:
    at = open_page("pages/1_Elements.py")
    at.file_uploader(key="elements_files_0").set_value([("bomb.png", bomb_png(), "image/png")]).run()
    assert not at.exception and LIMIT in texts(at.error)
    at.switch_page("pages/2_Compose.py").run()
    at.radio(key="compose_w_first_source").set_value("upload").run()
    at.file_uploader(key="compose_w_first_file").set_value(("bomb.png", bomb_png(), "image/png")).run()
    assert not at.exception and LIMIT in texts(at.error)
    assert not at.get("imgs") and not list(data.rglob("*.png"))


# ---------------------------------------------------------------- JSON: depth and size

@pytest.mark.parametrize(("text", "message"), [
    (nested_json(), "nested more than 32 levels"),
    ('{"a": "' + "x" * (6 * 2**20) + '"}', "the limit is 5.0 MB"),
])
def test_hostile_json_is_refused_before_parsing(text: str, message: str) -> None:
    with pytest.raises(InputTooLarge, match=message):
        loads_bounded(text)


@pytest.mark.parametrize(("name", "content", "message"), [
    ("deep.json", nested_json().encode(), "nested more than 32 levels"),
    ("big.json", json.dumps([{"name": "big", "description": "x" * (6 * 2**20)}]).encode(), "the limit is 5.0 MB"),
])
def test_element_imports_that_are_too_deep_or_too_big_change_nothing(data: Path, name: str, content: bytes,
                                                                     message: str) -> None:
    library = ElementLibrary(data)
    library.create("kept_cat", "kept", urls=["https://example.com/a.png", "https://example.com/b.png"])
    before = library.path.read_bytes()
    at = open_page("pages/1_Elements.py")
    at.file_uploader(key="elements_import_0").set_value((name, content, "application/json")).run()
    at.button(key="elements_import_go").click().run()
    assert not at.exception and message in texts(at.error) and "Nothing was changed" in texts(at.error)
    assert library.path.read_bytes() == before


# ---------------------------------------------------------------- history CSV: cells, numbers, enums

BAD_CELLS = {
    "nested payload": ({"payload_json": nested_json()}, "nested more than 32 levels"),
    "nested shots": ({"shots_json": nested_json()}, "nested more than 32 levels"),
    "broken payload": ({"payload_json": '{"model": '}, "not valid JSON"),
    "duration 1e308": ({"duration": "1e308"}, "far too large"),
    "credits 10**30": ({"estimated_credits": str(10**30)}, "far too large"),
    "consumed 1e308": ({"credits_consumed": "1e308"}, "outside 0"),
    "5000 digits": ({"rating": "9" * 5000}, "far too large"),
    "unknown mode": ({"mode": "ultra"}, "not one of std"),
    "unknown ratio": ({"aspect_ratio": "<img src=x>"}, "not one of"),
    "unknown state": ({"state": "exploded"}, "not one of"),
}


@pytest.mark.parametrize("case", list(BAD_CELLS))
def test_a_bad_cell_refuses_its_row_by_name(case: str) -> None:
    edits, message = BAD_CELLS[case]
    report = import_csv(edited_csv([run(task_id="bad"), run(task_id="good")], {"bad": edits}))
    assert [r.task_id for r in report.rows_ok] == ["good"]
    assert len(report.bad_rows) == 1 and message in report.bad_rows[0][1]
    assert len(report.summary()) < 600  # named, never the whole hostile value


def test_the_history_page_refuses_hostile_rows_and_changes_nothing(data: Path) -> None:
    ledger = Ledger.in_dir(data, fsync=False)
    ledger.append(run(task_id="kept-run"))
    before = ledger.path.read_bytes()
    rows = [run(task_id=f"bad-{i}") for i in range(len(BAD_CELLS))]
    content = edited_csv(rows, {f"bad-{i}": edits for i, (edits, _) in enumerate(BAD_CELLS.values())})
    at = open_page("pages/3_History.py")
    at.file_uploader(key="history_import_0").set_value(("hostile.csv", content, "text/csv")).run()
    assert not at.exception
    shown = texts(at.warning)
    assert "0 row(s) ready to import" in shown and f"{len(BAD_CELLS)} bad row(s)" in shown
    assert at.button(key="history_merge").disabled
    assert ledger.path.read_bytes() == before


def test_a_deeply_nested_cell_already_on_disk_breaks_no_page(data: Path) -> None:
    """Written straight into history.csv (not through Import): every page still loads and nothing is rewritten."""
    Ledger.in_dir(data, fsync=False).append(run(task_id="normal-run"))
    path = data / "history.csv"
    content = edited_csv([run(task_id="normal-run"), run(task_id="deep-run", minutes=1)],
                         {"deep-run": {"payload_json": nested_json(), "shots_json": nested_json()}})
    path.write_bytes(content)
    at = AppTest.from_file(APP, default_timeout=60).run()
    assert not at.exception, at.exception
    at.query_params["task"] = "deep-run"
    for page in ("pages/3_History.py", "pages/2_Compose.py", "pages/1_Elements.py", "home.py"):
        at.switch_page(page).run()
        assert not at.exception, (page, at.exception)
    at.switch_page("pages/3_History.py").run()
    assert "deep-run" in at.session_state["history_table_ids"]
    assert at.button(key="history_fork").disabled  # an unreadable payload is no payload: nothing to fork
    assert path.read_bytes() == content
