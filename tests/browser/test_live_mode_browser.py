"""Live mode in a real browser against a server written from KIE's docs: balance, submit, follow, play."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.test_compose_browser import VIDEOS_PLAYABLE, commit, follow_until_done
from tests.conftest import screenshot, wait_for_app
from tests.kie_docs_double import DocsKie

pytestmark = pytest.mark.browser
KEY = "sk-live-browser-SECRET-4242"


@pytest.fixture
def kie():
    double = DocsKie(KEY, credits=500).start()
    yield double
    double.stop()


def test_live_job_from_form_to_playing_video(app_server_factory, page, kie) -> None:
    server = app_server_factory(env={"KIE_API_KEY": KEY, "KIE_API_BASE": kie.base_url, "KIE_UPLOAD_BASE": kie.base_url})
    page.goto(f"{server.url}/Compose")
    wait_for_app(page)
    sidebar = page.locator('[data-testid="stSidebar"]')
    expect(sidebar).to_contain_text("Live mode")
    expect(sidebar).to_contain_text("500.00 credits")
    commit(page, page.get_by_label("Prompt", exact=True), "a kite over a windy hill")
    page.get_by_role("button", name="Submit · 70 credits (US$0.35)").click()
    wait_for_app(page)
    seen = follow_until_done(page, 1)
    assert seen[-1] == "succeeded"
    page.wait_for_function(VIDEOS_PLAYABLE, arg=1, timeout=30_000)
    screenshot(page, "live-compose-done")
    creates = [r for r in kie.requests if r[1] == "/api/v1/jobs/createTask"]
    assert len(creates) == 1 and creates[0][2]["Authorization"] == f"Bearer {KEY}"
    for path in ("", "Elements", "Compose", "History"):
        page.goto(f"{server.url}/{path}")
        wait_for_app(page)
        assert KEY not in page.content()
    data_files = [p for p in server.data_dir.rglob("*") if p.is_file()]
    assert data_files and not any(KEY.encode() in p.read_bytes() for p in data_files)
