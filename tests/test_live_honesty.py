"""Issue 15 (live mode a paying user can trust): unique uploads through Compose and Elements, failure advice from
code and message, credits only as KIE reported them, snippets only with real URLs, upload lifetime checks."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import requests
from PIL import Image

from lib import batches
from lib import compose as cp
from lib import history_view as hv
from lib.client import KieClient
from lib.elements import ElementLibrary
from lib.errors import FIXES, MODERATION_FIX, KieTaskFailed, advice_for_failure, failure_kind
from lib.history import HistoryRow
from lib.uploads import upload_file
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


@pytest.mark.parametrize("fix", [batches.failure_fix, cp.failure_fix, hv.fail_fix])
def test_the_page_aliases_delegate_with_the_message(fix) -> None:
    assert fix("500", "content moderation") == MODERATION_FIX
    assert fix("501") == FIXES[501]  # pages that pass only the code keep working


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
