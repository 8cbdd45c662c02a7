"""Plain PostgreSQL or TimescaleDB: what the server can do, and what `PEEBOT_TIMESCALEDB`
(auto | on | off) makes of it. Decided once, at a database's first migration
(`migrations.migrate`); docs/ARCHITECTURE.md, "Reading storage"."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import psycopg

from peebot_ingest.db import DatabaseError, one_line, scalar

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
