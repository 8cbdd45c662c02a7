"""Choosing the storage mode against real servers: TimescaleDB installed but not preloaded
(CREATE EXTENSION ends the session with FATAL), preloaded, and `PEEBOT_TIMESCALEDB` auto / on."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from peebot_ingest import db as database
from peebot_ingest import migrations, storage_mode


@pytest.fixture
def unpreloaded_db_url(unpreloaded_server_url: str) -> Iterator[str]:
    name = f"peebot_np_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(unpreloaded_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield database.with_database(unpreloaded_server_url, name)
    with psycopg.connect(unpreloaded_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _migrate_cli(url: str, setting: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "PEEBOT_DATABASE_URL": url,
        "PEEBOT_TIMESCALEDB": setting,
    }
    return subprocess.run(
        [sys.executable, "-m", "peebot.cli", "db", "migrate"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=home,
    )


def test_create_extension_without_the_preload_ends_the_session(unpreloaded_db_url: str) -> None:
    """The server state the probe must survive (why it asks before it tries)."""
    with psycopg.connect(unpreloaded_db_url, autocommit=True) as conn:
        offered = conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
        ).fetchone()
        assert offered, "the extension files must be installed on this cluster"
        with pytest.raises(psycopg.Error, match="preload") as failed:
            conn.execute("CREATE EXTENSION timescaledb")
        assert failed.value.diag.severity == "FATAL"
        assert conn.broken


def test_probe_says_why_and_leaves_the_connection_usable(unpreloaded_db_url: str) -> None:
    with psycopg.connect(unpreloaded_db_url, autocommit=True) as conn:
        probe = storage_mode.probe_timescaledb(conn, unpreloaded_db_url)
        assert not probe.available
        assert probe.reason is not None and "not preloaded" in probe.reason
        assert "shared_preload_libraries = 'timescaledb'" in probe.reason
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_auto_falls_back_to_plain_with_one_warning_line(
    unpreloaded_db_url: str, tmp_path: Path
) -> None:
    proc = _migrate_cli(unpreloaded_db_url, "auto", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(warnings) == 1, proc.stderr
    assert warnings[0].startswith("warning: PEEBOT_TIMESCALEDB=auto: ")
    assert "not preloaded" in warnings[0]
    assert "shared_preload_libraries = 'timescaledb'" in warnings[0]
    assert "plain mode" in proc.stdout
    with psycopg.connect(unpreloaded_db_url) as conn:
        assert database.current_mode(conn) == "plain"
        assert conn.execute("SELECT max(version) FROM schema_migrations").fetchone() == (
            max(m.version for m in migrations.discover_migrations()),
        )
    again = _migrate_cli(unpreloaded_db_url, "auto", tmp_path)
    assert again.returncode == 0 and again.stderr == "", again.stderr  # chosen once
    assert "nothing to apply" in again.stdout


def test_on_fails_with_one_line(unpreloaded_db_url: str, tmp_path: Path) -> None:
    proc = _migrate_cli(unpreloaded_db_url, "on", tmp_path)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("Error: PEEBOT_TIMESCALEDB=on: ")
    assert "not preloaded" in lines[0] and "shared_preload_libraries" in lines[0]
    with psycopg.connect(unpreloaded_db_url) as conn:
        assert database.current_mode(conn) is None  # nothing applied


def test_auto_uses_a_preloaded_timescaledb(timescale_empty_db_url: str, tmp_path: Path) -> None:
    proc = _migrate_cli(timescale_empty_db_url, "auto", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "timescaledb mode" in proc.stdout
    with psycopg.connect(timescale_empty_db_url) as conn:
        assert conn.execute(
            "SELECT hypertable_name FROM timescaledb_information.hypertables"
        ).fetchall() == [("telemetry_reading",)]


def test_off_stays_plain_on_a_timescaledb_server(timescale_empty_db_url: str) -> None:
    result = migrations.migrate(timescale_empty_db_url, timescale="off")
    assert result.mode == "plain" and result.warnings == []
    with psycopg.connect(timescale_empty_db_url) as conn:
        assert (
            conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
            is None
        )
