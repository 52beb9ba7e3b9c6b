"""Reel export: 10 takes joined into one MP4 by lib.reel.clips.export_reel, beside PyAV's own re-encode of the same
frames (decode every take, encode every frame with the same codec settings, no app code), measured in this run.

Run: python bench/bench_reel.py [--clips N] [--seconds S]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import Figure, table  # noqa: E402

from lib.reel.clips import FPS, X264, Clip, export_reel  # noqa: E402

SIZE = (640, 360)


def make_clip(path: Path, seconds: float, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS, options=X264)
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        stream.time_base = Fraction(1, FPS)
        base = rng.integers(0, 255, (SIZE[1], SIZE[0], 3), dtype=np.uint8)
        for i in range(int(seconds * FPS)):
            frame = av.VideoFrame.from_ndarray(np.roll(base, i * 4, axis=1), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def pyav_reencode(paths: list[Path], target: Path) -> None:
    """The floor: decode and re-encode the same frames with PyAV directly."""
    with av.open(str(target), "w") as out:
        stream = out.add_stream("libx264", rate=FPS, options=X264)
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        stream.time_base = Fraction(1, FPS)
        index = 0
        for path in paths:
            with av.open(str(path)) as source:
                for frame in source.decode(source.streams.video[0]):
                    image = av.VideoFrame.from_ndarray(frame.to_ndarray(format="rgb24"), format="rgb24")
                    image.pts = index
                    index += 1
                    out.mux(stream.encode(image))
        out.mux(stream.encode(None))


def run(clips: int = 10, seconds: float = 2.0, repeats: int = 3) -> list[Figure]:
    with tempfile.TemporaryDirectory() as tmp:
        paths = [make_clip(Path(tmp) / f"c{i}.mp4", seconds, i) for i in range(clips)]
        ours, base = [], []
        for _ in range(repeats):  # interleaved, medians: the machine is shared
            start = time.perf_counter()
            pyav_reencode(paths, Path(tmp) / "base.mp4")
            base.append(time.perf_counter() - start)
            start = time.perf_counter()
            export_reel([Clip(f"t{i}", p) for i, p in enumerate(paths)])
            ours.append(time.perf_counter() - start)
    mine, floor = statistics.median(ours), statistics.median(base)
    return [Figure(f"reel: export {clips} takes of {seconds:g} s ({SIZE[0]}×{SIZE[1]})", f"{mine:.2f} s",
                   f"PyAV re-encode: {floor:.2f} s", "≤ 1.5×", mine <= 1.5 * floor, f"ratio {mine / floor:.2f}×")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    print(table(run(args.clips, args.seconds)))


if __name__ == "__main__":
    main()
