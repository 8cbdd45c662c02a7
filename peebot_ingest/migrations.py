"""Migrations: the numbered files in `sql/` (one file, or a `.plain` / `.timescaledb` pair),
applied once each, in order, under an advisory lock; the storage mode chosen at the first
(`storage_mode.py`); the catalogue seed. docs/ARCHITECTURE.md, "Schema contract"."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from peebot_ingest.db import DatabaseError, connect, current_mode, scalar
from peebot_ingest.settings import get_settings
from peebot_ingest.storage_mode import (
    TimescaleProbe,
    decide_storage_mode,
    fallback_warning,
    probe_timescaledb,
)
from peebot_iss.catalog import load_catalog

_MIGRATION_FILE = re.compile(
    r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+?)(?:\.(?P<mode>plain|timescaledb))?\.sql$"
)
_LOCK_ID = 0x7065_6562  # pg_advisory_xact_lock key for migrations ("peeb")


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
