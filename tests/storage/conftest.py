"""Real components for team-mode tests: a throwaway PostgreSQL cluster and a moto S3 server, both on loopback.

Both are started by lib/storage/testbed.py (shared with bench/bench_team.py). The cluster is made with
initdb/pg_ctl (as the `postgres` user when running as root) and removed after the session; each test gets a fresh
database. Without PostgreSQL's binaries the SQL tests skip, saying why (and fail when KLING_REQUIRE_POSTGRES is
set, as .ci/run does).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from lib.storage.testbed import MISSING, PgCluster, PostgresMissing, S3Server, moto_s3
from lib.storage.testbed import pg_cluster as start_pg_cluster


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """initdb + pg_ctl on a free loopback port, trust auth on loopback only; stopped and deleted after."""
    try:
        with start_pg_cluster() as cluster:
            yield cluster
    except PostgresMissing:
        if os.environ.get("KLING_REQUIRE_POSTGRES"):
            pytest.fail(MISSING + " and KLING_REQUIRE_POSTGRES is set (CI)")
        pytest.skip(MISSING)


@pytest.fixture
def database_url(pg_cluster: PgCluster) -> str:
    """A fresh, empty database on the throwaway cluster."""
    return pg_cluster.url(pg_cluster.create_database())


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's ThreadedMotoServer on a free loopback port, stopped after the session."""
    pytest.importorskip("moto.server", reason="moto[server] is not installed (requirements-dev)")
    with moto_s3() as server:
        yield server


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The usual AWS environment variables pointed at the moto server (never a real account)."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return s3_server
