"""A handful of the bad-input corpus through the real Elements page (AppTest): the message shows, nothing is saved."""

from __future__ import annotations

from pathlib import Path

import pytest

from lib.elements.library import ElementLibrary
from tests.pages.test_elements_page import data_dir, fill, gif, open_page, png, save, texts, two_pngs  # noqa: F401
from tests.reliability.conftest import snapshot

CASES = {
    "name with a space": ({"name": "my cat", "files": two_pngs()}, "has a space"),
    "Cyrillic look-alike name": ({"name": "сat", "files": two_pngs()}, "looks like the Latin"),
    "image below 300×300": ({"name": "tiny", "files": [("tiny.png", png(120), "image/png"),
                                                        ("b.png", png(), "image/png")]}, "120×120"),
    "GIF named .png": ({"name": "gif", "files": [("cat.png", gif(), "image/png"),
                                                  ("b.png", png(), "image/png")]}, "is a GIF"),
    "file: URL": ({"name": "url", "urls": "file:///etc/passwd\nfile:///etc/hosts"}, "not a web address"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_elements_page_refuses_bad_input(case: str, data_dir: Path) -> None:  # noqa: F811
    fields, expected = CASES[case]
    at = open_page(data_dir)
    before = snapshot(data_dir / "elements") if (data_dir / "elements").exists() else {}
    save(fill(at, description="a test element", **fields))
    shown = texts(at, "error", "warning", "markdown", "caption")
    assert expected in shown, shown
    assert ElementLibrary(data_dir).list() == []
    after = snapshot(data_dir / "elements") if (data_dir / "elements").exists() else {}
    assert after == before
