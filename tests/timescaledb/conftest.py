"""A second throwaway cluster with TimescaleDB installed but not preloaded: the usual state right
after installing the package, where `CREATE EXTENSION timescaledb` ends the session with FATAL.

Built from the same binaries as the TimescaleDB server of PEEBOT_TEST_TIMESCALEDB_URL (its
BINDIR, read from the server), on a free port, with the preload left out; stopped and deleted
at the end of the session. PostgreSQL refuses to run as root, so as root it runs as `postgres`.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def unpreloaded_server_url(timescale_url: str) -> Iterator[str]:
    """Admin URL of a cluster that has the timescaledb extension files but no preload."""
    with psycopg.connect(timescale_url) as conn:
        row = conn.execute("SELECT setting FROM pg_config WHERE name = 'BINDIR'").fetchone()
    assert row, "pg_config BINDIR not readable"
    bindir = Path(row[0])
    home = Path(tempfile.mkdtemp(prefix="peebot-unpreloaded-"))
    if os.geteuid() == 0:
        shutil.chown(home, "postgres", "postgres")
    data = home / "data"
    subprocess.run(
        _as_postgres(
            [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync"]
        ),
        check=True,
        capture_output=True,
        timeout=120,
    )
    port = _free_port()
    conf = (
        f"listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{home}'\n"
        "fsync = off\n"
    )
    subprocess.run(
        _as_postgres(["tee", "-a", str(data / "postgresql.conf")]),
        input=conf.encode(),
        check=True,
        capture_output=True,
    )
    log = home / "postgres.log"
    subprocess.run(
        _as_postgres([str(bindir / "pg_ctl"), "start", "-w", "-D", str(data), "-l", str(log)]),
        check=True,
        capture_output=True,
        timeout=120,
    )
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_postgres([str(bindir / "pg_ctl"), "stop", "-D", str(data), "-m", "immediate"]),
            capture_output=True,
            timeout=120,
        )
        shutil.rmtree(home, ignore_errors=True)
