"""AppTest for pages/3_History.py: table and filters, detail, rating/notes, delete, compare, fork, import, errors."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from lib.history import view as hv
from lib.history.diff import ABSENT
from lib.history.ledger import Ledger
from lib.history.row import HistoryRow
from lib.history.transfer import export_csv
from lib.kie.client import KieClient
from lib.kie.errors import advice_for_failure
from lib.sandbox.server import start_sandbox
from lib.storage.files import FileMedia
from lib.tasks.submit import submit_payload
from tests.conftest import shown_text

NOW = datetime.now(UTC).replace(microsecond=0)
APP = str(Path(__file__).resolve().parents[2] / "home.py")


def payload(prompt: str, mode: str = "std", sound: bool = False, elements: tuple[str, ...] = ()) -> dict:
    inp = {"prompt": prompt, "mode": mode, "sound": sound, "duration": "5", "aspect_ratio": "16:9",
           "multi_shots": False}
    if elements:
        inp["kling_elements"] = [{"name": n, "description": n, "element_input_urls": ["https://x/a.png"] * 2}
                                 for n in elements]
    return {"model": "kling-3.0/video", "input": inp}


def row(task_id: str, prompt: str, *, minutes: int, state: str = "succeeded", origin: str = "sandbox",
        mode: str = "std", sound: bool = False, elements: tuple[str, ...] = (), **fields) -> HistoryRow:
    base = HistoryRow.from_payload(task_id, payload(prompt, mode, sound, elements), origin=origin, state=state,
                                   created_at=NOW - timedelta(minutes=minutes), estimated_credits=50)
    return replace(base, **fields)


@pytest.fixture
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "data"
    (folder / "videos").mkdir(parents=True)
    monkeypatch.setenv("KLING_STUDIO_DATA", str(folder))
    return folder


@pytest.fixture
def ledger(data: Path) -> Ledger:
    """Four runs: two succeeded (one with a local video), one failed, one with an unknown outcome."""
    led = Ledger.in_dir(data, fsync=False)
    video = data / "videos" / "task_ok1.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    for r in (
        row("task_ok1", "A red fox in the snow", minutes=50, elements=("fox",), local_video=str(video), rating=4,
            credits_consumed=50.0, result_url="https://tempfile.aiquickdraw.com/ok1.mp4"),
        row("task_ok2", "A red fox at night", minutes=40, mode="pro", sound=True, credits_consumed=80.0,
            result_url="https://tempfile.aiquickdraw.com/ok2.mp4"),
        row("task_bad", "Ocean waves", minutes=30, state="failed", fail_code="501", fail_msg="content policy"),
        row("unknown-0123456789ab", "Lost in transit", minutes=20, state="unknown", origin="live"),
    ):
        led.append(r)
    return led


def open_history(task: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60).run()
    if task:
        at.query_params["task"] = task
    at.switch_page("pages/3_History.py").run()
    assert not at.exception, at.exception
    return at


def table_ids(at: AppTest) -> list[str]:
    return list(at.dataframe[0].value["task_id"])


def texts(elements) -> str:
    return "\n".join(shown_text(e.value) for e in elements)


def test_empty_history_says_how_to_start(data: Path) -> None:
    at = open_history()
    assert "No runs yet" in texts(at.info)


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("history_f_states", ["succeeded"], ["task_ok2", "task_ok1"]),
    ("history_f_states", ["failed", "unknown"], ["unknown-0123456789ab", "task_bad"]),
    ("history_f_origins", ["live"], ["unknown-0123456789ab"]),
    ("history_f_modes", ["pro"], ["task_ok2"]),
    ("history_f_sound", "on", ["task_ok2"]),
    ("history_f_elements", ["fox"], ["task_ok1"]),
    ("history_f_text", "red fox", ["task_ok2", "task_ok1"]),
    ("history_f_text", "OCEAN", ["task_bad"]),
    ("history_f_rating", 4, ["task_ok1"]),
])
def test_filters(ledger: Ledger, key: str, value, expected: list[str]) -> None:
    at = open_history()
    assert table_ids(at) == ["unknown-0123456789ab", "task_bad", "task_ok2", "task_ok1"]  # newest first
    at.get_by_key(key).set_value(value).run()
    assert not at.exception, at.exception
    assert table_ids(at) == expected
    assert f"{len(expected)} of 4 run(s) shown" in texts(at.caption)


def test_date_range_and_sorting(ledger: Ledger) -> None:
    at = open_history()
    at.selectbox(key="history_sort").set_value("Rating").run()
    assert table_ids(at)[0] == "task_ok1"
    at.toggle(key="history_sort_desc").set_value(False).run()
    assert table_ids(at)[-1] == "task_ok1"
    tomorrow = (NOW + timedelta(days=1)).date()
    at.date_input(key="history_f_dates").set_value((tomorrow, tomorrow)).run()
    assert table_ids(at) == []


def test_table_badges_and_links(ledger: Ledger) -> None:
    frame = open_history().dataframe[0].value.set_index("task_id")
    assert frame.loc["task_bad", "State"] == "❌ failed"
    assert frame.loc["unknown-0123456789ab", "State"] == "❓ unknown"
    assert "Details" not in frame.columns  # rows are selected in place: no link opening a new tab
    assert frame.loc["task_ok2", "Result"] == "https://tempfile.aiquickdraw.com/ok2.mp4"
    assert frame.loc["task_ok2", "Credits used"] == 80.0


def test_rerun_does_not_rebuild_the_table_until_the_view_or_the_file_changes(ledger: Ledger, monkeypatch) -> None:
    calls: list[int] = []
    real = hv.table_frame
    monkeypatch.setattr(hv, "table_frame", lambda rows: calls.append(len(rows)) or real(rows))
    at = open_history()
    at.run()
    assert calls == [4]  # a rerun with the same view and ledger builds nothing
    at.text_input(key="history_f_text").set_value("fox").run()
    at.text_input(key="history_f_text").set_value("").run()
    assert calls == [4, 2]  # only the page's rows; the first view came from the cache
    ledger.update("task_ok2", notes="changed elsewhere")
    at.run()
    assert calls == [4, 2, 4]


def test_deep_link_shows_failure_reason_with_its_fix(ledger: Ledger) -> None:
    at = open_history(task="task_bad")
    assert any("task_bad" in shown_text(s.value) for s in at.subheader)
    error = texts(at.error)
    # the advice follows KIE's message as well as its code: a policy refusal is not "retry"
    assert "content policy" in error and advice_for_failure("501", "content policy") in error
    assert "Estimated 50 credits · consumed not reported" in texts(at.caption)


def test_deep_link_to_unknown_task_warns(ledger: Ledger) -> None:
    at = open_history(task="task_nope")
    assert "task_nope is not in this history" in texts(at.warning)


def test_unknown_outcome_points_to_kie_logs(ledger: Ledger) -> None:
    at = open_history(task="unknown-0123456789ab")
    warning = texts(at.warning)
    assert "outcome is unknown" in warning and "https://kie.ai/logs" in warning
    assert not [b for b in at.button if b.key == "history_check_now"]


def test_picker_selects_and_plays_local_video(ledger: Ledger) -> None:
    at = open_history()
    at.selectbox(key="history_pick").set_value("task_ok1").run()
    assert at.session_state["history_selected"] == "task_ok1"
    assert at.query_params["task"] == ["task_ok1"] or at.query_params["task"] == "task_ok1"
    videos = at.get("video")
    assert len(videos) == 1
    labels = [d.label for d in at.download_button]
    assert labels[:2] == ["⬇️ Download video", "📄 Recipe (JSON)"]
    assert {"⬇️ Export all (CSV)", "⬇️ Export the filtered view (CSV)"} <= set(labels)


def test_remote_only_video_offers_save_locally(ledger: Ledger) -> None:
    at = open_history(task="task_ok2")
    assert "Playing from KIE's link" in texts(at.caption)
    at.button(key="history_archive").click().run()
    assert not at.exception
    # the sandbox app cannot reach tempfile.example: the reason is shown and the row keeps no local file
    assert "could not be saved locally" in texts(at.error)
    assert ledger.get("task_ok2").local_video == ""


def test_rating_and_notes_are_saved(ledger: Ledger) -> None:
    at = open_history(task="task_ok2")
    at.feedback(key="history_rating_task_ok2").set_value(2).run()
    assert ledger.get("task_ok2").rating == 3
    at.text_area(key="history_notes_task_ok2").input("keep this take").run()
    at.button(key="history_save_notes").click().run()
    assert ledger.get("task_ok2").notes == "keep this take"
    assert "Notes saved." in texts(at.success)
    assert at.feedback(key="history_rating_task_ok2").value == 2


@pytest.mark.parametrize("also_video", [False, True])
def test_delete_needs_confirmation(ledger: Ledger, data: Path, also_video: bool) -> None:
    at = open_history(task="task_ok1")
    at.button(key="history_delete").click().run()
    assert "cannot be undone" in texts(at.warning)
    at.button(key="history_delete_no").click().run()
    assert ledger.get("task_ok1") is not None
    at.button(key="history_delete").click().run()
    if also_video:
        at.checkbox(key="history_delete_video").check().run()
    at.button(key="history_delete_yes").click().run()
    assert not at.exception
    assert ledger.get("task_ok1") is None and "task_ok1" not in table_ids(at)
    assert (data / "videos" / "task_ok1.mp4").exists() is not also_video
    assert "Deleted run task_ok1." in texts(at.success)


def test_fork_hands_the_payload_to_compose(ledger: Ledger, monkeypatch) -> None:
    switched: list[str] = []

    def fake_switch(page: str) -> None:
        switched.append(page)
        st.stop()

    monkeypatch.setattr(st, "switch_page", fake_switch)
    at = open_history(task="task_ok2")
    at.button(key="history_fork").click().run()
    assert switched == ["pages/2_Compose.py"]
    assert at.session_state["compose_fork"] == {"payload": ledger.get("task_ok2").payload, "task_id": "task_ok2"}


def test_fork_opens_compose(ledger: Ledger) -> None:
    at = open_history(task="task_ok2")
    at.button(key="history_fork").click().run()
    assert any("Compose" in t.value for t in at.title)


def test_missing_elements_are_flagged(ledger: Ledger) -> None:
    at = open_history(task="task_ok1")
    assert "@fox" in texts(at.warning) and "no longer in the library" in texts(at.warning)


def test_compare_shows_players_and_highlighted_diff(ledger: Ledger) -> None:
    at = open_history()
    compare = at.multiselect(key="history_compare")
    assert len(compare.options) == 3  # finished runs only: the unknown one is not offered
    assert not any("6789ab" in label for label in compare.options)
    compare.set_value(["task_ok1", "task_ok2"]).run()
    diff = next(d for d in at.dataframe if "Field" in d.value.columns).value.set_index("Field")
    assert (diff.loc["input.mode", "#1 task_ok1"], diff.loc["input.mode", "#2 task_ok2"]) == ("std", "pro")
    assert bool(diff.loc["input.mode", "differs"]) and not bool(diff.loc["input.duration", "differs"])
    assert diff.loc["input.kling_elements[0].name", "#2 task_ok2"] == ABSENT
    assert len(at.get("video")) == 2
    at.toggle(key="history_compare_only").set_value(True).run()
    diff = next(d for d in at.dataframe if "Field" in d.value.columns).value
    assert diff["differs"].all() and "input.duration" not in set(diff["Field"])


def _csv_with_problems(ledger: Ledger) -> bytes:
    fresh = [row("task_new1", "=HYPERLINK(\"x\")", minutes=5), row("task_new2", "Imported", minutes=4)]
    good = export_csv([ledger.get("task_ok1"), *fresh]).decode("utf-8-sig")
    return (good + "not,a,valid,row\r\n").encode()


def test_import_preview_then_merge_without_duplicates(ledger: Ledger) -> None:
    at = open_history()
    at.file_uploader(key="history_import_0").set_value(("old.csv", _csv_with_problems(ledger), "text/csv")).run()
    assert not at.exception, at.exception
    assert "3 row(s) ready to import" in texts(at.warning) and "1 bad row(s)" in texts(at.warning)
    assert "2 new run(s); 1 already in the history" in texts(at.caption)
    preview = next(d for d in at.dataframe if "task_new1" in set(d.value.get("task_id", [])))
    assert len(preview.value) == 3
    assert len(ledger.rows()) == 4  # nothing written before Merge
    at.button(key="history_merge").click().run()
    assert "Merged 2 run(s); skipped 1 already present." in texts(at.success)
    assert {r.task_id for r in ledger.rows()} >= {"task_new1", "task_new2"} and len(ledger.rows()) == 6
    assert ledger.get("task_new1").prompt == "=HYPERLINK(\"x\")"
    assert "task_new1" in table_ids(at)


@pytest.mark.parametrize(("data_bytes", "message"), [
    (b"\x00\x01binary", "binary file"),
    (b"name,age\r\nbob,3\r\n", "not a Kling Studio history export"),
    (b"", "empty"),
])
def test_broken_import_never_touches_history(ledger: Ledger, data_bytes: bytes, message: str) -> None:
    before = ledger.path.read_bytes()
    at = open_history()
    at.file_uploader(key="history_import_0").set_value(("bad.csv", data_bytes, "text/csv")).run()
    assert message in texts(at.error)
    assert not [b for b in at.button if b.key == "history_merge"]
    assert ledger.path.read_bytes() == before


def test_an_unreadable_row_is_reported_and_the_rest_still_shows(data: Path) -> None:
    good = export_csv([row("good-run", "fine", minutes=5)]).decode("utf-8-sig")
    content = (good + "1,bad,too,few\r\n").encode()
    (data / "history.csv").write_bytes(content)
    at = open_history()
    assert not at.exception
    assert "unreadable" in texts(at.warning) and "line 3" in texts(at.warning)
    assert at.session_state["history_table_ids"] == ["good-run"]
    assert (data / "history.csv").read_bytes() == content


@pytest.mark.parametrize("content", [
    b"task_id,state\r\nx,queued\r\n",  # header lacks columns
    b"\xff\xfe not utf-8 at all\r\n",
])
def test_broken_ledger_shows_message_and_fix(data: Path, content: bytes) -> None:
    (data / "history.csv").write_bytes(content)
    at = open_history()
    error = texts(at.error)
    assert "cannot be read" in error and "Fix:" in error
    assert (data / "history.csv").read_bytes() == content


def _sandbox_task(data: Path, prompt: str, **config) -> tuple[Ledger, str]:
    """A task created (and persisted) by a sandbox on the app's data folder before the app starts."""
    sandbox = start_sandbox(port=0, data_dir=data / "sandbox", **config)
    led = Ledger.in_dir(data, fsync=False)
    try:
        client = KieClient("sandbox-demo", sandbox.base_url, sandbox.base_url)
        sub = submit_payload(client, led, payload(prompt), origin="sandbox", batch_id="b-1")
        if config.get("progress") == "immediate":
            record = client.get_task(sub.row.task_id)
            led.update(sub.row.task_id, state="succeeded", result_url=record.result_urls[0])
    finally:
        sandbox.stop()
    return led, sub.row.task_id


def test_save_video_locally_uses_a_fresh_link(data: Path) -> None:
    led, task_id = _sandbox_task(data, "A kite over dunes", progress="immediate")
    at = open_history(task=task_id)  # the stored link points at a sandbox that has stopped
    at.button(key="history_archive").click().run()
    assert not at.exception, at.exception
    assert "Video saved in the data folder." in texts(at.success)
    saved = FileMedia(data).video(task_id)
    assert saved is not None and saved.read_bytes()[4:8] == b"ftyp"
    assert not [b for b in at.button if b.key == "history_archive"] and len(at.get("video")) == 1


def test_stale_task_check_now_resumes_and_archives(data: Path) -> None:
    """A sandbox task created before the app started: the app's sandbox knows it; Check now finishes it."""
    led, task_id = _sandbox_task(data, "A heron takes off", progress="queries", every_n=1)
    led.update(task_id, created_at=NOW - timedelta(hours=1), stale=True)
    at = open_history(task=task_id)
    for _ in range(5):
        if led.get(task_id).state == "succeeded":
            break
        assert "Stale, still checking" in texts(at.warning)
        at.button(key="history_check_now").click().run()
        assert not at.exception, at.exception
    done = led.get(task_id)
    assert done.state == "succeeded" and not done.stale
    assert FileMedia(data).video(task_id).parent == data.resolve() / "videos"
    at.run()
    assert len(at.get("video")) == 1 and "✅ succeeded" in at.subheader[0].value


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("history_f_text", "red fox", ["task_ok2", "task_ok1"]),
    ("history_f_states", ["failed"], ["task_bad"]),
    ("history_f_rating", 4, ["task_ok1"]),
])
def test_filters_survive_a_visit_to_another_page(ledger: Ledger, key: str, value, expected: list[str]) -> None:
    at = open_history()
    at.get_by_key(key).set_value(value).run()
    at.switch_page("pages/2_Compose.py").run()
    at.switch_page("pages/3_History.py").run()
    assert not at.exception, at.exception
    assert table_ids(at) == expected


def test_sort_order_and_compared_runs_survive_a_visit_to_another_page(ledger: Ledger) -> None:
    at = open_history()
    at.toggle(key="history_sort_desc").set_value(False).run()
    at.multiselect(key="history_compare").set_value(["task_ok1", "task_ok2"]).run()
    at.switch_page("pages/1_Elements.py").run()
    at.switch_page("pages/3_History.py").run()
    assert not at.exception, at.exception
    assert table_ids(at)[0] == "task_ok1"
    assert at.multiselect(key="history_compare").value == ["task_ok1", "task_ok2"]
    assert not at.warning or "Session State API" not in texts(at.warning)


def test_live_mode_on_a_local_gateway_saves_videos_like_the_follower_does(data: Path, monkeypatch) -> None:
    """KIE_API_BASE on a loopback gateway: the follower may archive from it, so History's buttons may too."""
    sandbox = start_sandbox(port=0, data_dir=data / "sandbox", progress="immediate")
    try:
        env = {"KIE_API_KEY": "live-key-gateway-1", "KIE_API_BASE": sandbox.base_url,
               "KIE_UPLOAD_BASE": sandbox.base_url}
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        led = Ledger.in_dir(data, fsync=False)
        client = KieClient(env["KIE_API_KEY"], sandbox.base_url, sandbox.base_url)
        task_id = submit_payload(client, led, payload("A gull on a mast"), origin="live", batch_id="b-1").row.task_id
        led.update(task_id, state="succeeded", result_url=client.get_task(task_id).result_urls[0])
        at = open_history(task=task_id)
        at.button(key="history_archive").click().run()
        assert not at.exception, at.exception
        assert "Video saved in the data folder." in texts(at.success), texts(at.error)
        assert FileMedia(data).video(task_id) is not None
    finally:
        sandbox.stop()


def test_a_reload_says_how_many_live_runs_are_hidden(ledger: Ledger) -> None:
    """Issue 15.5: a key typed earlier is gone after a reload; History never looks empty and invites a resubmit."""
    for i, account in enumerate(("acct-one", "acct-one", "acct-two")):
        ledger.append(row(f"task_live{i}", "paid run", minutes=5 + i, origin="live", account=account))
    at = open_history()
    warning = texts(at.warning)
    assert "3 live run(s) are hidden" in warning and "enter the key that made them" in warning
    assert not {"task_live0", "task_live1", "task_live2"} & set(table_ids(at))


def test_notes_save_when_the_box_changes(ledger: Ledger) -> None:
    at = open_history(task="task_ok2")
    at.text_area(key="history_notes_task_ok2").input("the better take").run()  # no button pressed
    assert ledger.get("task_ok2").notes == "the better take"
    assert "Notes saved." in texts(at.success)


# -- paging (issue 17): only one page of runs goes to the browser --------------------------------------------------
@pytest.fixture
def many(data: Path) -> Ledger:
    """120 runs, task_m000 the oldest; every tenth one failed."""
    from lib.history.transfer import ImportReport

    led = Ledger.in_dir(data, fsync=False)
    led.merge(ImportReport(rows_ok=[row(f"task_m{i:03d}", f"take {i}", minutes=500 - i,
                                        state="failed" if i % 10 == 0 else "succeeded") for i in range(120)]))
    return led


def turn_to(at: AppTest, number: int) -> None:
    """What clicking a page number does: the pager's value (its key changes with the view)."""
    at.session_state[at.session_state["history_page_key"]] = number
    at.run()


def test_the_table_holds_one_page_and_pages_through_the_rest(many: Ledger) -> None:
    at = open_history()
    assert table_ids(at) == [f"task_m{i:03d}" for i in range(119, 69, -1)]
    assert "120 of 120 run(s) shown (rows 1–50 on this page)" in texts(at.caption)
    turn_to(at, 3)
    assert table_ids(at) == [f"task_m{i:03d}" for i in range(19, -1, -1)]
    assert "rows 101–120" in texts(at.caption)
    at.get_by_key("history_f_states").set_value(["failed"]).run()  # a new view starts at page 1
    assert table_ids(at) == [f"task_m{i:03d}" for i in range(110, -1, -10)]
    assert "12 of 120 run(s) shown." in texts(at.caption)


def test_a_deep_link_opens_a_run_on_another_page(many: Ledger) -> None:
    at = open_history(task="task_m003")
    assert "task_m003" not in table_ids(at)
    assert any("task_m003" in shown_text(s.value) for s in at.subheader)
    assert at.selectbox(key="history_pick").value == "task_m003"
    assert not [w for w in at.warning if "not in this history" in shown_text(w.value)]


def test_runs_picked_to_compare_stay_picked_on_another_page(many: Ledger) -> None:
    at = open_history()
    at.multiselect(key="history_compare").set_value(["task_m119", "task_m118"]).run()
    turn_to(at, 2)
    assert "task_m119" not in table_ids(at)
    assert at.multiselect(key="history_compare").value == ["task_m119", "task_m118"]
    assert "differing field(s) highlighted" in texts(at.caption)


def test_thumbnails_ratio_and_shots_are_columns(ledger: Ledger, monkeypatch) -> None:
    jpeg = b"\xff\xd8\xff\xe0" + b"\x00" * 40

    def thumbnail(self: FileMedia, task_id: str) -> Path | None:
        if task_id != "task_ok1":
            return None
        path = self.data_dir / "thumb.jpg"
        path.write_bytes(jpeg)
        return path

    monkeypatch.setattr(FileMedia, "thumbnail", thumbnail, raising=False)
    frame = open_history().dataframe[0].value.set_index("task_id")
    assert frame.loc["task_ok1", "Thumbnail"].startswith("data:image/jpeg;base64,")
    assert not isinstance(frame.loc["task_ok2", "Thumbnail"], str)  # no video: no picture, no link
    assert frame.loc["task_ok1", "Ratio"] == "16:9" and frame.loc["task_ok1", "Shots"] == 1
