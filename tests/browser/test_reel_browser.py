"""A three-take chain in Chromium: continue a take from its last frame, then export the takes as one MP4 whose
duration is the sum of theirs, with a chapter list."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from lib.history.ledger import Ledger
from lib.history.row import HistoryRow
from lib.reel.clips import duration_s
from tests.browser.test_history_browser import _pick_option
from tests.conftest import screenshot, wait_for_app
from tests.reel.test_reel import clip

pytestmark = pytest.mark.browser
BODY = {"model": "kling-3.0/video", "input": {"prompt": "take", "duration": "3", "mode": "std", "sound": False,
                                              "aspect_ratio": "16:9", "multi_shots": False}}


def test_a_three_take_chain_exports_as_one_mp4_of_their_summed_length(app_server_factory, page,
                                                                      tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "videos").mkdir(parents=True)
    ledger = Ledger.in_dir(data)
    lengths = [1.0, 1.5, 2.0]
    for i, (seconds, colour) in enumerate(zip(lengths, [(200, 0, 0), (0, 200, 0), (0, 0, 200)], strict=True)):
        clip(data / "videos" / f"chain-{i}.mp4", seconds, colour)
        ledger.append(HistoryRow.from_payload(f"chain-{i}", {**BODY, "input": {**BODY["input"], "prompt": f"take {i}"}},
                                              origin="sandbox", state="succeeded"))
    app = app_server_factory(data_dir=data)
    page.goto(f"{app.url}/Reel")
    wait_for_app(page)
    combo = page.get_by_label("Takes in the reel")
    for i in range(3):
        _pick_option(page, combo, f"take {i}")
        wait_for_app(page)
    page.get_by_text("3 take(s), 4.5 s in all.").wait_for(timeout=15_000)  # the chain view: order and length
    page.get_by_role("button", name="🎞️ Build the reel (one MP4)").click()
    wait_for_app(page)
    with page.expect_download() as reel:
        page.get_by_role("button", name="⬇️ Reel (MP4)").click()
    out = tmp_path / "reel.mp4"
    reel.value.save_as(out)
    assert duration_s(out) == pytest.approx(sum(lengths), abs=0.05)
    with page.expect_download() as chapters:
        page.get_by_role("button", name="⬇️ Chapters (CSV)").click()
    rows = list(csv.reader(io.StringIO(Path(chapters.value.path()).read_text())))
    assert [r[1] for r in rows[1:]] == ["chain-0", "chain-1", "chain-2"] and rows[3][0] == "2.500"
    screenshot(page, "reel-built")
    # the chain goes on: the last take's last frame becomes the first frame of a new Compose job
    page.get_by_label("Continue from this take").click()
    page.get_by_role("option", name="take 2").first.click()
    wait_for_app(page)
    page.get_by_role("button", name="▶️ Continue in Compose (its last frame becomes the first frame)").click()
    page.get_by_role("heading", name="✍️ Compose").wait_for(timeout=20_000)
    wait_for_app(page)
    frame_url = page.get_by_label("Image URL").input_value()
    assert frame_url.startswith("http://127.0.0.1") and "/files/" in frame_url  # uploaded to the file host
    assert page.get_by_label("Prompt", exact=True).input_value() == "take 2"
