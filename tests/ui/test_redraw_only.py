"""lib.ui.page.redraw_only: a callback names the parts to redraw; a part this session has not drawn falls back to
the whole page instead of an error on screen."""

from __future__ import annotations

import pytest
from streamlit.errors import StreamlitAPIException

from lib.ui import page


class _Rerun(Exception):
    """Stands in for Streamlit's rerun signal."""


def _fake_rerun(known: set[str], calls: list):
    def rerun(scope="app"):
        calls.append(scope)
        if scope != "app" and not set([scope] if isinstance(scope, str) else scope) <= known:
            raise StreamlitAPIException("No fragment found for target")
        raise _Rerun(scope)
    return rerun


def test_named_parts_rerun_alone(monkeypatch) -> None:
    calls: list = []
    monkeypatch.setattr(page, "in_browser", lambda: True)
    monkeypatch.setattr(page.st, "rerun", _fake_rerun({"a", "b"}, calls))
    with pytest.raises(_Rerun):
        page.redraw_only(["a", "b"])
    assert calls == [["a", "b"]]


def test_a_part_not_drawn_yet_redraws_the_whole_page(monkeypatch, caplog) -> None:
    calls: list = []
    monkeypatch.setattr(page, "in_browser", lambda: True)
    monkeypatch.setattr(page.st, "rerun", _fake_rerun({"a"}, calls))
    with pytest.raises(_Rerun):
        page.redraw_only(["a", "gone"])
    assert calls == [["a", "gone"], "app"]
    assert "fell back to the whole page" in caplog.text


def test_apptest_gets_the_whole_page(monkeypatch) -> None:
    monkeypatch.setattr(page, "in_browser", lambda: False)
    monkeypatch.setattr(page.st, "rerun", lambda *a: pytest.fail("no rerun outside a browser"))
    page.redraw_only(["a"])
