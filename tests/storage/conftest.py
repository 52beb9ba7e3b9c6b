"""Real components for team-mode tests: a throwaway PostgreSQL cluster and a moto S3 server, both on loopback.

The cluster is made with initdb/pg_ctl (as the `postgres` user when running as root) and removed after the
session; each test gets a fresh database. Without PostgreSQL's binaries the SQL tests skip, saying why (and fail
when KLING_REQUIRE_POSTGRES is set, as .ci/run does).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


@dataclass(frozen=True)
class PgCluster:
    """A running throwaway cluster: make databases on it by name."""

    port: int
    user: str

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(host="127.0.0.1", port=self.port, user=self.user, dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name


def _as_cluster_owner(cmd: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as `postgres` then."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """initdb + pg_ctl on a free loopback port, trust auth on loopback only; stopped and deleted after."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        why = "PostgreSQL is not installed (no initdb/pg_ctl; Debian: apt-get install postgresql)"
        if os.environ.get("KLING_REQUIRE_POSTGRES"):
            pytest.fail(why + " and KLING_REQUIRE_POSTGRES is set (CI)")
        pytest.skip(why)
    root = Path(tempfile.mkdtemp(prefix="kling-pg-"))
    user = "postgres" if os.geteuid() == 0 else (os.environ.get("USER") or "postgres")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    data, port = root / "data", _free_port()
    run = {"check": True, "capture_output": True, "timeout": 120}
    subprocess.run(_as_cluster_owner([initdb, "-D", str(data), "-U", user, "-A", "trust", "-E", "UTF8",
                                      "--no-sync"]), **run)
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} -c fsync=off"
    subprocess.run(_as_cluster_owner([pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w",
                                      "start"]), **run)
    try:
        yield PgCluster(port, user)
    finally:
        subprocess.run(_as_cluster_owner([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"]),
                       capture_output=True, timeout=60, check=False)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def database_url(pg_cluster: PgCluster) -> str:
    """A fresh, empty database on the throwaway cluster."""
    return pg_cluster.url(pg_cluster.create_database())


@dataclass(frozen=True)
class S3Server:
    """A moto server standing in for an S3-compatible bucket host."""

    endpoint: str

    def client(self) -> object:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key="test")

    def new_bucket(self) -> str:
        name = "kling-" + uuid.uuid4().hex[:10]
        self.client().create_bucket(Bucket=name)
        return name


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's ThreadedMotoServer on a free loopback port, stopped after the session."""
    moto_server = pytest.importorskip("moto.server", reason="moto[server] is not installed (requirements-dev)")
    port = _free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The usual AWS environment variables pointed at the moto server (never a real account)."""
    for name, value in {"AWS_ENDPOINT_URL": s3_server.endpoint, "AWS_ACCESS_KEY_ID": "test",
                        "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    return s3_server
