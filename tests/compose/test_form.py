"""Unit tests for lib/compose/form.py: the form → Job → payload logic, variants, snippets, drafts and submit."""

from __future__ import annotations

import ast
import io
import json
import shlex
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from lib.compose import form as cp
from lib.compose.batches import (
    batch_cost,
    dry_run,
    elapsed_s,
    followed_rows,
    needs_confirmation,
    submit_label,
    submit_variants,
    variant_jobs,
    video_source,
)
from lib.compose.drafts import DRAFTS_FILE, DraftStore
from lib.compose.snippets import PENDING_HOST, curl_command, python_snippet
from lib.kie.errors import KieApiError, advice_for_failure
from lib.kling import rules
from lib.kling.job import ElementSpec, Job, Shot, build_payload
from lib.kling.problems import Problem
from lib.kling.validation import validate_payload
from lib.storage.files import FileMedia


def png(side: int = 400, colour: str = "red") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (side, side), colour).save(buf, "PNG")
    return buf.getvalue()


def form(**fields) -> dict:
    f = cp.default_form()
    f.update(fields)
    return f


SPEC = ElementSpec("hero", "a red fox", image_urls=("https://x.test/a.png", "https://x.test/b.png"))


# ---------------------------------------------------------------- problems → fields

@pytest.mark.parametrize(("path", "multi", "field"), [
    ("input.prompt", False, "prompt"),
    ("input.multi_prompt[2].prompt", True, "shot2"),
    ("input.multi_prompt[0].duration", True, "shot0"),
    ("input.multi_prompt", True, "shots"),
    ("input.duration", False, "duration"),
    ("input.duration", True, "shots"),
    ("input.mode", False, "mode"),
    ("input.sound", True, "sound"),
    ("input.aspect_ratio", False, "aspect"),
    ("input.image_urls[0]", False, "first_frame"),
    ("input.image_urls[1]", False, "last_frame"),
    ("input.image_urls", False, "frames"),
    ("input.kling_elements[1].name", False, "elements"),
    ("input.cfg_scale", False, "cfg"),
    ("callBackUrl", False, "callback"),
    ("model", False, "general"),
    ("", False, "general"),
])
def test_field_of(path: str, multi: bool, field: str) -> None:
    assert cp.field_of(path, multi) == field


def test_problems_by_field_groups_validation_output() -> None:
    payload = build_payload(Job(prompt="a @ghost walks", callback_url="ftp://nope"))
    grouped = cp.problems_by_field(validate_payload(payload))
    assert "@ghost" in grouped["prompt"][0].message
    assert grouped["callback"][0].level == rules.ERROR


# ---------------------------------------------------------------- shots

def test_shot_editor_add_remove_reorder_and_limit() -> None:
    f = form(compose_prompt="opening", compose_duration=5)
    cp.set_multi(f, True)
    assert [(s["prompt"], s["duration"]) for s in f["compose_shots"]] == [("opening", 5)]
    added = [cp.add_shot(f) for _ in range(5)]
    assert added == [True, True, True, True, False] and len(f["compose_shots"]) == rules.SHOTS_MAX
    ids = [s["id"] for s in f["compose_shots"]]
    cp.move_shot(f, 0, 1)
    assert [s["id"] for s in f["compose_shots"]][:2] == [ids[1], ids[0]]
    cp.move_shot(f, 0, -1)  # out of range: nothing moves
    assert [s["id"] for s in f["compose_shots"]][:2] == [ids[1], ids[0]]
    f["compose_active_shot"] = 4
    cp.remove_shot(f, 4)
    assert len(f["compose_shots"]) == 4 and f["compose_active_shot"] == 3


def test_set_multi_keeps_existing_shots() -> None:
    f = form(compose_shots=[cp.new_shot("a", 4)])
    cp.set_multi(f, True)
    cp.set_multi(f, False)
    cp.set_multi(f, True)
    assert [s["prompt"] for s in f["compose_shots"]] == ["a"]


@pytest.mark.parametrize(("durations", "widths", "in_range"), [
    ([3, 3, 4], ["20.00%", "20.00%", "26.67%"], True),
    ([10, 10], ["50.00%", "50.00%"], False),
    ([1], ["6.67%"], False),
])
def test_timeline_bar(durations, widths, in_range) -> None:
    html = cp.timeline_html([cp.new_shot("", d) for d in durations])
    for width in widths:
        assert f"width:{width}" in html
    assert ("out of range" not in html) is in_range
    assert f"Total {sum(durations)} s" in html


@pytest.mark.parametrize(("multi", "prompt", "expected_prompt", "expected_shot"), [
    (False, "", "@hero", None),
    (False, "a fox ", "a fox @hero", None),
    (True, "", "", "walks @hero"),
])
def test_insert_reference(multi, prompt, expected_prompt, expected_shot) -> None:
    f = form(compose_multi=multi, compose_prompt=prompt,
             compose_shots=[cp.new_shot("sits"), cp.new_shot("walks")], compose_active_shot=1)
    cp.insert_reference(f, "hero")
    assert f["compose_prompt"] == expected_prompt
    if expected_shot:
        assert f["compose_shots"][1]["prompt"] == expected_shot and f["compose_shots"][0]["prompt"] == "sits"
    assert f["compose_elements"] == ["hero"]


# ---------------------------------------------------------------- form → job → payload

def test_single_shot_payload_from_form() -> None:
    f = form(compose_prompt="a @hero runs", compose_duration=7, compose_mode="pro", compose_sound=True,
             compose_aspect="9:16", compose_callback="  https://cb.test/hook ", compose_elements=["hero"])
    payload = build_payload(cp.job_from_form(f, {"hero": SPEC}))
    assert payload["callBackUrl"] == "https://cb.test/hook"
    assert payload["input"]["duration"] == "7" and payload["input"]["aspect_ratio"] == "9:16"
    assert payload["input"]["kling_elements"][0]["name"] == "hero"
    assert "cfg_scale" not in payload["input"]
    assert [p for p in validate_payload(payload) if p.level == "error"] == []


def test_multi_shot_locks_sound_sums_shots_and_drops_last_frame() -> None:
    f = form(compose_multi=True, compose_sound=False, compose_shots=[cp.new_shot("a", 3), cp.new_shot("b", 4)],
             compose_first_source="url", compose_first_url="https://x.test/f.png",
             compose_last_source="url", compose_last_url="https://x.test/l.png")
    data = build_payload(cp.job_from_form(f, {}))["input"]
    assert data["sound"] is True and data["duration"] == "7"
    assert data["multi_prompt"] == [{"prompt": "a", "duration": 3}, {"prompt": "b", "duration": 4}]
    assert data["image_urls"] == ["https://x.test/f.png"] and "aspect_ratio" not in data


@pytest.mark.parametrize(("cfg_on", "expected"), [(False, None), (True, 0.7)])
def test_cfg_scale_sent_only_when_set(cfg_on, expected) -> None:
    data = build_payload(cp.job_from_form(form(compose_prompt="x", compose_cfg_on=cfg_on, compose_cfg_scale=0.7), {}))
    assert data["input"].get("cfg_scale") == expected


def test_only_referenced_elements_are_sent() -> None:
    other = ElementSpec("cat", "a cat", image_urls=SPEC.image_urls)
    f = form(compose_prompt="@hero alone", compose_elements=["cat"])
    data = build_payload(cp.job_from_form(f, {"hero": SPEC, "cat": other}))["input"]
    assert [e["name"] for e in data["kling_elements"]] == ["hero"]


@pytest.mark.parametrize(("fields", "names", "paths"), [
    ({"compose_last_source": "url", "compose_last_url": "https://x.test/l.png"}, [], ["input.image_urls[1]"]),
    ({"compose_elements": ["gone"]}, ["hero"], ["input.kling_elements"]),
    ({"compose_first_source": "upload", "compose_first_upload": {"problems": ["x.gif is a GIF"]}}, [],
     ["input.image_urls[0]"]),
    ({"compose_first_source": "url", "compose_first_url": "https://x.test/f.png", "compose_elements": ["hero"]},
     ["hero"], []),
])
def test_form_problems(fields, names, paths) -> None:
    assert [p.path for p in cp.form_problems(form(**fields), names)] == paths


def test_preview_specs_marks_pending_uploads() -> None:
    from lib.elements.model import Element, ElementMedia

    up = ElementMedia("a.png", None, None, "image", kie_url="https://kie.test/a.png")
    down = ElementMedia("b.png", None, None, "image")
    element = Element("id1", "hero", "a fox", "images", (up, down), "t", "t")
    specs, pending = cp.preview_specs([element])
    assert pending == ["hero"]
    assert specs["hero"].image_urls == ("https://kie.test/a.png", f"{PENDING_HOST}/hero/b.png")


# ---------------------------------------------------------------- variants and cost

@pytest.mark.parametrize(("kwargs", "count", "first_label"), [
    ({}, 1, "std · sound off"),
    ({"takes": 4}, 4, "std · sound off · take 1"),
    ({"modes": ["std", "pro"], "sounds": [False, True]}, 4, "std · sound off"),
    ({"modes": ["std", "pro"], "prompts": ["", "alt one", "alt two"]}, 6, "std · sound off · prompt 1"),
    ({"modes": list(rules.MODES), "sounds": [True, False], "takes": 3}, 18, "std · sound on · take 1"),
])
def test_variant_grid(kwargs, count, first_label) -> None:
    variants = variant_jobs(Job(prompt="base"), **kwargs)
    assert len(variants) == count and variants[0].label == first_label
    assert len({v.label for v in variants}) == count


def test_variant_grid_limit_and_multi_shot_rules() -> None:
    with pytest.raises(ValueError, match="at most 20"):
        variant_jobs(Job(prompt="x"), modes=list(rules.MODES), sounds=[True, False], takes=4)
    multi = Job(multi_shots=True, shots=(Shot("a", 5),), sound=True)
    variants = variant_jobs(multi, sounds=[False, True], prompts=["ignored"], takes=2)
    assert len(variants) == 2 and all(v.job.sound for v in variants)


@pytest.mark.parametrize(("jobs", "credits"), [
    ([Job(prompt="x", duration=5)], 70),
    ([Job(prompt="x", duration=15, mode="pro", sound=True)], 405),
    ([Job(prompt="x"), Job(prompt="x", mode="4K")], 70 + 335),
    ([Job(prompt="x", duration=40)], None),
])
def test_batch_cost(jobs, credits) -> None:
    assert batch_cost([build_payload(j) for j in jobs]) == credits


@pytest.mark.parametrize(("count", "credits", "label"), [
    (1, 70, "Submit · 70 credits (US$0.35)"),
    (4, 280, "Submit 4 tasks · 280 credits (US$1.40)"),
    (1, None, "Submit (fix the errors first)"),
])
def test_submit_label(count, credits, label) -> None:
    assert submit_label(count, credits) == label


@pytest.mark.parametrize(("credits", "balance", "limit", "n"), [
    (70, 100, 0, 0), (70, 50, 0, 1), (70, 100, 50, 1), (70, 50, 50, 2), (70, None, 0, 0), (None, 1, 1, 0),
])
def test_needs_confirmation(credits, balance, limit, n) -> None:
    assert len(needs_confirmation(credits, balance, limit)) == n


def test_dry_run_reports_without_sending() -> None:
    good = build_payload(Job(prompt="fine"))
    bad = build_payload(Job(prompt="x" * 2501))
    ok = dry_run([good, good], balance=100, limit=0, pending_uploads=["hero"])
    assert not ok.errors and ok.credits == 140 and ok.confirm
    assert "Nothing was sent" in ok.summary() and "hero" in ok.summary()
    failed = dry_run([bad], balance=1000, limit=0, extra=[Problem("input.image_urls[1]", "m", "error")])
    assert len(failed.errors) == 2 and "would stop" in failed.summary()


# ---------------------------------------------------------------- snippets

PAYLOAD = build_payload(Job(prompt="it's a \"quoted\" fox", callback_url="https://cb.test/x", cfg_scale=0.5))


def test_curl_masks_key_and_round_trips_body() -> None:
    text = curl_command(PAYLOAD, "https://api.kie.ai/")
    assert '"Authorization: Bearer $KIE_API_KEY"' in text
    args = shlex.split(text.replace("\\\n", " "))
    assert args[args.index("-X") + 2] == "https://api.kie.ai/api/v1/jobs/createTask"
    assert json.loads(args[args.index("-d") + 1]) == PAYLOAD


def test_python_snippet_is_valid_and_reads_key_from_env() -> None:
    text = python_snippet(PAYLOAD, "https://api.kie.ai")
    tree = ast.parse(text)
    assert 'os.environ["KIE_API_KEY"]' in text and "sandbox-demo" not in text
    assign = next(n for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "payload")
    assert ast.literal_eval(assign.value) == PAYLOAD


# ---------------------------------------------------------------- frames

class FakeUploader:
    def __init__(self, fail: bool = False) -> None:
        self.calls, self.fail = [], fail

    def __call__(self, source, file_name, upload_path, method="auto"):
        self.calls.append((file_name, upload_path, method, source.read()))
        if self.fail:
            raise KieApiError(500, "boom")

        class Result:
            download_url = f"https://files.test/{file_name}"
            expires_at = datetime(2030, 1, 1, tzinfo=UTC)
        return Result()


@pytest.mark.parametrize(("data", "fail", "url", "problem"), [
    (png(64), False, "https://files.test/f.png", None),  # small frames are fine: no 300 px rule for frames
    (b"GIF89a" + b"\0" * 40, False, None, "GIF"),
    (png()[:200], False, None, "cut off"),
    (png(), True, None, "could not be uploaded"),
])
def test_upload_frame(data, fail, url, problem) -> None:
    uploader = FakeUploader(fail)
    result = cp.upload_frame(uploader, "f.png", data)
    assert result.url == url and result.sha == cp.content_sha(data)
    if problem:
        assert problem in " ".join(result.problems)
    else:
        assert uploader.calls == [("f.png", cp.FRAME_UPLOAD_PATH, "auto", data)]
        assert result.to_state()["expires_at"].startswith("2030")


# ---------------------------------------------------------------- fork

@pytest.mark.parametrize("job", [
    Job(prompt="a @hero runs", mode="pro", sound=True, duration=8, aspect_ratio="1:1", elements=(SPEC,),
        callback_url="https://cb.test/x", cfg_scale=0.3),
    Job(multi_shots=True, shots=(Shot("one @hero", 3), Shot("two", 4)), sound=True, aspect_ratio=None,
        image_urls=("https://x.test/f.png",), elements=(SPEC,)),
    Job(prompt="frames", image_urls=("https://x.test/f.png", "https://x.test/l.png"), aspect_ratio=None),
])
def test_fork_round_trip(job) -> None:
    filled, missing = cp.form_from_job(job, ["hero"])
    assert missing == []
    # everything the form shows comes back; a callback URL never rides along into a new request
    assert build_payload(cp.job_from_form(filled, {"hero": SPEC})) == build_payload(replace(job, callback_url=None))
    assert filled["compose_callback"] == ""


def test_fork_flags_missing_elements() -> None:
    filled, missing = cp.form_from_job(Job(prompt="@hero and @ghost", elements=(SPEC,)), ["hero"])
    assert missing == ["ghost"] and filled["compose_elements"] == ["hero"]


# ---------------------------------------------------------------- drafts

def test_drafts_save_list_load_delete(tmp_path: Path) -> None:
    store = DraftStore(tmp_path)
    assert store.all() == {}
    f = form(compose_prompt="draft one", compose_multi=True, compose_shots=[cp.new_shot("s", 4)])
    assert store.save("  my   draft ", f) == "my draft"
    store.save("second", form(compose_prompt="two"))
    assert set(store.names()) == {"my draft", "second"}
    loaded = store.load("my draft")
    assert loaded["compose_prompt"] == "draft one" and loaded["compose_shots"] == f["compose_shots"]
    assert loaded["compose_limit"] == 0  # defaults filled in
    assert not list(tmp_path.glob(".drafts.*"))  # atomic write leaves no temp file
    store.delete("second")
    store.delete("second")
    assert store.names() == ["my draft"]
    with pytest.raises(ValueError):
        store.save("   ", f)
    with pytest.raises(KeyError):
        store.load("nope")


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"drafts": {"x": 3}}'])
def test_broken_drafts_file_reads_empty(tmp_path: Path, content: str) -> None:
    (tmp_path / DRAFTS_FILE).write_text(content)
    assert DraftStore(tmp_path).all() == {}


# ---------------------------------------------------------------- submit and follow (against the sandbox)

def _uploader(client):
    from lib.kie.uploads import upload_file

    def upload(source, file_name, upload_path, method="auto"):
        return upload_file(client, source, file_name=file_name, upload_path=upload_path, method=method)
    return upload


def test_submit_variants_refreshes_elements_and_groups_a_batch(client, tmp_path: Path) -> None:
    from lib.elements.library import ElementLibrary
    from lib.history.ledger import Ledger

    library = ElementLibrary(tmp_path)
    library.create("hero", "a red fox", files=[("a.png", png(400, "red")), ("b.png", png(400, "blue"))])
    ledger = Ledger.in_dir(tmp_path)
    variants = variant_jobs(Job(prompt="@hero runs"), modes=["std", "pro"], takes=2)
    result = submit_variants(client, ledger, library, _uploader(client), variants, origin="sandbox")
    assert result.messages == [] and len(result.task_ids) == 4
    rows = [ledger.get(t) for t in result.task_ids]
    assert {r.batch_id for r in rows} == {result.batch_id} and sorted(r.mode for r in rows) == ["pro", "pro", "std", "std"]
    sent = rows[0].payload["input"]["kling_elements"][0]["element_input_urls"]
    assert all(url.startswith(client.api_base) for url in sent)  # the fresh KIE (sandbox) URLs
    assert library.status(library.by_name("hero")).label == "uploaded"


def test_submit_variants_reports_missing_elements_and_stops_on_api_error(client, sandbox, tmp_path: Path) -> None:
    from lib.elements.library import ElementLibrary
    from lib.history.ledger import Ledger

    library, ledger = ElementLibrary(tmp_path), Ledger.in_dir(tmp_path)
    missing = submit_variants(client, ledger, library, _uploader(client), variant_jobs(Job(prompt="@ghost")),
                                 origin="sandbox")
    assert missing.task_ids == [] and "ghost" in missing.messages[0]
    sandbox.backend.configure(credits="100")
    broke = submit_variants(client, ledger, library, _uploader(client),
                               variant_jobs(Job(prompt="x"), takes=3), origin="sandbox")
    assert len(broke.task_ids) == 1 and len(broke.messages) == 1 and "402" in broke.messages[0]
    assert len(ledger.rows()) == 1


@pytest.mark.parametrize(("code", "expected"), [("501", 501), ("402", 402), (None, 501), ("weird", 501), ("999", 501)])
def test_advice_for_failure(code, expected) -> None:
    from lib.kie.errors import FIXES

    assert advice_for_failure(code) == FIXES[expected]


def test_followed_rows_elapsed_and_video_source(tmp_path: Path) -> None:
    from lib.history.ledger import Ledger
    from lib.history.row import HistoryRow

    ledger = Ledger.in_dir(tmp_path)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    (tmp_path / "videos").mkdir()
    video = (tmp_path / "videos" / "t2.mp4").resolve()
    video.write_bytes(b"mp4")
    ledger.append(HistoryRow(task_id="t1", origin="sandbox", created_at=start, state="running",
                             local_video="/etc/passwd", result_url="javascript:alert(1)"))
    ledger.append(HistoryRow(task_id="t2", origin="sandbox", created_at=start + timedelta(seconds=5), state="succeeded",
                             updated_at=start + timedelta(seconds=17),
                             result_url="https://tempfile.aiquickdraw.com/v.mp4", local_video="elsewhere.mp4"))
    rows = followed_rows(ledger, ["t1", "missing", "t2", "t1"])
    assert [r.task_id for r in rows] == ["t2", "t1"]
    assert elapsed_s(rows[0]) == 12 and elapsed_s(rows[1], now=start + timedelta(seconds=9)) == 9
    assert video_source(rows[0], FileMedia(tmp_path)) == str(video)  # found by its task id, whatever the row names
    video.unlink()
    assert video_source(rows[0], FileMedia(tmp_path)) == "https://tempfile.aiquickdraw.com/v.mp4"  # a KIE media host
    assert video_source(rows[1], FileMedia(tmp_path)) is None  # neither a file the app wrote nor a playable URL


@pytest.mark.parametrize(("changes", "untouched"), [
    ({}, True),
    ({"compose_prompt": "a fox"}, False),
    ({"compose_prompt": " "}, False),
    ({"compose_mode": "pro"}, False),
    ({"compose_multi": True}, False),
])
def test_is_untouched_only_while_every_field_has_its_default(changes: dict, untouched: bool) -> None:
    from lib.compose.form import default_form, is_untouched

    assert is_untouched({**default_form(), **changes}) is untouched
