"""Faults driven through the real Compose page: what the user reads, and that nothing is lost or sent twice."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import expect

from tests.browser.test_compose_browser import commit
from tests.conftest import free_port, wait_for_app

pytestmark = pytest.mark.browser


@pytest.mark.parametrize(("fault", "shown", "rows"), [
    ({"maintenance": True}, "under maintenance", []),
    ({"drop_connection_once": 1}, "before submitting again", ["unknown"]),
    ({"rate_limit_once": 1, "retry_after": 0}, "Submitted 1 task(s)", ["queued"]),
])
def test_fault_on_submit_is_named_and_loses_nothing(app_server_factory, page, fault, shown, rows) -> None:
    from lib.history.ledger import Ledger

    port = free_port()
    server = app_server_factory(env={"KLING_SANDBOX_PORT": str(port)})
    page.goto(f"{server.url}/Compose")
    wait_for_app(page)
    commit(page, page.get_by_label("Prompt", exact=True), "a lantern floating over a dark lake")
    requests.post(f"http://127.0.0.1:{port}/sandbox/config", json=fault, timeout=5).raise_for_status()
    page.get_by_role("button", name="Submit · 70 credits (US$0.35)").click()
    wait_for_app(page)
    expect(page.locator('[data-testid="stMain"]')).to_contain_text(shown)
    ledger_states = [r.state for r in Ledger.in_dir(server.data_dir).rows()]
    assert ledger_states[: len(rows)] == rows and len(ledger_states) == len(rows)
    state = requests.get(f"http://127.0.0.1:{port}/sandbox/state", timeout=5).json()
    assert state["tasks"] == (0 if fault.get("maintenance") or fault.get("drop_connection_once") else 1)
