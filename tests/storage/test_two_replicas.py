"""Two replicas (issue 19): two `streamlit run` servers on different ports share one throwaway PostgreSQL database,
one moto bucket and one KIE double (the app's sandbox, in this process, reached as a KIE-compatible gateway).

Server A reaches the double as http://127.0.0.1:<port>, server B as http://localhost:<port>, so the double's
request log (the Host header of each recordInfo) says which server polled a task. Run under the browser lock:
`flock /tmp/browser.lock pytest tests/storage/test_two_replicas.py -x -q`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import text

from lib.history.row import HistoryRow
from lib.sandbox.server import SandboxHandler, SandboxServer, start_sandbox
from lib.storage.open import CACHE_FOLDER
from lib.storage.s3 import thumbnail_name, video_name
from lib.storage.sql import SqlLedger, shared_engine
from tests.browser.test_compose_browser import VIDEOS_PLAYABLE, commit
from tests.conftest import AppServer, screenshot, wait_for_app

pytestmark = pytest.mark.browser
KEY = "team-gateway-key"  # the sandbox takes any key; the servers run in live mode against it
RECORD_INFO = "/api/v1/jobs/recordInfo"


class Polls:
    """recordInfo requests the double answered, by the Host the server used (A: 127.0.0.1, B: localhost)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []  # (host name, task id)

    def by_server(self, task_id: str) -> Counter[str]:
        return Counter(host for host, task in list(self.seen) if task == task_id)


@pytest.fixture
def polls(monkeypatch: pytest.MonkeyPatch) -> Polls:
    log = Polls()
    answer = SandboxHandler._api

    def logged(self: SandboxHandler, method: str, path: str, query: dict[str, list[str]]) -> None:
        if path == RECORD_INFO:
            host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
            log.seen.append((host, (query.get("taskId") or [""])[0]))
        answer(self, method, path, query)

    monkeypatch.setattr(SandboxHandler, "_api", logged)
    return log


@pytest.fixture
def double(tmp_path: Path, polls: Polls) -> Iterator[SandboxServer]:
    server = start_sandbox(port=0, data_dir=tmp_path / "kie-double", progress="wall", seconds=6.0,
                           credits="100000")
    yield server
    server.stop()


HOSTS = {"A": "127.0.0.1", "B": "localhost"}


@pytest.fixture
def replica(tmp_path: Path, database_url: str, s3_server, double: SandboxServer,
            app_server_factory: Callable[..., AppServer]) -> Callable[[str], AppServer]:
    """Start replica "A" or "B": its own data folder and port, the shared database, bucket and KIE double."""
    port = double.base_url.rsplit(":", 1)[1]
    shared = {"KIE_API_KEY": KEY, "KIE_UPLOAD_BASE": double.base_url, "KLING_STUDIO_DATABASE_URL": database_url,
              "KLING_STUDIO_MEDIA_URL": f"s3://{s3_server.new_bucket()}/team", **s3_server.env()}

    def start(name: str) -> AppServer:
        env = {**shared, "KIE_API_BASE": f"http://{HOSTS[name]}:{port}"}
        return app_server_factory(tmp_path / f"data-{name}", env)

    return start


def _ledger(database_url: str) -> SqlLedger:
    return SqlLedger(shared_engine(database_url))


def _submit_on(server: AppServer, browser, prompt: str, ledger: SqlLedger) -> HistoryRow:
    """Submit one job from a fresh tab on `server`, close the tab once the task is recorded, return its row."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{server.url}/Compose")
    wait_for_app(page)
    commit(page, page.get_by_label("Prompt", exact=True), prompt)
    page.get_by_role("button", name="Submit · 70 credits (US$0.35)").click()
    wait_for_app(page)
    row = _task_with_prompt(ledger, prompt)
    context.close()  # the tab is gone: only the servers follow the task now
    return row


def _task_with_prompt(ledger: SqlLedger, prompt: str, timeout_s: float = 20) -> HistoryRow:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [r for r in ledger.rows() if r.prompt == prompt]
        if found:
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"no task with prompt {prompt!r} in the shared ledger")


def _wait(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def _archived(ledger: SqlLedger, task_id: str) -> bool:
    row = ledger.get(task_id)
    return row is not None and row.state == "succeeded" and bool(row.local_video)


def _local_videos(data_dir: Path) -> list[Path]:
    """Every MP4 under a server's data folder outside its declared cache."""
    cache = data_dir / CACHE_FOLDER
    return [p for p in data_dir.rglob("*.mp4") if not p.is_relative_to(cache)]


def _bucket_names(s3_server, media_url_env: dict[str, str]) -> set[str]:
    bucket, prefix = media_url_env["KLING_STUDIO_MEDIA_URL"].removeprefix("s3://").split("/", 1)
    listing = s3_server.client().list_objects_v2(Bucket=bucket, Prefix=prefix + "/")
    return {item["Key"].removeprefix(prefix + "/") for item in listing.get("Contents", [])}


def _detail_on(page, server: AppServer, task_id: str) -> None:
    page.goto(f"{server.url}/History?task={task_id}")
    wait_for_app(page)
    expect(page.locator('[data-testid="stMain"]')).to_contain_text(task_id)


def test_a_job_made_on_a_is_followed_by_one_server_and_plays_on_b(replica, browser, page, database_url, polls,
                                                                  s3_server) -> None:
    a, b = replica("A"), replica("B")
    ledger = _ledger(database_url)
    row = _submit_on(a, browser, "a paper boat on a rain gutter, made on server A", ledger)
    _detail_on(page, b, row.task_id)  # B's History has it while it runs
    _wait(lambda: _archived(ledger, row.task_id), 60, "the task to finish and be archived")
    by_server = polls.by_server(row.task_id)
    assert len(by_server) == 1 and sum(by_server.values()) >= 2, by_server  # one server polled it, all along
    names = _bucket_names(s3_server, a.extra_env)
    assert video_name(row.task_id) in names and thumbnail_name(row.task_id) in names
    assert _local_videos(a.data_dir) == [] and _local_videos(b.data_dir) == []
    _detail_on(page, b, row.task_id)
    page.wait_for_function(VIDEOS_PLAYABLE, arg=1, timeout=30_000)  # plays on B, from B's cache of the bucket
    screenshot(page, "two-replicas-plays-on-b")
    assert KEY not in page.content()


def _lease_owner(database_url: str, task_id: str) -> str | None:
    """The server holding the task's lease (`host:pid:random`), or None."""
    with shared_engine(database_url).connect() as conn:
        return conn.execute(text("SELECT lease_owner FROM kling_ledger WHERE task_id = :id"),
                            {"id": task_id}).scalar()


def test_kill_9_of_a_mid_task_and_b_takes_the_lease_over(replica, browser, database_url, polls, double,
                                                         s3_server) -> None:
    double.backend.configure(seconds=25.0)  # long enough to kill A while the task is running
    a = replica("A")
    ledger = _ledger(database_url)
    row = _submit_on(a, browser, "a lighthouse in fog, left running when server A dies", ledger)
    _wait(lambda: polls.by_server(row.task_id)["127.0.0.1"] >= 1, 20, "A's first poll")
    b = replica("B")  # B is up while A holds the lease: it leaves the task alone
    assert f":{a.proc.pid}:" in (_lease_owner(database_url, row.task_id) or "")
    seen_by_a = polls.by_server(row.task_id)["127.0.0.1"]
    _wait(lambda: polls.by_server(row.task_id)["127.0.0.1"] > seen_by_a, 20, "A's next poll, with B running")
    assert polls.by_server(row.task_id)["localhost"] == 0  # B ticked every second all that time
    a.proc.kill()  # kill -9: no shutdown code runs, the lease is not released
    a.proc.wait(timeout=10)
    assert ledger.get(row.task_id).state in ("queued", "running")
    with shared_engine(database_url).begin() as conn:  # as when the 90 s lease timeout has passed
        conn.execute(text("UPDATE kling_ledger SET lease_expires = :past WHERE task_id = :id"),
                     {"past": time.time() - 1, "id": row.task_id})
    _wait(lambda: _archived(ledger, row.task_id), 90, "B to finish the task")
    assert polls.by_server(row.task_id)["localhost"] >= 1
    assert video_name(row.task_id) in _bucket_names(s3_server, b.extra_env)
    assert _lease_owner(database_url, row.task_id) is None  # released when final
    assert _local_videos(a.data_dir) == [] and _local_videos(b.data_dir) == []


def test_an_element_made_on_a_shows_on_b_with_its_thumbnails(replica, page, tmp_path: Path, s3_server) -> None:
    from tests.browser.test_elements_browser import assert_card_ready, open_elements, pick_files, type_into, write_png

    a, b = replica("A"), replica("B")
    files = [write_png(tmp_path / "front.png", 640, (220, 90, 30)), write_png(tmp_path / "side.png", 512, (30, 90, 200))]
    open_elements(page, a)
    type_into(page, "elements_name_field", "team_cat")
    type_into(page, "elements_description_field", "a ginger cat shared by two servers", "textarea")
    pick_files(page, files)
    page.get_by_role("button", name="Save and upload").click()
    expect(page.locator('[data-testid="stMain"]')).to_contain_text("@team_cat is uploaded", timeout=30_000)
    open_elements(page, b)
    assert_card_ready(page, "team_cat")  # B's card: the record from the database, thumbnails from the bucket
    screenshot(page, "two-replicas-element-on-b")
    originals = [n for n in _bucket_names(s3_server, a.extra_env) if n.endswith(".png")]
    assert len(originals) == 2, originals
    for server in (a, b):
        cache = server.data_dir / CACHE_FOLDER
        stray = [p for p in server.data_dir.rglob("*.png") if not p.is_relative_to(cache)]
        assert stray == [] and not (server.data_dir / "elements" / "library.json").exists()
