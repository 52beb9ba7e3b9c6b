"""Run every benchmark and print one table: metric, value, baseline, target, pass/fail.

Each bench runs in its own process (so caches, imports and memory of one do not colour the next) on one
generated data folder (10,000 history rows, 50 elements). bench_history.py and bench_media.py print their own
reports, shown as they are; their headline figures go into the table beside a stdlib baseline measured here.

Run: python bench/run_all.py [--quick] [--out FILE] [--strict]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import MIB, ROOT, Figure, clean_env, make_data_dir, ms, table  # noqa: E402

BENCH = ROOT / "bench"
OURS = ("bench_pages.py", "bench_uploads.py", "bench_polling.py", "bench_startup.py", "bench_memory.py")
LEDGER_TARGETS_MS = {"append one row": 10.0, "update one row": 100.0, "load all rows (cold)": 200.0}
MEDIA_TARGET_MS, MEDIA_MAX_READ = 20.0, MIB


def run_script(name: str, *args: str, timeout: float = 300) -> tuple[int, str]:
    """Run bench/<name> in its own process; (exit code, combined output)."""
    try:
        out = subprocess.run([sys.executable, str(BENCH / name), *args], cwd=ROOT, env=clean_env(),
                             capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        return -1, f"{name} timed out after {timeout:.0f} s\n{exc.stdout or ''}"
    return out.returncode, out.stdout + (f"\n{out.stderr[-3000:]}" if out.returncode else "")


def our_figures(name: str, data: Path, quick: bool) -> list[Figure]:
    """Run one of our bench modules and read back its FIGURES-JSON line."""
    code, output = run_script(name, "--json", "--data", str(data), *(["--quick"] if quick else []), timeout=900)
    shown = [line for line in output.splitlines() if not line.startswith("FIGURES-JSON ")]
    print("\n".join(shown), flush=True)
    for line in output.splitlines():
        if line.startswith("FIGURES-JSON "):
            return [Figure(**item) for item in json.loads(line.removeprefix("FIGURES-JSON "))]
    return [Figure(f"{name}", "error", "", "", False, f"exit {code}: {shown[-1] if shown else 'no output'}")]


def timed_ms(action: Callable[[int], object], repeats: int = 7) -> float:
    times = []
    for n in range(repeats):
        start = time.perf_counter()
        action(n)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def ledger_file(folder: Path, rows: int, fallback: Path) -> Path:
    """The file bench_history.py times (built by its own `seed`), else our data folder's ledger."""
    try:
        from bench_history import seed

        from lib.history.ledger import Ledger

        ledger = Ledger.in_dir(folder, fsync=False)
        seed(ledger, rows)
        return ledger.path
    except (ImportError, TypeError, ValueError):
        return fallback


def ledger_baselines(csv_path: Path) -> dict[str, float]:
    """What the stdlib alone costs on the same file: append a line + fsync, rewrite + fsync + rename, parse."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "history.csv"
        data = csv_path.read_bytes()
        path.write_bytes(data)
        line = data.splitlines(keepends=True)[-1]

        def append(_: int) -> None:
            with path.open("ab") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())

        def rewrite(_: int) -> None:
            tmp_path = path.with_suffix(".tmp")
            with tmp_path.open("wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp_path, path)

        return {"append one row": timed_ms(append), "update one row": timed_ms(rewrite),
                "load all rows (cold)": timed_ms(lambda _: list(csv.DictReader(io.StringIO(path.read_text()))))}


def history_figures(data: Path, quick: bool) -> list[Figure]:
    """bench_history.py's figures (its last output line is JSON) beside stdlib baselines on our 10k file."""
    rows = "500" if quick else "10000"
    code, output = run_script("bench_history.py", rows)
    print(output, flush=True)
    try:
        results = json.loads(output.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return [Figure("ledger (bench_history.py)", "error", "", "", False, f"exit {code}, no JSON result line")]
    with tempfile.TemporaryDirectory() as tmp:
        path = ledger_file(Path(tmp), int(rows), data / "history.csv")
        base, size = ledger_baselines(path), path.stat().st_size
    return [Figure(f"ledger @{int(rows):,}: {name}", f"{results[name]:.1f} ms", f"stdlib: {ms(base[name] / 1000)}",
                   f"≤ {target:g} ms", results[name] <= target, f"same {size / MIB:.1f} MB file" if i == 0 else "")
            for i, (name, target) in enumerate(item for item in LEDGER_TARGETS_MS.items() if item[0] in results)]


def ledger_100k_figures(quick: bool) -> list[Figure]:
    """Issue 17's ledger targets at 100,000 rows: bench_history.py's append, update, and cold load beside stdlib
    csv.DictReader over the same file (measured alternately in the same run)."""
    rows = 2_000 if quick else 100_000
    code, output = run_script("bench_history.py", str(rows), timeout=900)
    print(output, flush=True)
    try:
        results = json.loads(output.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return [Figure(f"ledger @{rows:,} (bench_history.py)", "error", "", "", False, f"exit {code}, no JSON")]
    ratio = results["load all rows (cold)"] / results["stdlib csv"]
    return [
        Figure(f"ledger @{rows:,}: append one row", f"{results['append one row']:.1f} ms", "", "≤ 10 ms",
               results["append one row"] <= 10),
        Figure(f"ledger @{rows:,}: update one row", f"{results['update one row']:.1f} ms", "", "≤ 100 ms",
               results["update one row"] <= 100),
        Figure(f"ledger @{rows:,}: load all rows (cold)", f"{results['load all rows (cold)']:.0f} ms ({ratio:.2f}×)",
               f"stdlib csv.DictReader: {results['stdlib csv']:.0f} ms", "≤ 2× stdlib", ratio <= 2.0,
               "medians of 7, measured alternately"),
    ]


def media_figures(quick: bool) -> list[Figure]:
    """bench_media.py's report, and the table's headline: a 10 MB PNG checked by lib.kling.media vs fully decoded."""
    code, output = run_script("bench_media.py")
    print(output, flush=True)
    from bench_uploads import make_image
    from PIL import Image

    from lib.kling.media import check_image
    from tests.media_helpers import CountingReader

    with tempfile.TemporaryDirectory() as tmp:
        path = make_image(Path(tmp) / "ten.png", (1 if quick else 10) * MIB - 64 * 1024)
        reads: list[int] = []

        def check(_: int) -> None:
            with path.open("rb") as fh:
                reader = CountingReader(fh)
                result = check_image(path.name, reader)
                reads.append(reader.bytes_read)
                if not result.ok:
                    raise RuntimeError(f"check_image refused the bench image: {result.problems}")

        def decode(_: int) -> None:
            with Image.open(path) as image:
                image.load()

        check_ms, decode_ms = timed_ms(check), timed_ms(decode, 3)
        size = path.stat().st_size
    figures = [Figure(f"media: check a {size / MIB:.1f} MB PNG", f"{check_ms:.2f} ms, read {max(reads):,} B",
                      f"full decode: {decode_ms:.0f} ms", f"≤ {MEDIA_TARGET_MS:g} ms, < 1 MB read",
                      check_ms <= MEDIA_TARGET_MS and max(reads) < MEDIA_MAX_READ)]
    if code:
        figures.append(Figure("media (bench_media.py)", "error", "", "exit 0", False, f"exit {code}"))
    return figures


def machine() -> str:
    import streamlit

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return (f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, Streamlit {streamlit.__version__}, "
            f"{time.strftime('%Y-%m-%d %H:%M %Z')}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke run, figures meaningless)")
    parser.add_argument("--out", type=Path, help="also write the final table (Markdown) to this file")
    parser.add_argument("--strict", action="store_true", help="exit 1 when any target is missed")
    args = parser.parse_args()
    started = time.monotonic()
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="kling-bench-") as tmp:
        data = Path(tmp) / "data"
        print("generating the data folder…", flush=True)
        make_data_dir(data, *((200, 5) if args.quick else (10_000, 50)))
        for name in OURS:
            figures += our_figures(name, data, args.quick)
            if name == "bench_pages.py":  # the ledger bench next, while the 10k-row file is at hand
                figures += history_figures(data, args.quick)
                figures += ledger_100k_figures(args.quick)
        figures += media_figures(args.quick)
    report = f"Machine: {machine()}; run_all took {time.monotonic() - started:.0f} s.\n\n{table(figures)}"
    print(f"\n# All figures\n\n{report}")
    failed = [f.metric for f in figures if f.ok is False]
    print(f"\n{sum(f.ok is True for f in figures)} passed, {len(failed)} missed" +
          (": " + "; ".join(failed) if failed else ""))
    if args.out:
        args.out.write_text(report + "\n")
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
