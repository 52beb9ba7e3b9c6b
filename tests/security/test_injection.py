"""Stored and reflected markdown/HTML injection: every data string that reaches a markdown sink (bodies, labels,
help tooltips, captions) on every page is escaped by lib.trust.text.md; nothing the server does touches the
listener. The browser half (no request from the viewer's browser) is in test_browser.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from lib.compose.drafts import DraftStore
from lib.elements.library import ElementLibrary
from lib.history.ledger import Ledger
from lib.trust.text import md, md_line
from tests.conftest import shown_text
from tests.security.conftest import APP, Listener, attacks, hostile, raw_markdown, rendered_markdown, run


def test_the_scanner_sees_raw_markdown_and_passes_escaped_markdown() -> None:
    at = AppTest.from_string("import streamlit as st\nst.markdown('![x](http://127.0.0.1:1/img.png)')\n"
                             "st.button('ok', help='# Heading')\nst.caption(" + repr(md(hostile(1))) + ")").run()
    found = raw_markdown(at)
    assert len(found) == 2 and len(rendered_markdown(at)) >= 3
    for attack in attacks(1):
        assert shown_text(md(attack)) == attack and shown_text(md_line(attack)) == attack


def _seed_history(data: Path, port: int) -> dict[str, str]:
    """Rows whose every text field carries the attacks; returns name → task id."""
    evil = hostile(port)
    shots = json.dumps([{"prompt": hostile(port, "shot1"), "duration": 3}, {"prompt": hostile(port, "shot2"),
                                                                             "duration": 2}])
    ids = {"prompt": f"t-![x](http://127.0.0.1:{port}/img.png)", "failed": "t-<img src=x>-# Heading",
           "multi": "t-[click](javascript:alert(1))"}
    ledger = Ledger.in_dir(data, fsync=False)
    ledger.append(run(evil, task_id=ids["prompt"], notes=hostile(port, "notes"), batch_id=evil[:60],
                      elements=(f"![x](http://127.0.0.1:{port}/img.png)",), result_url=f"http://127.0.0.1:{port}/v.mp4",
                      local_video="/etc/passwd", minutes=9))
    ledger.append(run("fails", task_id=ids["failed"], state="failed", fail_code=evil[:40], fail_msg=hostile(port, "fail"),
                      result_url="javascript:alert(1)", minutes=8))
    ledger.append(run("", task_id=ids["multi"], shots_json=shots, multi_shots=True, state="running",
                      minutes=7, payload_json=json.dumps({"model": "kling-3.0/video", "callBackUrl":
                                                          f"http://127.0.0.1:{port}/cb", "input": {
                                                              "prompt": evil, "kling_elements": [
                                                                  {"name": f"![x](http://127.0.0.1:{port}/e.png)"}]}})))
    return ids


def _open(page: str, **query: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    for key, value in query.items():
        at.query_params[key] = value
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def test_history_detail_compare_and_home_draw_every_field_as_text(data: Path, listener: Listener) -> None:
    ids = _seed_history(data, listener.port)
    for task_id in ids.values():
        at = _open("pages/3_History.py", task=task_id)
        assert raw_markdown(at) == [], task_id
        assert at.get("video") == [] and not at.get("imgs")  # no local file, no outside URL handed to a player
        assert any(task_id in shown_text(s) for s in rendered_markdown(at))  # shown, as text
    at.session_state["history_compare"] = [ids["prompt"], ids["failed"]]
    at.run()
    assert not at.exception and raw_markdown(at) == [] and at.get("video") == []
    at.switch_page("home.py").run()
    assert not at.exception and raw_markdown(at) == []
    assert listener.requests == []


@pytest.mark.parametrize("query", [
    "![x](http://127.0.0.1:{port}/img.png)", "<img src=http://127.0.0.1:{port}/h.png>", "[click](javascript:alert(1))",
    "# Heading", "www.127.0.0.1.nip.io", "../../etc/passwd", "/proc/self/environ", "a" * 5000,
], ids=["image", "html", "javascript", "heading", "autolink", "traversal", "proc", "5000-chars"])
def test_a_reflected_deep_link_only_warns(data: Path, listener: Listener, query: str) -> None:
    Ledger.in_dir(data, fsync=False).append(run())
    at = _open("pages/3_History.py", task=query.format(port=listener.port))
    assert "is not in this history" in "\n".join(shown_text(w.value) for w in at.warning)
    assert raw_markdown(at) == [] and at.get("video") == []
    assert listener.requests == []


def test_elements_and_compose_draw_names_descriptions_and_file_names_as_text(data: Path, listener: Listener) -> None:
    library = ElementLibrary(data)
    evil = hostile(listener.port)
    library.create("evil_cat", evil[:900], urls=[f"http://127.0.0.1:{listener.port}/a.png",
                                                 f"http://127.0.0.1:{listener.port}/b.png"])
    bad_import = json.dumps([{"name": f"![x](http://127.0.0.1:{listener.port}/n.png)", "description": evil,
                              "element_input_urls": ["javascript:alert(1)"]}])
    at = _open("pages/1_Elements.py")
    assert raw_markdown(at) == []
    at.file_uploader(key="elements_import_0").set_value(("<img src=x># Heading.json", bad_import.encode(),
                                                         "application/json")).run()
    at.button(key="elements_import_go").click().run()
    assert not at.exception and raw_markdown(at) == []
    assert any("Not imported" in shown_text(e.value) for e in at.error)
    at.button(key=f"elements_edit_{at.session_state['elements_slots'][library.by_name('evil_cat').id]}").click().run()
    assert not at.exception and raw_markdown(at) == []
    at.switch_page("pages/2_Compose.py").run()  # the element chips carry the description as a tooltip
    assert not at.exception and raw_markdown(at) == []
    assert listener.requests == []


def test_compose_fork_drafts_and_progress_draw_data_as_text(data: Path, listener: Listener) -> None:
    ids = _seed_history(data, listener.port)
    ledger = Ledger.in_dir(data, fsync=False)
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.session_state["compose_fork"] = {"payload": ledger.get(ids["multi"]).payload, "task_id": ids["multi"]}
    at.session_state["compose_followed"] = list(ids.values())
    at.switch_page("pages/2_Compose.py").run()
    assert not at.exception, at.exception
    assert raw_markdown(at) == []
    assert at.session_state["compose_callback"] == ""  # a callBackUrl from outside never rides along
    assert at.get("video") == []
    name = hostile(listener.port).replace("\n", " ")
    at.text_input(key="compose_w_draft_name").set_value(name).run()
    at.button(key="compose_save_draft").click().run()
    assert not at.exception and raw_markdown(at) == []
    assert any("Saved draft" in shown_text(s.value) for s in at.success)
    assert DraftStore(data).names() == [" ".join(name.split())[:60]]
    assert listener.requests == []


def test_an_imported_unfinished_run_is_shown_not_followed(data: Path) -> None:
    """Issue 22: an imported queued/running row is history, not work: no session polls it by itself."""
    from lib.history.transfer import import_csv
    from tests.security.conftest import edited_csv

    ledger = Ledger.in_dir(data, fsync=False)
    ledger.merge(import_csv(edited_csv([run(task_id="imported-running", state="running")], {})))
    at = _open("pages/3_History.py", task="imported-running")
    assert any("Imported run, not followed" in shown_text(i.value) for i in at.info)
    assert not any("Following" in shown_text(c.value) for c in at.sidebar.caption)
    assert ledger.get("imported-running").last_checked_at is None
