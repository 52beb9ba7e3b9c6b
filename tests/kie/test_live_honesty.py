"""Issue 15 (live mode a paying user can trust): unique uploads through Compose and Elements, failure advice from
code and message, credits only as KIE reported them, snippets only with real URLs, upload lifetime checks."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import requests
from PIL import Image

from lib.compose import form as cp
from lib.compose.snippets import PENDING_HOST, curl_command, snippet_readiness
from lib.elements.library import ElementLibrary
from lib.history import view as hv
from lib.history.row import HistoryRow
from lib.kie.client import KieClient
from lib.kie.errors import FIXES, MODERATION_FIX, KieTaskFailed, advice_for_failure, failure_kind
from lib.kie.uploads import upload_file
from tests.kie_docs_double import DocsKie

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PAYLOAD = {"model": "kling-3.0/video", "input": {"prompt": "A kite", "duration": "5", "mode": "std", "sound": False,
                                                 "multi_shots": False, "aspect_ratio": "16:9"}}


def png(color: str, size: int = 320) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), color).save(out, "PNG")
    return out.getvalue()


def uploader_for(client: KieClient):
    def upload(source, file_name, upload_path, method="auto"):  # noqa: ANN001, ANN202 - the Uploader shape
        return upload_file(client, source, file_name=file_name, upload_path=upload_path, method=method)
    return upload


@pytest.fixture
def docs_kie():
    double = DocsKie("sk-docs").start()
    yield double
    double.stop()


# ---------------------------------------------------------------- 15.1 unique upload names

def _frames_never_overwrite(client: KieClient) -> None:
    first_bytes, second_bytes = png("red"), png("blue")
    first = cp.upload_frame(uploader_for(client), "first_frame.png", first_bytes)
    second = cp.upload_frame(uploader_for(client), "first_frame.png", second_bytes)
    assert first.url and second.url and first.url != second.url
    assert first.name == second.name == "first_frame.png"  # the person's name, for display
    assert f"/{cp.FRAME_UPLOAD_PATH}/" in first.url and "first_frame" not in first.url
    assert requests.get(first.url, timeout=5).content == first_bytes  # the earlier task's frame is untouched
    assert requests.get(second.url, timeout=5).content == second_bytes


def test_frames_with_the_same_name_never_overwrite_in_the_sandbox(client) -> None:
    _frames_never_overwrite(client)


def test_frames_with_the_same_name_never_overwrite_on_the_docs_double(docs_kie) -> None:
    _frames_never_overwrite(KieClient("sk-docs", docs_kie.base_url, docs_kie.base_url))


def test_element_reupload_gets_new_urls_and_the_old_ones_keep_serving(client, tmp_path) -> None:
    library = ElementLibrary(tmp_path / "data")
    files = [("cat0.png", png("orange")), ("cat1.png", png("green"))]
    cat = library.upload(library.create("cat", "a ginger cat", files).id, uploader_for(client), now=T0)
    old_urls = [m.kie_url for m in cat.media]
    assert all(f"/kling-studio/elements/{cat.id}/" in u for u in old_urls)
    later = datetime.now(UTC) + timedelta(days=3)  # every file is due again (KIE deleted it or is about to)
    again = library.upload(cat.id, uploader_for(client), now=later)
    assert [m.file_name for m in again.media] == ["cat0.png", "cat1.png"]
    assert not set(old_urls) & {m.kie_url for m in again.media}
    assert [requests.get(u, timeout=5).content for u in old_urls] == [data for _, data in files]


# ---------------------------------------------------------------- 15.3 advice from code and message

@pytest.mark.parametrize(("code", "msg", "kind", "advice"), [
    ("500", "Generation failed: content moderation", "moderation", MODERATION_FIX),
    ("501", "The prompt violates our content policy", "moderation", MODERATION_FIX),
    ("422", "Image flagged as sensitive", "moderation", MODERATION_FIX),
    ("400", "NSFW content detected in image_urls[0]", "moderation", MODERATION_FIX),
    (None, "Inappropriate content", "moderation", MODERATION_FIX),
    ("422", "duration cannot be greater than 15", "validation", "field duration"),
    ("422", "sound cannot be empty", "validation", "Fix sound"),
    ("422", "element_input_urls must have 2 to 4 items", "validation", "field element_input_urls"),
    ("422", "", "validation", FIXES[422]),
    ("422", "bad things happened", "validation", "bad things happened"),
    ("500", "Internal server error", "server", FIXES[500]),
    ("500", None, "server", FIXES[500]),
    (" 500 ", "", "server", FIXES[500]),
    ("402", "Insufficient Credits", "documented", FIXES[402]),
    ("501", "Generation failed", "documented", FIXES[501]),
    ("999", "Upstream quota reached for this model", "unknown", "KIE says: Upstream quota reached for this model"),
    ("weird", "  spaced\n message ", "unknown", "KIE says: spaced message"),
    (None, None, "unknown", FIXES[501]),
    ("", "", "unknown", FIXES[501]),
])
def test_failure_advice_table(code, msg, kind, advice) -> None:
    assert failure_kind(code, msg) == kind
    text = advice_for_failure(code, msg)
    assert (text == advice) if advice in (MODERATION_FIX, *FIXES.values()) else (advice in text)
    if kind == "moderation":
        assert "retry" not in text.lower() and "try again" not in text.lower()


def test_the_bug_from_the_issue_is_not_told_to_retry() -> None:
    advice = advice_for_failure("500", "Generation failed: content moderation")
    assert advice != FIXES[500] and "Change the prompt or the images" in advice



def test_task_failed_error_carries_the_same_advice() -> None:
    err = KieTaskFailed("task_1", "500", "Generation failed: content moderation")
    assert err.fix == MODERATION_FIX and "content moderation" in err.user_message()


# ---------------------------------------------------------------- 15.4 credits as KIE reported them

def _row(**kw) -> HistoryRow:
    row = HistoryRow.from_payload("t", PAYLOAD, origin="live", state="succeeded", created_at=T0, estimated_credits=70)
    return replace(row, **kw)


@pytest.mark.parametrize(("kw", "text"), [
    ({"credits_consumed": 70.0}, "Estimated 70 credits · consumed 70"),
    ({"state": "failed", "credits_consumed": 0.0}, "Estimated 70 credits · consumed 0"),  # KIE said 0
    ({"state": "failed", "credits_consumed": None}, "Estimated 70 credits · consumed not reported"),
    ({"credits_consumed": None}, "Estimated 70 credits · consumed not reported"),
    ({"state": "running", "credits_consumed": 12.0}, "Estimated 70 credits · consumed not final until it finishes"),
])
def test_credits_text_shows_only_what_kie_reported(kw, text) -> None:
    shown = hv.credits_text(_row(**kw))
    assert shown == text and "not charged" not in shown and "None" not in shown


# ---------------------------------------------------------------- 15.6 snippets only with real URLs

def _payload_with(elements, frames=(), callback=None) -> dict:
    from lib.kling.job import Job, build_payload

    names = " ".join(f"@{e.name}" for e in elements)
    return build_payload(Job(prompt=f"A walk in the park {names}", image_urls=tuple(frames), aspect_ratio=None,
                             elements=tuple(elements), callback_url=callback))


def test_snippet_with_an_element_not_uploaded_yet_is_not_ready(tmp_path) -> None:
    library = ElementLibrary(tmp_path / "data")
    library.create("dog", "a dog", [("d0.png", png("white")), ("d1.png", png("black"))])
    specs, pending = cp.preview_specs(library.list())
    payload = _payload_with(specs.values())
    assert pending == ["dog"] and PENDING_HOST in curl_command(payload, "https://api.kie.ai")
    check = snippet_readiness(payload)
    assert not check.ready and check.upload_first == ("dog",) and check.not_real == ()
    assert "Upload @dog first" in check.message()


def test_snippet_with_every_url_real_is_ready() -> None:
    from lib.kling.job import ElementSpec

    dog = ElementSpec("dog", "a dog", image_urls=("https://tempfile.redpandaai.co/a.png",
                                                  "https://tempfile.redpandaai.co/b.png"))
    check = snippet_readiness(_payload_with([dog], frames=["https://tempfile.redpandaai.co/f.png"],
                                               callback="https://example.com/cb"))
    assert check.ready and check.message() == ""


def test_snippet_readiness_names_each_element_once_and_other_bad_urls() -> None:
    from lib.kling.job import ElementSpec

    half = ElementSpec("cat", "a cat", image_urls=("https://tempfile.redpandaai.co/a.png",
                                                   f"{PENDING_HOST}/cat/b.png", f"{PENDING_HOST}/cat/c.png"))
    video = ElementSpec("clip", "a clip", video_urls=(f"{PENDING_HOST}/clip/v.mp4",))
    payload = _payload_with([half, video], frames=[f"{PENDING_HOST}/frame.png"])
    check = snippet_readiness(payload)
    assert check.upload_first == ("cat", "clip") and check.not_real == ("input.image_urls[0]",)
    assert "@cat, @clip" in check.message() and "input.image_urls[0]" in check.message()


# ---------------------------------------------------------------- 15.7 upload lifetime

@pytest.mark.parametrize(("age_h", "verdict"), [
    (0, "fresh"), (23.99, "fresh"), (24, "check"), (71.99, "check"), (72, "reupload"), (500, "reupload"),
    (-2, "fresh"),  # a clock a little ahead of ours
])
def test_upload_check_needed_table(age_h: float, verdict: str) -> None:
    from lib.kie.uploads import upload_check_needed

    assert upload_check_needed(T0 - timedelta(hours=age_h), T0) == verdict


def test_upload_check_needed_reads_iso_text_naive_times_and_missing_times() -> None:
    from lib.kie.uploads import upload_check_needed

    assert upload_check_needed("2026-03-01T00:00:00+00:00", T0) == "fresh"
    assert upload_check_needed(datetime(2026, 2, 27, 12, 0), T0) == "check"  # naive means UTC
    assert upload_check_needed(None, T0) == "reupload" and upload_check_needed("garbage", T0) == "reupload"


def test_is_upload_alive_against_the_sandbox(client, sandbox) -> None:
    from lib.kie.uploads import is_upload_alive

    up = upload_file(client, io.BytesIO(png("red")), file_name="a.png", upload_path="kling-studio/frames")
    assert is_upload_alive(client, up.download_url, timeout=5) is True
    assert is_upload_alive(client.session, up.download_url, timeout=5) is True
    assert is_upload_alive(client, up.download_url.replace(".png", "-gone.png"), timeout=5) is False
    sandbox.stop()
    # a dead address (e.g. a sandbox URL on an old port); a plain session, so no connect retries are slept
    assert is_upload_alive(requests.Session(), up.download_url, timeout=1) is False


def test_is_upload_alive_falls_back_to_a_ranged_get_when_head_is_refused(docs_kie) -> None:
    from lib.kie.uploads import is_upload_alive

    # the docs double answers no HEAD at all (501), like some CDNs; a 1-byte ranged GET decides
    client = KieClient("sk-docs", docs_kie.base_url, docs_kie.base_url)
    up = upload_file(client, io.BytesIO(png("blue")), file_name="b.png", upload_path="kling-studio/elements/e1")
    assert is_upload_alive(client, up.download_url, timeout=5) is True
    assert is_upload_alive(client, docs_kie.base_url + "/files/kling-studio/nothing.png", timeout=5) is False
    sent = [(m, p) for m, p, _ in docs_kie.requests if p.startswith("/files/")]
    assert ("GET", "/files/kling-studio/nothing.png") in sent


def test_is_upload_alive_never_sends_the_api_key(client, sandbox, monkeypatch) -> None:
    from lib.kie.uploads import is_upload_alive

    up = upload_file(client, io.BytesIO(png("green")), file_name="c.png", upload_path="x")
    seen: list[dict] = []
    real = client.session.request

    def spy(method, url, **kwargs):
        seen.append(dict(kwargs.get("headers") or {}))
        return real(method, url, **kwargs)

    monkeypatch.setattr(client.session, "request", spy)
    assert is_upload_alive(client, up.download_url, timeout=5)
    assert seen and all("Authorization" not in h for h in seen)
    assert "Authorization" not in client.session.headers
