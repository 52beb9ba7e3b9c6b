"""Real team-mode components for tests and benchmarks (never used by the app itself): a throwaway PostgreSQL
cluster and a moto S3 server, both on loopback.

The cluster: `initdb` + `pg_ctl` (as the `postgres` user when running as root: PostgreSQL refuses root), trust
auth on 127.0.0.1 only, fsync off; it and its folder are removed when the context ends.
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
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MISSING = "PostgreSQL is not installed (no initdb/pg_ctl; Debian: apt-get install postgresql)"


class PostgresMissing(RuntimeError):
    """initdb/pg_ctl are not on this machine."""


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pg_bin(name: str) -> str | None:
    """A PostgreSQL server binary: on PATH, or Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


def have_postgres() -> bool:
    """True when a cluster can be started here."""
    return bool(pg_bin("initdb") and pg_bin("pg_ctl"))


@dataclass(frozen=True)
class PgCluster:
    """A running throwaway cluster: make databases on it by name."""

    port: int
    user: str

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of one database on the cluster."""
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; returns its name."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(host="127.0.0.1", port=self.port, user=self.user, dbname="postgres",
                             autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def new_database_url(self) -> str:
        """The URL of a fresh, empty database."""
        return self.url(self.create_database())


def _as_cluster_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@contextmanager
def pg_cluster() -> Iterator[PgCluster]:
    """Start a cluster on a free loopback port; stop it and delete its folder after."""
    initdb, pg_ctl = pg_bin("initdb"), pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        raise PostgresMissing(MISSING)
    root = Path(tempfile.mkdtemp(prefix="kling-pg-"))
    user = "postgres" if os.geteuid() == 0 else (os.environ.get("USER") or "postgres")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    data, port = root / "data", free_port()
    try:
        subprocess.run(_as_cluster_owner([initdb, "-D", str(data), "-U", user, "-A", "trust", "-E", "UTF8",
                                          "--no-sync"]), check=True, capture_output=True, timeout=120)
        options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} -c fsync=off"
        subprocess.run(_as_cluster_owner([pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w",
                                          "start"]), check=True, capture_output=True, timeout=120)
        yield PgCluster(port, user)
    finally:
        if data.exists():
            subprocess.run(_as_cluster_owner([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"]),
                           capture_output=True, timeout=60, check=False)
        shutil.rmtree(root, ignore_errors=True)


@dataclass(frozen=True)
class S3Server:
    """A moto server standing in for an S3-compatible bucket host."""

    endpoint: str

    def env(self) -> dict[str, str]:
        """The usual AWS environment variables pointed at this server (never a real account)."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                "AWS_DEFAULT_REGION": "us-east-1"}

    def client(self) -> Any:
        """A boto3 client on this server."""
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="test", aws_secret_access_key="test")

    def new_bucket(self) -> str:
        """A new empty bucket; returns its name."""
        name = "kling-" + uuid.uuid4().hex[:10]
        self.client().create_bucket(Bucket=name)
        return name


@contextmanager
def moto_s3() -> Iterator[S3Server]:
    """moto's ThreadedMotoServer on a free loopback port (ImportError without moto[server])."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        server.stop()
