"""AppTest for the Compose page: live checks, cost, dry run, submit once, variants, fork, drafts, progress."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import requests
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.conftest import shown_text

ROOT = Path(__file__).resolve().parents[2]
PAGE = "pages/2_Compose.py"


def png(side: int = 400, colour: str = "red") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (side, side), colour).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KLING_STUDIO_DATA", str(tmp_path / "data"))
    return tmp_path / "data"


def open_compose(**state) -> AppTest:
    at = AppTest.from_file(str(ROOT / "home.py"), default_timeout=60).run()
    for key, value in state.items():
        at.session_state[key] = value
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def submit_button(at: AppTest):
    return next(b for b in at.button if b.label.startswith("Submit"))


def texts(elements) -> str:
    return "\n".join(shown_text(e.value) for e in elements)


def ledger_rows(data_dir: Path) -> list:
    from lib.history.ledger import Ledger

    return Ledger.in_dir(data_dir).rows()


def make_element(data_dir: Path, name: str = "hero") -> None:
    from lib.elements.library import ElementLibrary

    ElementLibrary(data_dir).create(name, "a red fox", files=[("a.png", png(400, "red")), ("b.png", png(400, "blue"))])


# ---------------------------------------------------------------- live checks

@pytest.mark.parametrize(("key", "value", "message"), [
    ("compose_w_prompt", "A @ghost walks", "No element named 'ghost'"),
    ("compose_w_prompt", "x" * 2501, "2,501 characters"),
    ("compose_w_callback", "ftp://example.com/hook", "The callback URL"),
    ("compose_w_prompt", "   ", "The prompt is empty"),
])
def test_errors_appear_next_to_field_and_disable_submit(data_dir, key, value, message) -> None:
    at = open_compose(compose_prompt="a fox runs")
    assert not submit_button(at).disabled
    widget = at.text_area(key=key) if key == "compose_w_prompt" else at.text_input(key=key)
    widget.input(value).run()
    assert message in texts(at.error)
    assert submit_button(at).disabled


def test_shots_out_of_range_and_sound_locked_in_multi_shot(data_dir) -> None:
    at = open_compose(compose_prompt="opening")
    at.toggle(key="compose_w_multi").set_value(True).run()
    shots = at.session_state["compose_shots"]
    assert [s["prompt"] for s in shots] == ["opening"]
    at.number_input(key="compose_w_slot_0_duration").set_value(12).run()
    at.button(key="compose_add_shot").click().run()
    at.text_area(key="compose_w_slot_1_prompt").input("closing").run()
    at.number_input(key="compose_w_slot_1_duration").set_value(6).run()
    assert "18 s" in texts(at.error) and submit_button(at).disabled
    assert at.checkbox(key="compose_w_sound_locked").disabled and at.checkbox(key="compose_w_sound_locked").value
    assert "KIE requires sound" in texts(at.caption)
    at.number_input(key="compose_w_slot_1_duration").set_value(3).run()
    assert not at.error and not submit_button(at).disabled
    payload = json.loads(at.json[0].value)
    assert payload["input"]["duration"] == "15" and payload["input"]["sound"] is True


def test_warnings_do_not_block(data_dir) -> None:
    at = open_compose(compose_prompt="a fox", compose_cfg_on=True)
    assert "not in KIE's Kling 3.0 schema" in texts(at.warning)
    assert not submit_button(at).disabled


# ---------------------------------------------------------------- cost, preview, dry run

@pytest.mark.parametrize(("mode", "sound", "label"), [
    ("std", False, "Submit · 70 credits (US$0.35)"),
    ("pro", True, "Submit · 135 credits (US$0.675)"),
    ("4K", True, "Submit · 335 credits (US$1.675)"),
])
def test_cost_on_submit_label(data_dir, mode, sound, label) -> None:
    at = open_compose(compose_prompt="a fox")
    at.radio(key="compose_w_mode").set_value(mode).run()
    at.checkbox(key="compose_w_sound").set_value(sound).run()
    assert submit_button(at).label == label


def test_over_limit_needs_confirmation(data_dir) -> None:
    at = open_compose(compose_prompt="a fox")
    at.number_input(key="compose_w_limit").set_value(50).run()
    assert "above your per-submit limit" in texts(at.warning) and submit_button(at).disabled
    next(c for c in at.checkbox if c.label == "Submit anyway").check().run()
    assert not submit_button(at).disabled


def test_preview_and_snippets_never_show_the_key(monkeypatch, data_dir, sandbox) -> None:
    monkeypatch.setenv("KIE_API_KEY", "live-secret-key-123")
    monkeypatch.setenv("KIE_API_BASE", sandbox.base_url)
    monkeypatch.setenv("KIE_UPLOAD_BASE", sandbox.base_url)
    at = open_compose(compose_prompt="a fox", compose_callback="https://cb.test/hook")
    assert json.loads(at.json[0].value)["callBackUrl"] == "https://cb.test/hook"
    assert not at.code  # only the open tab is drawn
    everything = texts(at.json) + texts(at.markdown) + texts(at.caption)
    code = ""
    for tab in ("cURL", "Python"):  # picking a tab draws it (and only it)
        at.session_state["compose_preview_tab"] = tab
        at.run()
        assert len(at.code) == 1 and not at.json
        code += texts(at.code)
    assert "Bearer $KIE_API_KEY" in code and 'os.environ["KIE_API_KEY"]' in code
    everything += code + texts(at.markdown) + texts(at.caption)
    assert "live-secret-key-123" not in everything


def test_dry_run_spends_nothing(data_dir) -> None:
    at = open_compose(compose_prompt="a fox")
    before = at.session_state["settings_balance"]
    at.button(key="compose_dry_run_btn").click().run()
    assert "Dry run OK: 1 task(s) for 70 credits" in texts(at.success)
    assert ledger_rows(data_dir) == [] and at.session_state["compose_followed"] == []
    at.sidebar.button(key="settings_refresh_balance").click().run()
    assert at.session_state["settings_balance"] == before


# ---------------------------------------------------------------- submit

def test_double_submit_creates_one_task_and_follows_it(data_dir) -> None:
    at = open_compose(compose_prompt="a fox runs")
    old_token = at.session_state["compose_click_token"]
    submit_button(at).click().run()
    assert not at.exception, at.exception
    assert len(ledger_rows(data_dir)) == 1
    assert at.session_state["compose_click_token"] != old_token
    assert "Submitted 1 task(s)" in texts(at.success)
    # the same click arriving again (a rerun that never renewed the token) is a no-op
    at.session_state["compose_click_token"] = old_token
    at.run()
    submit_button(at).click().run()
    assert len(ledger_rows(data_dir)) == 1
    assert "already submitted" in texts(at.info)
    assert at.session_state["compose_followed"] == [ledger_rows(data_dir)[0].task_id]


def test_variants_batch_and_progress_to_video(data_dir) -> None:
    from lib.storage.files import FileMedia
    from lib.tasks.follow import refresh_task

    at = open_compose(compose_prompt="a fox runs")
    at.number_input(key="compose_w_takes").set_value(2).run()
    at.multiselect(key="compose_w_grid_modes").select("std").select("pro").run()
    assert submit_button(at).label == "Submit 4 tasks · 320 credits (US$1.60)"
    submit_button(at).click().run()
    rows = ledger_rows(data_dir)
    assert len(rows) == 4 and len({r.batch_id for r in rows}) == 1
    assert "Progress of this session's tasks" in texts(at.subheader)
    client = at.session_state["_settings_client"][1]
    requests.post(client.api_base + "/sandbox/clock", json={"advance": 30}, timeout=5).raise_for_status()
    from lib.history.ledger import Ledger

    ledger = Ledger.in_dir(data_dir)
    for row in rows:
        refresh_task(client, ledger, FileMedia(data_dir), row, allow_private=True)
    read = []
    real_read = Path.read_bytes
    with pytest.MonkeyPatch.context() as mp:  # the progress cards redraw every 2 s: no MP4 is read for them
        mp.setattr(Path, "read_bytes", lambda self: read.append(self.suffix) or real_read(self))
        at.run()
    assert not at.exception, at.exception
    assert texts(at.markdown).count("**succeeded**") == 4
    assert len(at.get("video")) == 4
    assert len(at.get("download_button")) == 4 and ".mp4" not in read


def test_element_is_uploaded_at_submit(data_dir) -> None:
    make_element(data_dir)
    at = open_compose(compose_pending_insert=["hero"])
    assert at.session_state["compose_prompt"] == "@hero"
    assert "Uploaded to KIE when you submit" in texts(at.caption)
    at.text_area(key="compose_w_prompt").input("@hero runs along the beach").run()
    submit_button(at).click().run()
    assert not at.exception, at.exception
    (row,) = ledger_rows(data_dir)
    element = row.payload["input"]["kling_elements"][0]
    assert element["name"] == "hero" and all("/files/" in u for u in element["element_input_urls"])


# ---------------------------------------------------------------- frames

@pytest.mark.parametrize(("data", "ok"), [(png(), True), (b"GIF89a" + b"\0" * 40, False)])
def test_first_frame_upload(data_dir, data, ok) -> None:
    at = open_compose(compose_prompt="a fox")
    at.radio(key="compose_w_first_source").set_value("upload").run()
    at.file_uploader(key="compose_w_first_file").set_value(("frame.png", data, "image/png")).run()
    assert not at.exception, at.exception
    payload = json.loads(at.json[0].value)
    if ok:
        assert payload["input"]["image_urls"][0].endswith(".png") and "aspect_ratio" not in payload["input"]
        assert at.selectbox(key="compose_w_aspect").disabled
        assert "Decided by the first frame" in texts(at.caption)
    else:
        assert "image_urls" not in payload["input"] and "GIF" in texts(at.error)
        assert submit_button(at).disabled


# ---------------------------------------------------------------- fork, page switch, drafts

def test_fork_fills_every_field_and_flags_missing_elements(data_dir) -> None:
    make_element(data_dir)
    payload = {"model": "kling-3.0/video", "callBackUrl": "https://cb.test/x", "input": {
        "multi_shots": True, "sound": True, "duration": "7", "mode": "pro", "image_urls": ["https://x.test/f.png"],
        "multi_prompt": [{"prompt": "@hero sits", "duration": 3}, {"prompt": "@ghost leaves", "duration": 4}],
        "kling_elements": [{"name": "hero", "description": "d", "element_input_urls": ["https://x.test/a.png"] * 2},
                           {"name": "ghost", "description": "d", "element_input_urls": ["https://x.test/a.png"] * 2}]}}
    at = open_compose(compose_fork={"payload": payload, "task_id": "task_abc"})
    assert at.toggle(key="compose_w_multi").value is True
    prompts = [a.value for a in at.text_area if a.key.startswith("compose_w_slot_")]
    assert prompts == ["@hero sits", "@ghost leaves"]
    assert at.radio(key="compose_w_mode").value == "pro"
    assert at.text_input(key="compose_w_first_url").value == "https://x.test/f.png"
    assert at.text_input(key="compose_w_callback").value == ""  # a callback URL is never carried over
    assert "task_abc" in texts(at.info)
    assert "@ghost" in texts(at.warning) and "No element named 'ghost'" in texts(at.error)
    assert at.session_state["compose_fork"] is None


def test_form_survives_switching_pages(data_dir) -> None:
    at = open_compose()
    at.text_area(key="compose_w_prompt").input("kept across pages").run()
    at.radio(key="compose_w_mode").set_value("pro").run()
    at.switch_page("pages/3_History.py").run()
    at.switch_page(PAGE).run()
    assert at.text_area(key="compose_w_prompt").value == "kept across pages"
    assert at.radio(key="compose_w_mode").value == "pro"


def test_drafts_save_and_reopen(data_dir) -> None:
    at = open_compose(compose_prompt="first idea")
    at.text_input(key="compose_w_draft_name").input("idea one").run()
    at.button(key="compose_save_draft").click().run()
    assert "Saved draft 'idea one'" in texts(at.success)
    assert json.loads((data_dir / "drafts.json").read_text())["drafts"]["idea one"]["form"]["compose_prompt"] == "first idea"
    at.text_area(key="compose_w_prompt").input("something else").run()
    at.selectbox(key="compose_w_draft_pick").select("idea one").run()
    at.button(key="compose_open_draft").click().run()
    assert at.text_area(key="compose_w_prompt").value == "first idea"


def test_an_element_four_days_old_is_reuploaded_on_submit_without_touching_it(data_dir) -> None:
    make_element(data_dir)
    at = open_compose(compose_pending_insert=["hero"])
    at.text_area(key="compose_w_prompt").input("@hero runs along the beach").run()
    submit_button(at).click().run()
    first = ledger_rows(data_dir)[0].payload["input"]["kling_elements"][0]["element_input_urls"]
    client = at.session_state["_settings_client"][1]
    # four days pass on the file host: the first upload is gone there
    requests.post(client.api_base + "/sandbox/clock", json={"advance": 4 * 86400}, timeout=5).raise_for_status()
    assert all(requests.get(u, timeout=5).status_code == 404 for u in first)
    at.session_state["compose_click_token"] = "second-click"
    at.run()
    submit_button(at).click().run()
    assert not at.exception, at.exception
    rows = sorted(ledger_rows(data_dir), key=lambda r: r.created_at)
    assert len(rows) == 2
    second = rows[1].payload["input"]["kling_elements"][0]["element_input_urls"]
    assert all(requests.get(u, timeout=5).status_code == 200 for u in second)  # uploaded again (same path reused)
    from lib.elements.library import ElementLibrary

    media = ElementLibrary(data_dir).by_name("hero").media
    assert all(m.uploaded_at and m.uploaded_at > rows[0].created_at.isoformat() for m in media)


def test_a_fresh_form_shows_no_error_until_something_is_typed(data_dir) -> None:
    at = open_compose()
    assert not at.error, texts(at.error)
    assert "Write a prompt (or switch on Multi-shot) to begin" in texts(at.caption)
    assert submit_button(at).disabled
    at.text_area(key="compose_w_prompt").input("a fox").run()
    at.text_area(key="compose_w_prompt").input("").run()
    assert "The prompt is empty" in texts(at.error)
    assert submit_button(at).disabled


# ---------------------------------------------------------------- issue 16: one value, one variant, kept forms

@pytest.mark.parametrize("seconds", [13, 0])
def test_a_shot_out_of_range_is_the_value_shown_validated_and_sent(data_dir, seconds: int) -> None:
    at = open_compose(compose_prompt="opening")
    at.toggle(key="compose_w_multi").set_value(True).run()
    box = at.number_input(key="compose_w_slot_0_duration")
    assert box.min is None and box.max is None  # the widget never clamps what the form keeps
    box.set_value(seconds).run()
    assert at.number_input(key="compose_w_slot_0_duration").value == seconds
    assert at.session_state["compose_shots"][0]["duration"] == seconds
    assert f"Total {seconds} s" in "".join(m.value for m in at.markdown)
    payload = at.json[0].value
    assert f'"duration": {seconds}' in payload  # the request preview carries the same value
    assert "1 to 12" in texts(at.error) and submit_button(at).disabled


def test_the_variant_picker_and_the_json_describe_the_same_variant(data_dir) -> None:
    at = open_compose(compose_prompt="a fox runs")
    at.multiselect(key="compose_w_grid_modes").set_value(["std", "pro"]).run()
    at.multiselect(key="compose_w_grid_sounds").set_value([False, True]).run()
    pick = at.selectbox(key="compose_w_preview_pick")
    assert pick.options == ["std · sound off", "std · sound on", "pro · sound off", "pro · sound on"]
    pick.set_value("std · sound on").run()
    shown = json.loads(at.json[0].value)["input"]
    assert (shown["mode"], shown["sound"]) == ("std", True)
    at.multiselect(key="compose_w_grid_sounds").set_value([]).run()  # "clear all"
    at.multiselect(key="compose_w_grid_modes").set_value(["pro", "4K"]).run()
    pick = at.selectbox(key="compose_w_preview_pick")
    assert pick.value in pick.options  # never a variant that no longer exists
    shown = json.loads(at.json[0].value)["input"]
    assert pick.value == f"{shown['mode']} · sound {'on' if shown['sound'] else 'off'}"


def test_the_form_is_saved_under_its_address_and_reopens_from_it(data_dir) -> None:
    at = open_compose()
    at.text_area(key="compose_w_prompt").input("a heron lands on a lake").run()
    form_id = at.query_params["form"][0] if isinstance(at.query_params["form"], list) else at.query_params["form"]
    saved = (data_dir / "compose_forms.json").read_text()
    assert "a heron lands on a lake" in saved and "api_key" not in saved and "sandbox-demo" not in saved
    # a reload (or a shared link) is a new session: the address brings the form back
    fresh = AppTest.from_file(str(ROOT / "home.py"), default_timeout=60).run()
    fresh.switch_page(PAGE)
    fresh.query_params["form"] = form_id
    fresh.run()
    assert fresh.text_area(key="compose_w_prompt").value == "a heron lands on a lake"
    # editing a form opened from someone's address gives it its own id: the shared link keeps its job
    fresh.text_area(key="compose_w_prompt").input("a heron takes off").run()
    new_id = fresh.query_params["form"]
    new_id = new_id[0] if isinstance(new_id, list) else new_id
    assert new_id != form_id
    from lib.compose.drafts import DraftStore

    assert DraftStore(data_dir).load_form(form_id)["compose_prompt"] == "a heron lands on a lake"


def test_an_unknown_form_address_says_so_and_keeps_an_empty_form(data_dir) -> None:
    at = AppTest.from_file(str(ROOT / "home.py"), default_timeout=60).run()
    at.switch_page(PAGE)
    at.query_params["form"] = "../../etc/passwd"
    at.run()
    assert not at.exception and "No saved form has the id" in texts(at.warning)
    assert at.text_area(key="compose_w_prompt").value == ""


def test_a_recipe_file_opens_with_the_fork_checks(data_dir) -> None:
    from lib.history.row import HistoryRow
    from lib.history.transfer import recipe_json

    payload = {"model": "kling-3.0/video", "callBackUrl": "https://evil.example/steal",
               "input": {"prompt": "a @ghost in the fog", "duration": "5", "mode": "pro", "sound": True,
                         "aspect_ratio": "9:16", "multi_shots": False}}
    recipe = recipe_json(HistoryRow.from_payload("task_recipe1", payload, origin="sandbox", state="succeeded"))
    at = open_compose()
    at.file_uploader(key="compose_w_recipe_0").set_value(("recipe.json", recipe.encode(), "application/json")).run()
    at.button(key="compose_open_recipe").click().run()
    assert at.session_state["compose_prompt"] == "a @ghost in the fog"
    assert at.session_state["compose_mode"] == "pro" and at.session_state["compose_callback"] == ""
    assert "recipe of task task\\_recipe1" in "".join(i.value for i in at.info)
    assert "@ghost" in texts(at.warning)  # missing element flagged, as in a fork


@pytest.mark.parametrize(("data", "reason"), [
    (b"[" * 100 + b"]" * 100, "nested more than"),
    (b"{not json", "not valid JSON"),
    (b'{"kling_studio_recipe": 1, "payload": {}}', "no createTask payload"),
])
def test_a_bad_recipe_file_changes_nothing(data_dir, data: bytes, reason: str) -> None:
    at = open_compose(compose_prompt="keep me")
    at.file_uploader(key="compose_w_recipe_0").set_value(("r.json", data, "application/json")).run()
    at.button(key="compose_open_recipe").click().run()
    assert reason in texts(at.error) and at.session_state["compose_prompt"] == "keep me"


def test_the_submitted_banner_goes_when_the_form_changes(data_dir) -> None:
    at = open_compose(compose_prompt="a fox runs")
    submit_button(at).click().run()
    assert "Submitted 1 task(s)" in texts(at.success)
    at.text_area(key="compose_w_prompt").input("a fox sleeps").run()
    assert "Submitted 1 task(s)" not in texts(at.success)


def _components(at: AppTest, name: str) -> list:
    found, stack = [], [at._tree]
    while stack:
        node = stack.pop()
        proto = getattr(node, "proto", None)
        if getattr(node, "type", None) == "bidi_component" and proto.component_name == name:
            found.append(proto)
        stack.extend(getattr(node, "children", {}).values())
    return found


def test_the_at_autocomplete_gets_names_as_json_data_for_every_prompt_field(data_dir: Path) -> None:
    make_element(data_dir, "hero")
    at = open_compose(compose_multi=True, compose_shots=[{"id": "s1", "prompt": "a", "duration": 3}])
    (mention,) = _components(at, "kling_mention")
    assert mention.html_content == ""  # nothing from the library is markup: names travel as data only
    data = json.loads(mention.json)
    assert data["names"] == ["hero"]
    # every prompt field there may be (it listens on the document), so a new shot or the switch does not redraw it
    assert set(data["keys"]) == {"compose_w_prompt", "compose_w_prompt_variants",
                                 *(f"compose_w_slot_{i}_prompt" for i in range(5))}
    # the fields it serves are still the plain widgets AppTest (and a browser without the script) can fill
    at.text_area(key="compose_w_slot_0_prompt").set_value("the @hero leaps").run()
    assert at.session_state["compose_shots"][0]["prompt"] == "the @hero leaps"


def test_without_elements_no_autocomplete_is_mounted(data_dir: Path) -> None:
    at = open_compose()
    assert _components(at, "kling_mention") == []


def test_a_moved_shot_takes_its_text_and_seconds_to_the_widgets_of_its_new_place(data_dir) -> None:
    """Shot widgets are keyed by their place (a move updates what the browser drew): after a move each place shows
    its new shot, and an edit there changes that shot, not the one that was there before."""
    shots = [{"id": "s1", "prompt": "opening", "duration": 4}, {"id": "s2", "prompt": "closing", "duration": 6}]
    at = open_compose(compose_multi=True, compose_shots=shots)
    at.button(key="compose_down_0").click().run()
    assert [s["id"] for s in at.session_state["compose_shots"]] == ["s2", "s1"]
    assert at.text_area(key="compose_w_slot_0_prompt").value == "closing"
    assert at.number_input(key="compose_w_slot_0_duration").value == 6
    assert at.text_area(key="compose_w_slot_1_prompt").value == "opening"
    at.text_area(key="compose_w_slot_0_prompt").input("closing, wider").run()
    at.number_input(key="compose_w_slot_1_duration").set_value(5).run()
    assert at.session_state["compose_shots"] == [{"id": "s2", "prompt": "closing, wider", "duration": 6},
                                                 {"id": "s1", "prompt": "opening", "duration": 5}]
    payload = json.loads(at.json[0].value)
    assert payload["input"]["multi_prompt"] == [{"prompt": "closing, wider", "duration": 6},
                                                {"prompt": "opening", "duration": 5}]
