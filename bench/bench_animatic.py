"""Render seconds of the sandbox's result video per mode (std / pro / 4K, 5 s and 15 s), beside a baseline.

The baseline is PyAV encoding the same number of blank frames at the same size (same codec options) in the same
run, so a slow machine shows up in both columns. Medians of a few runs; sound on, one @element, a first frame.
Target: each render under the sandbox's simulated generation time (KLING_SANDBOX_SECONDS, default 8 s).

Run: python bench/bench_animatic.py [--quick]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import Figure, table  # noqa: E402
from lib.sandbox.animatic import X264_OPTIONS, RenderSpec, ShotSpec, fps_for, frame_size, render_video  # noqa: E402
from lib.sandbox.cards import ElementCard  # noqa: E402

SIMULATED_S = float(os.environ.get("KLING_SANDBOX_SECONDS") or 8.0)


def job(mode: str, seconds: int) -> RenderSpec:
    """A realistic job: shots of at most 5 s, the first with an element card and a first frame, sound on."""
    hero = ElementCard("hero", (Image.new("RGB", (512, 512), (230, 0, 200)),))
    shots = tuple(ShotSpec(f"Shot {n + 1}: a slow dolly through a neon market in the rain @hero", 5, (hero,))
                  for n in range(seconds // 5))
    return RenderSpec(shots, "16:9", mode, True, first_frame=Image.new("RGB", (640, 360), (40, 90, 160)))


def blank_encode(size: tuple[int, int], frames: int, fps: int) -> None:
    """The floor: PyAV + libx264 encoding `frames` identical blank frames."""
    blank = av.VideoFrame.from_ndarray(np.zeros((size[1], size[0], 3), np.uint8), format="rgb24").reformat(
        format="yuv420p")
    with tempfile.TemporaryDirectory() as tmp, av.open(str(Path(tmp) / "b.mp4"), "w", format="mp4") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = dict(X264_OPTIONS)
        for index in range(frames):
            blank.pts = index
            out.mux(stream.encode(blank))
        out.mux(stream.encode(None))


def median_s(action, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run(quick: bool = False) -> list[Figure]:
    """One figure per mode × duration."""
    runs = 1 if quick else 3
    figures = []
    for mode in ("std", "pro", "4K"):
        for seconds in (5, 15):
            size, fps = frame_size(mode, "16:9"), fps_for(mode)
            spec = job(mode, seconds)
            ours = median_s(lambda spec=spec: render_video(spec), runs)
            floor = median_s(lambda s=size, n=seconds * fps, f=fps: blank_encode(s, n, f), runs)
            figures.append(Figure(f"render {mode} {seconds} s ({size[0]}x{size[1]} @ {fps} fps)", f"{ours:.2f} s",
                                  f"{floor:.2f} s blank frames", f"< {SIMULATED_S:g} s", ours < SIMULATED_S))
    return figures


def main() -> None:
    print(table(run(quick="--quick" in sys.argv)))


if __name__ == "__main__":
    main()
