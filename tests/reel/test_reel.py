"""Take chains and reels: the last frame of a take, takes joined into one MP4 whose length is the sum."""

from __future__ import annotations

import csv
import io
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from lib.history.ledger import Ledger
from lib.history.row import HistoryRow
from lib.kie.client import KieClient
from lib.kie.uploads import upload_file
from lib.reel.chain import continue_fork
from lib.reel.clips import Clip, ReelError, chapters_csv, duration_s, export_reel, last_frame_png
from lib.storage.files import FileMedia

APP = str(Path(__file__).resolve().parents[2] / "home.py")


def clip(path: Path, seconds: float, colour: tuple[int, int, int], size: tuple[int, int] = (320, 180),
         last: tuple[int, int, int] | None = None) -> Path:
    """An H.264 MP4 of one colour (the last frame `last`, when given), 24 fps."""
    frames = int(seconds * 24)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.time_base = Fraction(1, 24)
        for i in range(frames):
            rgb = last if last and i == frames - 1 else colour
            image = np.full((size[1], size[0], 3), rgb, dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def test_three_takes_become_one_mp4_whose_length_is_the_sum(tmp_path: Path) -> None:
    parts = [clip(tmp_path / f"t{i}.mp4", s, c) for i, (s, c) in
             enumerate([(1.0, (200, 0, 0)), (1.5, (0, 200, 0)), (2.0, (0, 0, 200))])]
    video, chapters = export_reel([Clip(f"task-{i}", p) for i, p in enumerate(parts)])
    out = tmp_path / "reel.mp4"
    out.write_bytes(video)
    assert duration_s(out) == pytest.approx(4.5, abs=0.05)
    assert [(c.start_s, c.label) for c in chapters] == [(0.0, "task-0"), (1.0, "task-1"), (2.5, "task-2")]
    rows = list(csv.reader(io.StringIO(chapters_csv(chapters).decode())))
    assert rows[0] == ["start_s", "task_id", "seconds"] and rows[3][:2] == ["2.500", "task-2"]


def test_takes_of_other_sizes_are_letterboxed_into_the_first(tmp_path: Path) -> None:
    a = clip(tmp_path / "a.mp4", 0.5, (200, 0, 0), size=(320, 180))
    b = clip(tmp_path / "b.mp4", 0.5, (0, 200, 0), size=(180, 320))
    video, _ = export_reel([Clip("a", a), Clip("b", b)])
    (tmp_path / "r.mp4").write_bytes(video)
    with av.open(str(tmp_path / "r.mp4")) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (320, 180)
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    assert frames[-1][90, 160, 1] > 150 and frames[-1][90, 10].max() < 30  # green, with black bars


def test_the_last_frame_is_the_takes_last_picture(tmp_path: Path) -> None:
    path = clip(tmp_path / "t.mp4", 1.0, (200, 0, 0), last=(0, 0, 220))
    image = Image.open(io.BytesIO(last_frame_png(path))).convert("RGB")
    r, g, b = image.getpixel((160, 90))
    assert b > 150 and r < 60


def test_bad_inputs_name_the_take(tmp_path: Path) -> None:
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    with pytest.raises(ReelError, match="junk.mp4"):
        last_frame_png(tmp_path / "junk.mp4")
    with pytest.raises(ReelError, match="at least one"):
        export_reel([])


def test_continue_from_a_take_uploads_its_last_frame_as_the_first(tmp_path: Path, sandbox) -> None:
    data = tmp_path / "data"
    (data / "videos").mkdir(parents=True)
    clip(data / "videos" / "task-a.mp4", 1.0, (200, 0, 0))
    payload = {"model": "kling-3.0/video", "callBackUrl": "https://evil.example/cb",
               "input": {"prompt": "a fox @hero", "duration": "5", "mode": "pro", "sound": True,
                         "aspect_ratio": "16:9", "multi_shots": False}}
    row = HistoryRow.from_payload("task-a", payload, origin="sandbox", state="succeeded")
    client = KieClient("sandbox-demo", sandbox.base_url, sandbox.base_url)

    def uploader(source, file_name, upload_path, method="auto"):
        return upload_file(client, source, file_name=file_name, upload_path=upload_path, method=method)

    fork = continue_fork(row, FileMedia(data), uploader)
    inner = fork["payload"]["input"]
    assert fork["task_id"] == "task-a" and "callBackUrl" not in fork["payload"]
    assert len(inner["image_urls"]) == 1 and inner["image_urls"][0].startswith(sandbox.base_url)
    assert inner["mode"] == "pro" and "aspect_ratio" not in inner
    with pytest.raises(ReelError, match="no saved video"):
        continue_fork(HistoryRow.from_payload("task-b", payload, origin="sandbox"), FileMedia(data), uploader)


def test_the_reel_page_builds_a_reel_from_two_takes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    (data / "videos").mkdir(parents=True)
    monkeypatch.setenv("KLING_STUDIO_DATA", str(data))
    ledger = Ledger.in_dir(data)
    body = {"model": "kling-3.0/video", "input": {"prompt": "take", "duration": "3", "mode": "std",
                                                  "sound": False, "aspect_ratio": "16:9", "multi_shots": False}}
    for i, colour in enumerate([(200, 0, 0), (0, 200, 0)]):
        clip(data / "videos" / f"take-{i}.mp4", 1.0, colour)
        ledger.append(HistoryRow.from_payload(f"take-{i}", body, origin="sandbox", state="succeeded"))
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/4_Reel.py").run()
    assert not at.exception, at.exception
    at.multiselect(key="reel_pick").set_value(["take-1", "take-0"]).run()
    assert at.session_state["reel_chain"] == ["take-1", "take-0"] and len(at.get("video")) == 2
    at.button(key="reel_build").click().run()
    assert not at.exception, at.exception
    video, chapters = at.session_state["reel_built"]
    assert video[4:8] == b"ftyp" and b"take-1" in chapters.split(b"\r\n")[1]
