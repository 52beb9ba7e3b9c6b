"""Every page opens by deep link on a freshly started server, in sandbox mode, and is screenshotted."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.conftest import screenshot, wait_for_app

pytestmark = pytest.mark.browser

PAGES = [("Elements", "Elements"), ("Compose", "Compose"), ("History", "History"), ("", "Kling Studio")]


@pytest.mark.parametrize(("path", "heading"), PAGES)
def test_deep_link_first_visit_on_fresh_server(app_server_factory, page, path: str, heading: str) -> None:
    server = app_server_factory()  # fresh server: this page is its very first visitor
    page.goto(f"{server.url}/{path}")
    wait_for_app(page)
    expect(page.get_by_role("heading", name=heading).first).to_be_visible()
    sidebar = page.locator('[data-testid="stSidebar"]')
    expect(sidebar).to_contain_text("Sandbox")
    assert "Sandbox" in sidebar.inner_text() and "Nothing is spent" in sidebar.inner_text()
    assert not page.locator('[data-testid="stException"]').count()
    # the other pages still work after a deep-link first visit (streamlit#9624 regression guard)
    for other, other_heading in PAGES:
        page.goto(f"{server.url}/{other}")
        wait_for_app(page)
        expect(page.get_by_role("heading", name=other_heading).first).to_be_visible()
        assert not page.locator('[data-testid="stException"]').count()
    screenshot(page, f"deeplink-{path or 'home'}")
