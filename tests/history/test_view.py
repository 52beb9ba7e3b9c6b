"""Unit tests for lib/history_view: badges, filters, sorting, the table, payload diffs and detail helpers."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from lib.history import view as hv
from lib.history.diff import ABSENT, diff_frame, flatten_payload, payload_diff
from lib.history.row import HistoryRow
from lib.kie.errors import FIXES, advice_for_failure
from lib.storage.files import FileMedia

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def payload(prompt: str = "a cat", mode: str = "std", sound: bool = False, duration: int = 5,
            elements: tuple[str, ...] = ()) -> dict:
    inp = {"prompt": prompt, "mode": mode, "sound": sound, "duration": str(duration), "aspect_ratio": "16:9",
           "multi_shots": False}
    if elements:
        inp["kling_elements"] = [{"name": n, "description": n, "element_input_urls": [f"https://x/{n}.png"] * 2}
                                 for n in elements]
    return {"model": "kling-3.0/video", "input": inp}


def make(task_id: str, *, minutes: int = 0, state: str = "succeeded", origin: str = "sandbox", **kw) -> HistoryRow:
    pl = kw.pop("payload", None) or payload(**{k: kw.pop(k) for k in ("prompt", "mode", "sound", "duration",
                                                                          "elements") if k in kw})
    row = HistoryRow.from_payload(task_id, pl, origin=origin, state=state, created_at=T0 + timedelta(minutes=minutes),
                                  estimated_credits=kw.pop("estimated_credits", 50))
    return replace(row, **kw)


ROWS = [
    make("t1", minutes=0, prompt="A red fox in snow", mode="std", elements=("fox",), rating=5,
         credits_consumed=50.0, updated_at=T0 + timedelta(seconds=40)),
    make("t2", minutes=60 * 24, prompt="Ocean waves at dusk", mode="pro", sound=True, state="failed",
         fail_code="501", rating=2, estimated_credits=90, updated_at=T0 + timedelta(days=1, seconds=20)),
    make("t3", minutes=60 * 48, prompt="City timelapse", mode="4K", origin="live", state="running",
         estimated_credits=None, notes="client pitch"),
    make("t4", minutes=60 * 48 + 5, prompt="Fox and @owl", mode="pro", elements=("Fox", "owl"), state="unknown",
         rating=3, estimated_credits=120),
]


def ids(rows: list[HistoryRow]) -> list[str]:
    return [r.task_id for r in rows]


@pytest.mark.parametrize(("state", "stale", "badge"), [
    ("queued", False, "⏳ queued"), ("running", False, "🔄 running"), ("succeeded", False, "✅ succeeded"),
    ("failed", False, "❌ failed"), ("unknown", False, "❓ unknown"), ("running", True, "⌛ stale, still checking"),
    ("queued", True, "⌛ stale, still checking"), ("succeeded", True, "✅ succeeded"), ("unknown", True, "❓ unknown"),
])
def test_state_badge(state: str, stale: bool, badge: str) -> None:
    assert hv.state_badge(make("x", state=state, stale=stale)) == badge


@pytest.mark.parametrize(("code", "fix"), [
    ("501", FIXES[501]), ("422", FIXES[422]), (" 402 ", FIXES[402]), ("", FIXES[501]), (None, FIXES[501]),
    ("oops", FIXES[501]), ("999", FIXES[501]),
])
def test_fail_fix(code: str | None, fix: str) -> None:
    assert advice_for_failure(code) == fix


@pytest.mark.parametrize(("flt", "expected"), [
    (hv.HistoryFilter(), ["t1", "t2", "t3", "t4"]),
    (hv.HistoryFilter(states=("succeeded", "failed")), ["t1", "t2"]),
    (hv.HistoryFilter(origins=("live",)), ["t3"]),
    (hv.HistoryFilter(origins=("sandbox",)), ["t1", "t2", "t4"]),
    (hv.HistoryFilter(modes=("pro",)), ["t2", "t4"]),
    (hv.HistoryFilter(sound="on"), ["t2"]),
    (hv.HistoryFilter(sound="off"), ["t1", "t3", "t4"]),
    (hv.HistoryFilter(elements=("fox",)), ["t1", "t4"]),  # names compare ignoring case
    (hv.HistoryFilter(elements=("owl", "nobody")), ["t4"]),
    (hv.HistoryFilter(date_from=date(2025, 3, 2)), ["t2", "t3", "t4"]),
    (hv.HistoryFilter(date_to=date(2025, 3, 2)), ["t1", "t2"]),
    (hv.HistoryFilter(date_from=date(2025, 3, 2), date_to=date(2025, 3, 2)), ["t2"]),
    (hv.HistoryFilter(text="FOX"), ["t1", "t4"]),
    (hv.HistoryFilter(text="fox snow"), ["t1"]),  # every word must match
    (hv.HistoryFilter(text="pitch"), ["t3"]),  # notes are searched
    (hv.HistoryFilter(text="t2"), ["t2"]),  # task ids are searched
    (hv.HistoryFilter(min_rating=3), ["t1", "t4"]),
    (hv.HistoryFilter(states=("unknown", "running"), modes=("pro",), min_rating=1), ["t4"]),
    (hv.HistoryFilter(text="nothing like this"), []),
])
def test_filter_rows(flt: hv.HistoryFilter, expected: list[str]) -> None:
    assert ids(hv.filter_rows(ROWS, flt)) == expected


@pytest.mark.parametrize("kwargs", [{"sound": "maybe"}, {"states": ("done",)}])
def test_filter_rejects_bad_values(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        hv.HistoryFilter(**kwargs)


def test_filter_on_multishot_prompts() -> None:
    shots = {"model": "kling-3.0/video", "input": {"multi_shots": True, "mode": "std", "duration": "6",
                                                   "multi_prompt": [{"prompt": "wide shot", "duration": 3},
                                                                    {"prompt": "close-up of a heron", "duration": 3}]}}
    row = make("ms", payload=shots)
    assert hv.filter_rows([row], hv.HistoryFilter(text="heron")) == [row]
    assert hv.prompt_text(row) == "wide shot | close-up of a heron"


@pytest.mark.parametrize(("by", "descending", "expected"), [
    ("Created", True, ["t4", "t3", "t2", "t1"]),
    ("Created", False, ["t1", "t2", "t3", "t4"]),
    ("Rating", True, ["t1", "t4", "t2", "t3"]),
    ("Rating", False, ["t3", "t2", "t4", "t1"]),
    ("Cost (credits)", True, ["t4", "t2", "t1", "t3"]),  # t3 has no cost: always last
    ("Cost (credits)", False, ["t1", "t2", "t4", "t3"]),
    ("Generation time", True, ["t1", "t2", "t4", "t3"]),  # unfinished last, newest first among them
    ("State", False, ["t3", "t1", "t2", "t4"]),
    ("Mode", False, ["t3", "t4", "t2", "t1"]),  # "4K" < "pro" < "std" as text; ties newest first
])
def test_sort_rows(by: str, descending: bool, expected: list[str]) -> None:
    assert ids(hv.sort_rows(ROWS, by, descending)) == expected


def test_sort_rejects_unknown_column() -> None:
    with pytest.raises(ValueError, match="cannot sort"):
        hv.sort_rows(ROWS, "Colour")


def test_facets() -> None:
    f = hv.facets(ROWS)
    assert f.modes == ("4K", "pro", "std")
    assert f.elements == ("fox", "Fox", "owl") or f.elements == ("Fox", "fox", "owl")
    assert (f.first_day, f.last_day) == (date(2025, 3, 1), date(2025, 3, 3))
    assert hv.facets([]) == hv.Facets((), (), None, None)


def test_table_frame_has_badges_links_and_costs() -> None:
    frame = hv.table_frame(ROWS)
    assert list(frame.index) == ["t1", "t2", "t3", "t4"]
    assert tuple(frame.columns) == hv.TABLE_COLUMNS
    assert frame.loc["t2", "State"] == "❌ failed"
    assert "Details" not in frame.columns  # an in-app link column opened a new tab (an empty session)
    assert frame.loc["t1", "Ratio"] == "16:9" and frame.loc["t1", "Shots"] == 1
    assert frame.loc["t1", "Took (s)"] == 40.0
    assert frame.loc["t1", "Rating"] == "★★★★★"
    assert frame.loc["t4", "Elements"] == "Fox, owl"
    assert str(frame["Created"].dt.tz) == "UTC"
    assert frame["Est. credits"].isna().tolist() == [False, False, True, False]
    assert hv.table_frame([]).empty


@pytest.mark.parametrize(("value", "flat"), [
    ({"a": 1, "b": {"c": "x"}}, {"a": 1, "b.c": "x"}),
    ({"l": [{"p": "one"}, {"p": "two"}]}, {"l[0].p": "one", "l[1].p": "two"}),
    ({"e": [], "d": {}, "n": None}, {"e": [], "d": {}, "n": None}),
    ({"m": [[1, 2]]}, {"m[0][0]": 1, "m[0][1]": 2}),
    ({}, {}),
])
def test_flatten_payload(value: dict, flat: dict) -> None:
    assert flatten_payload(value) == flat


def test_payload_diff_flags_changed_added_and_missing_fields() -> None:
    a = payload(prompt="a cat", mode="std")
    b = payload(prompt="a cat", mode="pro", elements=("fox",))
    diff = {d.path: d for d in payload_diff([a, b])}
    assert diff["input.mode"].values == ("std", "pro") and diff["input.mode"].differs
    assert diff["input.prompt"].values == ("a cat", "a cat") and not diff["input.prompt"].differs
    assert diff["input.kling_elements[0].name"].values == (None, "fox") and diff["input.kling_elements[0].name"].differs
    assert diff["input.sound"].values == ("false", "false")  # non-strings shown as JSON


def test_payload_diff_orders_list_indices_numerically() -> None:
    shots = {"input": {"multi_prompt": [{"prompt": str(i)} for i in range(12)]}}
    paths = [d.path for d in payload_diff([shots])]
    assert paths.index("input.multi_prompt[2].prompt") < paths.index("input.multi_prompt[10].prompt")


@pytest.mark.parametrize(("only", "fields"), [(False, 7), (True, 2)])
def test_diff_frame(only: bool, fields: int) -> None:
    a, b, c = payload(mode="std"), payload(mode="pro"), payload(mode="std", sound=True)
    frame = diff_frame(payload_diff([a, b, c]), ["#1", "#2", "#3"], only_differences=only)
    assert list(frame.columns) == ["Field", "#1", "#2", "#3", "differs"]
    assert len(frame) == fields
    mode = frame.set_index("Field").loc["input.mode"]
    assert (mode["#1"], mode["#2"], mode["#3"], bool(mode["differs"])) == ("std", "pro", "std", True)


def test_diff_frame_marks_absent_and_needs_unique_labels() -> None:
    frame = diff_frame(payload_diff([payload(), payload(elements=("owl",))]), ["a", "b"], True)
    assert ABSENT in frame["a"].tolist()
    with pytest.raises(ValueError, match="unique"):
        diff_frame([], ["a", "a"])


@pytest.mark.parametrize(("library", "missing"), [
    ([], ["Fox", "owl"]), (["fox"], ["owl"]), (["FOX", "Owl"], []), (["owl", "fox", "cat"], []),
])
def test_missing_elements(library: list[str], missing: list[str]) -> None:
    assert hv.missing_elements(ROWS[3], library) == missing


def test_missing_elements_reads_the_payload_too() -> None:
    row = replace(make("p", elements=("heron",)), elements=())
    assert hv.missing_elements(row, []) == ["heron"]


def test_archived_videos_are_found_by_task_id_never_by_the_rows_path(tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    found = (videos / f"{ROWS[0].task_id}.mp4").resolve()
    found.write_bytes(b"mp4")
    media = FileMedia(tmp_path)
    assert media.video(replace(ROWS[0], local_video="/elsewhere/videos/t1.mp4").task_id) == found
    assert media.video(replace(ROWS[1], local_video="/etc/passwd").task_id) is None  # a row never names the file
    assert media.delete_video(ROWS[0].task_id) and not found.exists()
    assert media.video(ROWS[0].task_id) is None and not media.delete_video(ROWS[0].task_id)


@pytest.mark.parametrize(("row", "checkable"), [
    (make("a", state="queued"), True), (make("a", state="running", stale=True), True),
    (make("a", state="succeeded"), False), (make("a", state="failed"), False),
    (make("unknown-abc", state="unknown"), False),
])
def test_is_checkable(row: HistoryRow, checkable: bool) -> None:
    assert hv.is_checkable(row) is checkable


@pytest.mark.parametrize(("row", "text"), [
    (ROWS[0], "Estimated 50 credits · consumed 50"),
    (ROWS[1], "Estimated 90 credits · consumed not reported"),
    (ROWS[2], "Estimated — credits · consumed not final until it finishes"),
    (replace(ROWS[2], credits_consumed=0.0), "Estimated — credits · consumed not final until it finishes"),
    (replace(ROWS[1], credits_consumed=None, state="succeeded"), "Estimated 90 credits · consumed not reported"),
])
def test_credits_text(row: HistoryRow, text: str) -> None:
    assert hv.credits_text(row) == text


def test_timing_text() -> None:
    assert hv.timing_text(ROWS[0], T0) == "Submitted 2025-03-01 12:00:00 UTC · finished 12:00:40 UTC · took 40 s"
    running = replace(ROWS[2], last_checked_at=ROWS[2].created_at + timedelta(seconds=30))
    now = running.created_at + timedelta(seconds=95)
    assert hv.timing_text(running, now) == "Submitted 2025-03-03 12:00:00 UTC · waiting 95 s · last checked 12:00:30 UTC"


def test_settings_summary_and_labels() -> None:
    summary = hv.settings_summary(ROWS[1])
    assert summary["Mode"] == "pro" and summary["Sound"] == "on" and summary["Credits"] == "90"
    assert summary["Rating"] == "★★" and hv.settings_summary(ROWS[2])["Rating"] == "unrated"
    assert hv.run_label(ROWS[0]) == "03-01 12:00:00 · std · sound off · 16:9 · A red fox in snow · t1"


def test_hidden_live_runs_are_counted_with_a_way_back() -> None:
    rows = [make("a", origin="live", account="key-A"), make("b", origin="live", account="key-A"),
            make("c", origin="live", account="key-B"), make("d", origin="live"), make("e")]
    assert hv.hidden_live_runs(rows, "") == 3            # a sandbox session after a reload
    assert hv.hidden_live_runs(rows, "key-A") == 1       # the key that made a and b
    note = hv.hidden_runs_note(3, sandbox=True)
    assert note.startswith("3 live run(s) are hidden") and "enter the key that made them" in note
    assert hv.hidden_runs_note(0, sandbox=True) == ""


def test_table_shows_ratio_and_shot_count() -> None:
    multi = make("m", payload={"model": "kling-3.0/video", "input": {
        "multi_shots": True, "aspect_ratio": "9:16", "mode": "std", "sound": True, "duration": "6",
        "multi_prompt": [{"prompt": "a", "duration": 3}, {"prompt": "b", "duration": 3}]}})
    frame = hv.table_frame([multi])
    assert frame.loc["m", "Ratio"] == "9:16" and frame.loc["m", "Shots"] == 2
    assert "sound on · 9:16 · a | b" in hv.run_label(multi)


def test_timing_shows_kies_own_cost_time_beside_the_apps() -> None:
    row = replace(ROWS[0], kie_cost_time=42.0)
    text = hv.timing_text(row, row.created_at)
    assert "took" in text and "KIE's costTime 42 s" in text
    # documented as ms, observed in seconds: a value over a day is read as milliseconds
    assert "KIE's costTime 42000 s" in hv.timing_text(replace(ROWS[0], kie_cost_time=42_000_000.0), row.created_at)
