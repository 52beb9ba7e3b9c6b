"""Bad-input corpus: every input is refused with a message naming the field, and nothing saved is changed.

Each case runs through lib against a seeded data folder (two ledger rows, one element) whose files must be
byte-identical afterwards. A handful run through the real Elements page (AppTest) as well.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lib.elements.library import ElementLibrary
from lib.elements.model import ElementError
from lib.history.ledger import Ledger
from lib.history.row import COLUMNS, HistoryRow
from lib.history.transfer import export_csv, import_csv
from lib.kie.errors import KieError, ValidationError
from lib.kling.validation import validate_payload
from lib.tasks.submit import submit_payload
from tests.reliability.conftest import PAYLOAD, closed_port, png_bytes, snapshot

MB = 1024 * 1024


# ---------------------------------------------------------------- inputs

def gif_bytes() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (400, 400), "red").save(out, "GIF")
    return out.getvalue()


def other_image(fmt: str) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (400, 400), "blue").save(out, fmt)
    return out.getvalue()


def jpeg_bytes() -> bytes:
    return other_image("JPEG")


def ftyp(brand: bytes) -> bytes:
    return struct.pack(">I", 24) + b"ftyp" + brand + b"\x00\x00\x02\x00" + brand + b"isom" + b"\x00" * 64


def sparse(tmp: Path, head: bytes, size: int):
    """A file of `size` bytes starting with `head`, without writing (or reading) the rest."""
    handle = tmp.open("w+b")
    handle.write(head)
    handle.truncate(size)
    handle.seek(0)
    return handle


def payload(**changes: Any) -> dict[str, Any]:
    return {**PAYLOAD, **{k: v for k, v in changes.items() if k == "callBackUrl"},
            "input": {**PAYLOAD["input"], **{k: v for k, v in changes.items() if k != "callBackUrl"}}}


def multi(durations: list[int], duration: int, prompt: str = "a shot") -> dict[str, Any]:
    shots = [{"prompt": prompt, "duration": d} for d in durations]
    return {**PAYLOAD, "input": {**{k: v for k, v in PAYLOAD["input"].items() if k != "prompt"},
                                 "multi_shots": True, "sound": True, "duration": str(duration),
                                 "multi_prompt": shots}}


def element_payload(url: str) -> dict[str, Any]:
    element = {"name": "dog", "description": "a dog", "element_input_urls": [url, "https://cdn.example.com/b.png"]}
    return payload(prompt="@dog runs", kling_elements=[element], image_urls=["https://cdn.example.com/f.png"])


def csv_with(header: list[str], *rows: list[str], bom: bool = False) -> bytes:
    import csv

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return (b"\xef\xbb\xbf" if bom else b"") + out.getvalue().encode("utf-8")


def good_cells(task_id: str = "task_import_1", **changes: str) -> list[str]:
    row = HistoryRow.from_payload(task_id, PAYLOAD, origin="sandbox").to_csv_dict()
    row.update(changes)
    return [row[c] for c in COLUMNS]


# ---------------------------------------------------------------- runners (each returns the messages shown)

def run_create(name: str = "dog", files: list[tuple[str, Any]] | None = None,
               urls: list[str] | None = None) -> Callable[[Path, Path], list[str]]:
    """A corpus case: create an element and return the problems it was refused with ([] if accepted)."""
    def run(data: Path, tmp: Path) -> list[str]:
        default = [("a.png", png_bytes()), ("b.png", png_bytes())] if files is None and urls is None else []
        resolved = [(n, c(tmp) if callable(c) else c) for n, c in (files or default)]
        try:
            ElementLibrary(data).create(name, "a dog", files=resolved, urls=urls or [])
        except ElementError as exc:
            return exc.problems
        return []
    return run


def run_files(files: list[tuple[str, Any]]) -> Callable[[Path, Path], list[str]]:
    return run_create(files=files)


def run_name(name: str) -> Callable[[Path, Path], list[str]]:
    return run_create(name=name)


def run_urls(urls: list[str]) -> Callable[[Path, Path], list[str]]:
    return run_create(urls=urls)


def run_payload(body: dict[str, Any]) -> Callable[[Path, Path], list[str]]:
    def run(data: Path, tmp: Path) -> list[str]:
        from lib.kie.client import KieClient

        errors = [p for p in validate_payload(body) if p.level == "error"]
        # a dead host: if validation let anything through, the submit would fail differently
        dead = KieClient("k", f"http://127.0.0.1:{closed_port()}", f"http://127.0.0.1:{closed_port()}")
        with pytest.raises(ValidationError):
            submit_payload(dead, Ledger.in_dir(data), body, origin="sandbox", batch_id="b")
        return [f"{p.path}: {p.message}" for p in errors]
    return run


def run_csv(content: bytes) -> Callable[[Path, Path], list[str]]:
    def run(data: Path, tmp: Path) -> list[str]:
        report = import_csv(content)
        if report.ok:  # what the History page does: merge what was readable, skip known ids
            Ledger.in_dir(data).merge(report)
        return [report.summary()]
    return run


def run_library_json(text: str) -> Callable[[Path, Path], list[str]]:
    def run(data: Path, tmp: Path) -> list[str]:
        try:
            result = ElementLibrary(data).import_json(text)
        except ElementError as exc:
            return exc.problems
        return [f"{label}: {why}" for label, why in result.bad] + [f"added {n}" for n in result.added]
    return run


def run_upload_url(url: str) -> Callable[[Path, Path], list[str]]:
    def run(data: Path, tmp: Path) -> list[str]:
        from lib.kie.client import KieClient
        from lib.kie.uploads import upload_file

        dead = KieClient("k", f"http://127.0.0.1:{closed_port()}", f"http://127.0.0.1:{closed_port()}")
        try:
            upload_file(dead, url, file_name="x.png", upload_path="p", method="url")
        except KieError as exc:
            return [exc.user_message()]
        return []
    return run


GOOD = ("b.png", png_bytes())
PNG = png_bytes(400, 400)
SEEDED_ROW = good_cells("task_seed_1")

# (runner, substrings every one of which must appear in the messages; the first names the field)
CORPUS: dict[str, tuple[Callable[[Path, Path], list[str]], tuple[str, ...]]] = {
    # images
    "image 299x299": (run_files([("small.png", png_bytes(299, 299)), GOOD]), ("small.png", "299×299", "300×300")),
    "image 300x120": (run_files([("wide.png", png_bytes(300, 120)), GOOD]), ("wide.png", "300×120")),
    "image 1x1": (run_files([("dot.png", png_bytes(1, 1)), GOOD]), ("dot.png", "1×1")),
    "image over 10 MB": (run_files([("huge.png", lambda t: sparse(t / "huge.png", PNG, 10 * MB + 1)), GOOD]),
                         ("huge.png", "at most 10 MB")),
    "GIF named .png": (run_files([("cat.png", gif_bytes()), GOOD]), ("cat.png", "GIF", "PNG or JPG")),
    "BMP named .jpg": (run_files([("cat.jpg", other_image("BMP")), GOOD]), ("cat.jpg", "BMP")),
    "WEBP named .png": (run_files([("cat.png", other_image("WEBP")), GOOD]), ("cat.png", "WEBP")),
    "text named .jpg": (run_files([("notes.jpg", b"hello, not an image\n" * 20), GOOD]),
                        ("notes.jpg", "not a readable image or video")),
    "HEIC named .png": (run_files([("phone.png", ftyp(b"heic")), GOOD]), ("phone.png", "HEIC")),
    "PNG cut in half": (run_files([("half.png", PNG[: len(PNG) // 2]), GOOD]), ("half.png", "cut off")),
    "JPEG cut in half": (run_files([("half.jpg", jpeg_bytes()[:600]), GOOD]), ("half.jpg", "download it again")),
    "zero-byte image": (run_files([("empty.png", b""), GOOD]), ("empty.png", "empty")),
    "video and image mixed": (run_files([("clip.png", ftyp(b"isom")), GOOD]), ("not both",)),
    # videos
    "video over 50 MB": (run_files([("long.mp4", lambda t: sparse(t / "long.mp4", ftyp(b"isom"), 50 * MB + 1))]),
                         ("long.mp4", "at most 50 MB")),
    "WebM video": (run_files([("clip.webm", b"\x1a\x45\xdf\xa3" + b"\x00" * 60)]), ("clip.webm", "MP4 or MOV")),
    "AVI video": (run_files([("clip.avi", b"RIFF\x00\x10\x00\x00AVI LIST" + b"\x00" * 60)]), ("clip.avi", "MP4 or MOV")),
    "text named .mp4": (run_files([("clip.mp4", b"#EXTM3U\nnot a video\n")]), ("clip.mp4", "MP4 or MOV")),
    "zero-byte video": (run_files([("clip.mp4", b"")]), ("clip.mp4", "empty")),
    # element names
    "name with a space": (run_name("my dog"), ("Name", "space", "my_dog")),
    "Cyrillic look-alike": (run_name("сat"), ("Name", "looks like the Latin 'c'")),
    "Greek look-alike": (run_name("ΑΒ"), ("Name", "looks like the Latin")),
    "duplicate name": (run_name("cat"), ("named 'cat' already exists", "cat_2")),
    "duplicate ignoring case": (run_name("CAT"), ("named 'cat' already exists",)),
    "empty name": (run_name("  "), ("Name is empty",)),
    "punctuation in name": (run_name("cat!"), ("Name", "'!'")),
    "41-char name": (run_name("x" * 41), ("Name", "41 characters", "at most 40")),
    "accented name": (run_name("café"), ("Name", "'é'", "cafe")),
    # payloads (Compose's rules) — the path names the field
    "unknown @name": (run_payload(payload(prompt="@ghost walks in")), ("input.prompt", "@ghost is not a defined element")),
    "shots do not match total": (run_payload(multi([3, 3], 5)), ("input.duration", "add up to 6 s", "duration is 5 s")),
    "shots over 15 s": (run_payload(multi([8, 8], 15)), ("input.multi_prompt", "16 s", "at most 15")),
    "2501-char prompt": (run_payload(payload(prompt="a" * 2501)), ("input.prompt", "2,501 characters", "limit is 2,500")),
    "501-char shot prompt": (run_payload(multi([3, 2], 5, "b" * 501)), ("input.multi_prompt[0]", "500")),
    "file: first frame": (run_payload(payload(image_urls=["file:///etc/passwd"])), ("input.image_urls[0]", "file: link")),
    "javascript: first frame": (run_payload(payload(image_urls=["javascript:alert(1)"])),
                                ("input.image_urls[0]", "javascript: link")),
    "data: first frame": (run_payload(payload(image_urls=["data:image/png;base64,iVBORw0KGgo="])),
                          ("input.image_urls[0]", "data: link")),
    "javascript: callback": (run_payload(payload(callBackUrl="javascript:alert(1)")), ("callBackUrl", "javascript:")),
    "ftp: element image": (run_payload(element_payload("ftp://files.example.com/a.png")),
                           ("input.kling_elements[0].element_input_urls[0]", "ftp: link")),
    "schemeless element image": (run_payload(element_payload("cdn.example.com/a.png")),
                                 ("element_input_urls[0]", "no http:// or https://")),
    # element URLs and URL upload
    "file: element URLs": (run_urls(["file:///etc/passwd", "file:///etc/shadow.png"]), ("file:///etc/passwd", "not a web address")),
    "javascript: element URL": (run_urls(["javascript:alert(1)", "https://cdn.example.com/a.png"]), ("javascript:alert(1)", "not a web address")),
    "data: element URL": (run_urls(["data:image/png;base64,AAAA", "https://cdn.example.com/a.png"]), ("data:image/png", "not a web address")),
    "file: URL upload": (run_upload_url("file:///etc/passwd"), ("file:///etc/passwd", "not an http(s) address")),
    # history CSV imports
    "CSV missing columns": (run_csv(csv_with(["task_id", "prompt"], ["t1", "x"])), ("missing column(s)", "state")),
    "CSV extra column": (run_csv(csv_with([*COLUMNS, "evil"], SEEDED_ROW + ["=1+1"])),
                         ("Ignored unknown column(s): evil",)),
    "CSV wrong type (duration)": (run_csv(csv_with(list(COLUMNS), good_cells(duration="five"))), ("duration",)),
    "CSV wrong type (rating)": (run_csv(csv_with(list(COLUMNS), good_cells(rating="9"))), ("rating",)),
    "CSV wrong state": (run_csv(csv_with(list(COLUMNS), good_cells(state="done"))), ("state", "'done'")),
    "CSV bad date": (run_csv(csv_with(list(COLUMNS), good_cells(created_at="yesterday"))), ("created_at",)),
    "CSV duplicate ids": (run_csv(csv_with(list(COLUMNS), SEEDED_ROW, SEEDED_ROW)), ("repeated task id", "task_seed_1")),
    "CSV with BOM and a bad cell": (run_csv(csv_with(list(COLUMNS), good_cells(sound="maybe"), bom=True)), ("sound",)),
    "CSV 10 MB cell": (run_csv(csv_with(list(COLUMNS), good_cells(notes="n" * (10 * MB)))), ("'notes'", "10.5 MB")),
    "CSV not UTF-8": (run_csv(csv_with(["task_id"], ["x"]) + "é".encode("latin-1")), ("not UTF-8", "CSV UTF-8")),
    "CSV binary": (run_csv(b"\x89PNG\r\n\x1a\n\x00\x00"), ("binary",)),
    "CSV empty": (run_csv(b""), ("empty",)),
    # element library JSON
    "library JSON not JSON": (run_library_json("{not json"), ("not JSON",)),
    "library JSON a string": (run_library_json('"elements"'), ("a string",)),
    "library JSON empty list": (run_library_json("[]"), ("empty",)),
    "library JSON entry w/o files": (run_library_json('[{"name": "dog", "description": "d"}]'), ("dog", "No reference files")),
    "library JSON bad name+URL": (run_library_json(json.dumps([{"name": "my dog", "description": "d",
                                                               "element_input_urls": ["file:///etc/passwd", "https://c.example.com/b.png"]}])),
                                  ("my dog", "space", "not a web address")),
    "library JSON duplicate": (run_library_json(json.dumps([{"name": "cat", "description": "d", "element_input_urls": [
        "https://c.example.com/a.png", "https://c.example.com/b.png"]}])), ("already exists",)),
}


def test_the_corpus_has_at_least_40_inputs() -> None:
    assert len(CORPUS) >= 40


@pytest.mark.parametrize("name", list(CORPUS))
def test_bad_input_is_refused_clearly_and_changes_nothing(name: str, seeded_data: Path, tmp_path: Path) -> None:
    run, expected = CORPUS[name]
    before = snapshot(seeded_data)
    messages = run(seeded_data, tmp_path)
    shown = "\n".join(messages)
    assert messages, f"{name}: accepted without a message"
    for part in expected:
        assert part.lower() in shown.lower(), f"{name}: {part!r} not in {shown!r}"
    assert snapshot(seeded_data) == before, f"{name}: saved data changed"


def test_a_bom_export_round_trips(seeded_data: Path) -> None:
    """The export carries a BOM for spreadsheets; importing it reads the first column correctly."""
    rows = Ledger.in_dir(seeded_data).rows()
    data = export_csv(rows)
    assert data.startswith(b"\xef\xbb\xbf")
    report = import_csv(data)
    assert report.ok and [r.task_id for r in report.rows_ok] == ["task_seed_1", "task_seed_2"]
    assert report.extra_columns == [] and report.bad_rows == []


def test_a_damaged_library_file_is_reported_and_left_untouched(seeded_data: Path) -> None:
    path = seeded_data / "elements" / "library.json"
    path.write_bytes(b'{"version": 1, "elements": [')
    with pytest.raises(ElementError, match="damaged") as err:
        ElementLibrary(seeded_data).create("dog", "a dog", files=[("a.png", png_bytes()), ("b.png", png_bytes())])
    assert "left untouched" in err.value.problems[0]
    assert path.read_bytes() == b'{"version": 1, "elements": ['
