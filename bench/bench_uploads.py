"""Uploads: client memory and throughput of lib.uploads.upload_file against a bare requests.post(files=...).

The sandbox runs in its own process (`python -m lib.sandbox`), and every measured upload runs in a fresh client
process, so neither the server's memory nor an earlier upload's is counted. Memory is the client's tracemalloc
peak during the upload call (and the ru_maxrss growth beside it); time is measured without tracemalloc.

Run: python bench/bench_uploads.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import MIB, ROOT, Figure, clean_env, print_figures, sandbox_process  # noqa: E402

STREAM_LIMIT = 1.2   # peak extra memory / file size, 50 MB video by stream
BASE64_LIMIT = 3.0   # the same for a 10 MB image by base64
THROUGHPUT_MIN = 0.9  # our stream upload's throughput / a bare requests.post(files=...)'s


def make_video(path: Path, size: int) -> Path:
    """An MP4 signature followed by random (incompressible) bytes."""
    head = (24).to_bytes(4, "big") + b"ftypisom\0\0\2\0isomiso2"
    path.write_bytes(head + os.urandom(size - len(head)))
    return path


def make_image(path: Path, size: int) -> Path:
    """A PNG of random pixels, about `size` bytes."""
    import numpy as np
    from PIL import Image

    side = int((size / 3) ** 0.5)
    pixels = np.random.default_rng(7).integers(0, 256, (side, side, 3), dtype=np.uint8)
    Image.fromarray(pixels, "RGB").save(path, compress_level=0)
    return path


# ------------------------------------------------------------------------------------------- client process

def _upload(way: str, base: str, path: Path) -> None:
    """One upload of `path`: 'stream' / 'base64' through lib.kie.uploads, or 'bare' requests.post(files=...)."""
    import requests

    from lib.kie.client import KieClient
    from lib.kie.uploads import STREAM_PATH, upload_file

    with path.open("rb") as handle:
        if way == "bare":
            resp = requests.post(base + STREAM_PATH, files={"file": (path.name, handle)},
                                 data={"uploadPath": "bench", "fileName": path.name},
                                 headers={"Authorization": "Bearer bench"}, timeout=(10, 300))
            if resp.status_code != 200 or resp.json().get("code") != 200:
                raise RuntimeError(f"bare upload failed: {resp.status_code} {resp.text[:200]}")
        else:
            client = KieClient("bench", base, base)
            result = upload_file(client, handle, file_name=path.name, upload_path="bench", method=way)
            if result.size and result.size != path.stat().st_size:
                raise RuntimeError(f"{way} upload stored {result.size} bytes of {path.stat().st_size}")


def client_main(way: str, base: str, path: Path, measure: str) -> dict[str, float]:
    """Runs in the client process: warm up (imports, a connection), then measure one upload."""
    import requests

    import lib.kie.client  # noqa: F401
    import lib.kie.uploads  # noqa: F401

    requests.get(base + "/sandbox/state", timeout=10)
    if measure == "time":
        start = time.perf_counter()
        _upload(way, base, path)
        return {"seconds": time.perf_counter() - start}
    rss_before = reset_peak_rss()
    tracemalloc.start()
    _upload(way, base, path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"peak": peak, "rss_growth": status_bytes("VmHWM") - rss_before}


def status_bytes(field: str) -> int:
    """A memory figure of this process from /proc/self/status, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def reset_peak_rss() -> int:
    """Reset this process's peak RSS (VmHWM) to its current RSS and return it. (ru_maxrss cannot be used:
    Linux carries it over from the parent across fork and exec.)"""
    Path("/proc/self/clear_refs").write_text("5")
    return status_bytes("VmRSS")


def measure(way: str, base: str, path: Path, what: str) -> dict[str, float]:
    """One upload in a fresh client process."""
    out = subprocess.run([sys.executable, __file__, "--client", way, "--base", base, "--file", str(path),
                          "--measure", what], cwd=ROOT, env=clean_env(), capture_output=True, text=True,
                         timeout=600)
    if out.returncode:
        raise RuntimeError(f"{way} upload client failed: {out.stderr.strip()[-500:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------- figures

def memory_figure(label: str, way: str, base: str, path: Path, limit: float) -> Figure:
    size = path.stat().st_size
    ours, bare = measure(way, base, path, "memory"), measure("bare", base, path, "memory")
    ratio = ours["peak"] / size
    return Figure(f"upload memory: {label}", f"{ours['peak'] / MIB:.1f} MB peak ({ratio:.2f}× file; "
                  f"peak RSS +{ours['rss_growth'] / MIB:.0f} MB)",
                  f"bare files=: {bare['peak'] / MIB:.1f} MB ({bare['peak'] / size:.2f}×)", f"≤ {limit}× file",
                  ratio <= limit)


def throughput_figure(base: str, path: Path, repeats: int) -> Figure:
    size = path.stat().st_size
    ours, bare = [], []
    for _ in range(repeats):  # alternate, so machine noise hits both
        ours.append(measure("stream", base, path, "time")["seconds"])
        bare.append(measure("bare", base, path, "time")["seconds"])
    ours_s, bare_s = statistics.median(ours), statistics.median(bare)
    ratio = bare_s / ours_s
    return Figure(f"upload throughput: {size / MIB:.0f} MB by stream",
                  f"{size / MIB / ours_s:.0f} MB/s ({ratio:.2f}× bare)", f"bare files=: {size / MIB / bare_s:.0f} MB/s",
                  f"≥ {THROUGHPUT_MIN}× bare", ratio >= THROUGHPUT_MIN, f"median of {repeats} alternating runs each")


def run(data_dir: Path | None = None, quick: bool = False) -> list[Figure]:
    """Memory of a stream and a base64 upload, and stream throughput, each beside a bare requests upload."""
    video_size, image_size, repeats = (2 * MIB, 1 * MIB, 1) if quick else (50 * MIB, 10 * MIB - 64 * 1024, 3)
    with tempfile.TemporaryDirectory(prefix="kling-upload-") as tmp:
        folder = Path(tmp)
        video, image = make_video(folder / "clip.mp4", video_size), make_image(folder / "still.png", image_size)
        with sandbox_process(folder / "sandbox") as base:
            return [
                memory_figure(f"{video_size / MIB:.0f} MB video by stream", "stream", base, video, STREAM_LIMIT),
                memory_figure(f"{image.stat().st_size / MIB:.1f} MB image by base64", "base64", base, image,
                              BASE64_LIMIT),
                throughput_figure(base, video, repeats),
            ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small files, one run (smoke test)")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON (for run_all)")
    parser.add_argument("--data", type=Path, help="ignored (uploads make their own files)")
    parser.add_argument("--client", choices=("stream", "base64", "bare"), help=argparse.SUPPRESS)
    parser.add_argument("--base", help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--measure", choices=("memory", "time"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        print(json.dumps(client_main(args.client, args.base, args.file, args.measure)))
        return
    print_figures("Uploads (client process vs sandbox process)", run(quick=args.quick))


if __name__ == "__main__":
    main()
