"""Browser: a pro, sound-on sandbox job with an @element plays in History at KIE's pro size (1920×1080)."""

from __future__ import annotations

import io
from pathlib import Path

import av
import pytest
from PIL import Image

from lib.kie.client import KieClient
from lib.kie.uploads import upload_file
from lib.sandbox.server import start_sandbox
from lib.storage.files import open_file_storage
from lib.tasks.follow import refresh_task
from lib.tasks.submit import submit_payload
from tests.conftest import free_port, screenshot, wait_for_app

pytestmark = pytest.mark.browser


def _png(colour: tuple[int, int, int]) -> io.BytesIO:
    buf = io.BytesIO()
    Image.new("RGB", (400, 400), colour).save(buf, "PNG")
    buf.seek(0)
    return buf


def _make_job(data: Path, port: int) -> str:
    """Upload an element, submit a pro sound-on job that uses it, follow it and archive the video (as the app does)."""
    server = start_sandbox(port=port, data_dir=data / "sandbox", progress="immediate")
    try:
        client = KieClient("sandbox-demo", server.base_url, server.base_url)
        urls = [upload_file(client, _png(c), file_name=f"hero{n}.png", upload_path="kling-studio/elements").download_url
                for n, c in enumerate(((230, 0, 200), (200, 0, 230)))]
        payload = {"model": "kling-3.0/video", "input": {
            "prompt": "The hero @hero walks through a rainy neon market, tracking shot", "mode": "pro",
            "sound": True, "duration": "3", "aspect_ratio": "16:9", "multi_shots": False,
            "kling_elements": [{"name": "hero", "description": "a magenta hero", "element_input_urls": urls}]}}
        storage = open_file_storage(data)
        sub = submit_payload(client, storage.ledger, payload, origin="sandbox", batch_id="b-demo-browser")
        assert sub.error is None, sub.error
        row, error = refresh_task(client, storage.ledger, storage.media, sub.row, allow_private=True)
        assert error is None and row.state == "succeeded", (row.state, error)
        video = storage.media.video(row.task_id)
        with av.open(str(video)) as container:
            assert [s.type for s in container.streams] == ["video", "audio"]
        return row.task_id
    finally:
        server.stop()


def test_a_pro_sound_on_job_with_an_element_plays_at_1920_by_1080(app_server_factory, page, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    port = free_port()
    task_id = _make_job(data, port)
    app = app_server_factory(data_dir=data, env={"KLING_SANDBOX_PORT": str(port)})
    page.goto(f"{app.url}/History?task={task_id}")
    wait_for_app(page)
    page.wait_for_function(
        "() => { const v = document.querySelector('[data-testid=\"stMain\"] video');"
        " return !!v && v.readyState >= 1 && v.videoWidth > 0; }", timeout=60_000)
    size = page.evaluate(
        "() => { const v = document.querySelector('[data-testid=\"stMain\"] video');"
        " return [v.videoWidth, v.videoHeight, v.duration]; }")
    assert size[:2] == [1920, 1080]
    assert size[2] == pytest.approx(3.0, abs=0.15)
    sidebar = page.locator('[data-testid="stSidebar"]')
    assert sidebar.get_by_role("button", name="Reset sandbox credits").count() == 1
    assert sidebar.get_by_role("button", name="Load demo project").count() == 1
    screenshot(page, "sandbox-pro-element-history")
