"""Compare, synced, with a winner: one play / seek drives every compared player; the winner is recorded."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lib.history.ledger import Ledger
from lib.history.winner import WINNER_MARK
from lib.kie.client import KieClient
from lib.sandbox.server import start_sandbox
from lib.storage.files import FileMedia
from lib.tasks.follow import refresh_task
from lib.tasks.submit import submit_payload
from tests.browser.test_history_browser import _main_text_has, _pick_option
from tests.conftest import screenshot, wait_for_app

pytestmark = pytest.mark.browser
BODY = {"model": "kling-3.0/video", "input": {"prompt": "a kite over dunes", "duration": "4", "mode": "std",
                                              "sound": False, "aspect_ratio": "16:9", "multi_shots": False}}
SPREAD = "() => { const t = window.__klingSync || []; return t.length >= 2 ? Math.max(...t) - Math.min(...t) : 9; }"


def _two_finished_runs(data: Path) -> list[str]:
    server = start_sandbox(port=0, data_dir=data / "sandbox", progress="immediate")
    ledger = Ledger.in_dir(data)
    try:
        client = KieClient("sandbox-demo", server.base_url, server.base_url)
        ids = []
        for mode in ("std", "pro"):
            row = submit_payload(client, ledger, {**BODY, "input": {**BODY["input"], "mode": mode}},
                                 origin="sandbox", batch_id="b-sync").row
            _, err = refresh_task(client, ledger, FileMedia(data), row, allow_private=True)
            assert err is None
            ids.append(row.task_id)
        return ids
    finally:
        server.stop()


def test_players_stay_together_after_a_seek_and_the_winner_is_recorded(app_server_factory, page,
                                                                      tmp_path: Path) -> None:
    data = tmp_path / "data"
    ids = _two_finished_runs(data)
    app = app_server_factory(data_dir=data)
    page.set_viewport_size({"width": 1400, "height": 1800})
    page.goto(f"{app.url}/History")
    wait_for_app(page)
    combo = page.get_by_label("Runs to compare (2–4 finished runs)")
    for task_id in ids:
        _pick_option(page, combo, task_id[-6:])
        wait_for_app(page)
    _main_text_has(page, "differing field(s) highlighted")
    page.wait_for_function("() => [...document.querySelectorAll('.st-key-history_compare_players video')]"
                           ".filter(v => v.readyState >= 2).length >= 2", timeout=30_000)
    page.get_by_role("button", name="▶︎ Play all").click()
    page.wait_for_timeout(600)
    seek = page.get_by_label("Shared playhead")
    seek.evaluate("(el) => { el.value = 500; el.dispatchEvent(new Event('input', {bubbles: true})); }")
    page.wait_for_timeout(800)
    assert page.evaluate(SPREAD) <= 0.1  # within 0.1 s of each other after the seek
    times = page.evaluate("() => window.__klingSync")
    assert min(times) > 0.5, times  # the seek moved both (to about half of 4 s)
    screenshot(page, "history-compare-synced")
    page.get_by_role("button", name="⏸ Pause all").click()
    page.get_by_label("Pick the winner").click()
    page.get_by_role("option").nth(1).click()
    wait_for_app(page)
    page.get_by_role("button", name="🏆 Record the winner").click()
    wait_for_app(page)
    winner = Ledger.in_dir(data).get(ids[1])
    assert winner.rating == 5 and winner.notes.startswith(WINNER_MARK) and ids[0] in winner.notes
    # the winner (the pro run) can be promoted to 4K, its cost on the button before anything is spent
    assert page.get_by_role("button", name=re.compile(r"Same recipe, 4K · [\d,]+ credits")).count() == 1
    assert page.get_by_role("button", name=re.compile(r"Same recipe, pro")).count() == 0
