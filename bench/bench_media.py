"""Show that media checks read only headers: a 10 MB and a 50 MB file, checked vs fully decoded.

Run: python bench/bench_media.py
"""

from __future__ import annotations

import hashlib
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lib.kling.media import MediaCheck, check_image, check_video  # noqa: E402
from tests.media_helpers import CountingReader  # noqa: E402

MIB = 1024 * 1024


def noise_png(path: Path, megabytes: float) -> Path:
    """A PNG of random pixels (incompressible, so the file is about `megabytes` MB)."""
    side = int((megabytes * MIB / 3) ** 0.5)
    pixels = np.random.default_rng(7).integers(0, 256, (side, side, 3), dtype=np.uint8)
    Image.fromarray(pixels, "RGB").save(path, compress_level=1)
    return path


def sparse_mp4(path: Path, size: int) -> Path:
    """An MP4 signature followed by `size` bytes of (sparse) body."""
    with path.open("wb") as handle:
        handle.write(struct.pack(">I", 24) + b"ftypisom\0\0\2\0isomiso2")
        handle.truncate(size)
    return path


def timed(action: Callable[[CountingReader], object], path: Path) -> tuple[float, int, object]:
    with path.open("rb") as handle:
        reader = CountingReader(handle)
        start = time.perf_counter()
        result = action(reader)
        return (time.perf_counter() - start) * 1000, reader.bytes_read, result


def full_decode(reader: CountingReader) -> object:
    with Image.open(reader) as image:
        image.load()
        return image.size


def full_read(reader: CountingReader) -> object:
    return hashlib.sha256(reader.read()).hexdigest()[:8]


def verdict(result: MediaCheck) -> str:
    return "ok" if result.ok else "refused: " + result.problems[0].split(";")[0]


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        print("generating test files…", flush=True)
        files = [
            (noise_png(tmp / "ten.png", 9.9), check_image, full_decode, "Image.load"),
            (noise_png(tmp / "fifty.png", 50), check_image, full_decode, "Image.load"),
            (sparse_mp4(tmp / "fifty.mp4", 50 * MIB), check_video, full_read, "read all"),
        ]
        header = f"{'file':<11}{'size':>10}  {'check ms':>9}{'check read':>12}  {'full':<11}{'full ms':>9}{'full read':>12}  verdict"
        print(header)
        print("-" * len(header))
        for path, checker, baseline, label in files:
            check_ms, check_bytes, result = timed(lambda r, c=checker, p=path: c(p.name, r), path)
            full_ms, full_bytes, _ = timed(baseline, path)
            size = path.stat().st_size
            print(f"{path.name:<11}{size / MIB:>8.1f}MB  {check_ms:>9.2f}{check_bytes:>12,}  {label:<11}{full_ms:>9.1f}"
                  f"{full_bytes:>12,}  {verdict(result)}")
            assert check_bytes < 128 * 1024, f"{path.name}: the check read {check_bytes:,} bytes"


if __name__ == "__main__":
    main()
