"""Pick the winner: recorded on the run (rating and a 'winner of' note); promotions priced first."""

from __future__ import annotations

from pathlib import Path

from lib.history.ledger import Ledger
from lib.history.row import HistoryRow
from lib.history.winner import WINNER_MARK, pick_winner, promotions, winner_note
from lib.kling.pricing import estimate_credits

PAYLOAD = {"model": "kling-3.0/video", "callBackUrl": "https://x.example/cb",
           "input": {"prompt": "a kite", "duration": "5", "mode": "std", "sound": True, "aspect_ratio": "16:9",
                     "multi_shots": False}}


def test_the_winner_gets_five_stars_and_a_note_naming_the_others(tmp_path: Path) -> None:
    ledger = Ledger.in_dir(tmp_path)
    for task_id in ("a", "b", "c"):
        ledger.append(HistoryRow.from_payload(task_id, PAYLOAD, origin="sandbox", state="succeeded"))
    ledger.update("b", notes="nice light", rating=3)
    row = pick_winner(ledger, "b", ["a", "b", "c"])
    assert row.rating == 5 and row.notes == f"nice light\n{WINNER_MARK}: a, c"
    again = pick_winner(ledger, "b", ["a", "b"])  # a later comparison replaces the line, never piles up
    assert again.notes == f"nice light\n{WINNER_MARK}: a" and ledger.get("a").rating == 0


def test_winner_note_is_plain_text() -> None:
    assert winner_note("", "x", ["x", "y"]) == f"{WINNER_MARK}: y"


def test_promotions_are_the_same_recipe_in_each_higher_mode_with_their_cost() -> None:
    row = HistoryRow.from_payload("a", PAYLOAD, origin="sandbox", state="succeeded")
    found = promotions(row)
    assert [mode for mode, _, _ in found] == ["pro", "4K"]
    for mode, body, credits in found:
        assert body["input"]["mode"] == mode and body["input"]["prompt"] == "a kite"
        assert "callBackUrl" not in body and credits == estimate_credits(body)
    top = HistoryRow.from_payload("z", {**PAYLOAD, "input": {**PAYLOAD["input"], "mode": "4K"}}, origin="sandbox")
    assert promotions(top) == []
