"""The reading policy in force (how long raw readings are kept, when TimescaleDB compresses
them) and maintenance: changing the policy, bringing history into telemetry_minute, and the
steps `peebot db maintain` runs. The logic lives in SQL (sql/0005, sql/0006: the jobs and
functions Dagster's db_maintenance_job uses too); this is its Python edge. See
docs/ARCHITECTURE.md, "Reading storage"."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from peebot_ingest.db import DatabaseError, connect, current_mode, one_line, scalar


@dataclass
class ReadingPolicy:
    """Retention and compression in force (sql/0005) and what retention last did."""

    mode: str | None
    retention_days: int  # 0: raw readings are kept forever
    compress_after_days: int  # 0: never compressed (plain storage never compresses)
    raw_kept_from: datetime | None = None  # raw readings before this may be gone
    last_retention_at: datetime | None = None
    last_removed: int | None = None
    removed_unit: str = "readings"  # plain deletes readings, TimescaleDB drops chunks
    held_back: int = 0  # chunks past retention waiting for their minutes to be aggregated
    jobs: list[JobState] = field(default_factory=list)  # TimescaleDB's jobs for the policy

    def describe(self) -> str:
        """One line: the horizons in force."""
        retention = (
            "raw readings kept forever"
            if self.retention_days == 0
            else f"raw readings kept {self.retention_days} days"
        )
        if self.mode != "timescaledb":
            return f"{retention}; no compression (plain storage)"
        compression = (
            "never compressed"
            if self.compress_after_days == 0
            else f"compressed after {self.compress_after_days} days"
        )
        return f"{retention}, {compression}; telemetry_minute kept for good"


@dataclass
class JobState:
    """One TimescaleDB background job, as its scheduler last saw it."""

    job_id: int
    name: str
    schedule: str
    scheduled: bool
    last_status: str | None
    last_run_at: datetime | None
    next_start: datetime | None


_JOBS_SQL = """
SELECT j.job_id, j.application_name, j.schedule_interval::text, j.scheduled,
       s.last_run_status,
       CASE WHEN isfinite(s.last_run_started_at) THEN s.last_run_started_at END,
       CASE WHEN isfinite(s.next_start) THEN s.next_start END
FROM timescaledb_information.jobs j
LEFT JOIN timescaledb_information.job_stats s USING (job_id)
WHERE j.job_id IN (SELECT job_id FROM peebot_maintenance_steps())
ORDER BY j.job_id
"""


def reading_policy(conn: psycopg.Connection[Any]) -> ReadingPolicy | None:
    """The policy in force, or None before migration 0005."""
    try:
        with conn.transaction():
            rows = dict(
                conn.execute(
                    "SELECT key, value FROM peebot_setting WHERE key = ANY(%s)",
                    (["storage_mode", "reading_policy", "reading_retention"],),
                ).fetchall()
            )
    except psycopg.errors.UndefinedTable:
        return None
    policy = rows.get("reading_policy")
    if not policy:
        return None
    retention = rows.get("reading_retention") or {}
    mode = rows.get("storage_mode")
    result = ReadingPolicy(
        mode=str(mode) if mode else None,
        retention_days=int(policy["retention_days"]),
        compress_after_days=int(policy["compress_after_days"]),
        raw_kept_from=_timestamp(retention.get("raw_kept_from")),
        last_retention_at=_timestamp(retention.get("last_run_at")),
        last_removed=retention.get("removed"),
        removed_unit=str(retention.get("removed_unit") or "readings"),
        held_back=int(retention.get("held_back") or 0),
    )
    if result.mode == "timescaledb":
        result.jobs = [JobState(*row) for row in conn.execute(_JOBS_SQL).fetchall()]
    return result


def _timestamp(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def set_reading_policy(
    url: str, *, retention_days: int | None = None, compress_after_days: int | None = None
) -> ReadingPolicy:
    """Change the horizons (None: keep); they apply from the next retention / compression run."""
    with connect(url) as conn:
        if reading_policy(conn) is None:
            raise DatabaseError("the database is not migrated yet: run `peebot db migrate`")
        try:
            conn.execute(
                "SELECT peebot_set_reading_policy(%s, %s)", (retention_days, compress_after_days)
            )
        except psycopg.Error as exc:
            raise DatabaseError(f"could not change the reading policy: {one_line(exc)}") from exc
        conn.commit()
        policy = reading_policy(conn)
    assert policy is not None
    return policy


def refresh_history(url: str) -> int:
    """Bring every chunk of readings the minute aggregate has not seen into telemetry_minute
    (TimescaleDB; a no-op in plain mode, whose telemetry_minute is a view). A refresh cannot
    run inside a transaction block: autocommit, top level. Returns the chunks refreshed."""
    with connect(url, autocommit=True) as conn:
        if current_mode(conn) != "timescaledb":
            return 0
        try:
            conn.execute("CALL peebot_refresh_history()")
        except psycopg.Error as exc:
            raise DatabaseError(f"refreshing telemetry_minute failed: {one_line(exc)}") from exc
        state = scalar(
            conn,
            "SELECT state_data FROM processor_state WHERE processor_name = 'minute_history'",
        )
    return int((state or {}).get("refreshed_chunks", 0))


# --------------------------------------------------------------------------- maintenance


@dataclass
class MaintenanceResult:
    mode: str
    steps_run: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # "step: one-line error"
    policy: ReadingPolicy | None = None


def maintain(url: str) -> MaintenanceResult:
    """Run what `peebot_maintenance_steps()` lists, each statement at top level in autocommit
    (TimescaleDB: the jobs of its policies and PeeBot's, `CALL run_job(id)`, which fails
    inside a procedure; plain: retention), then record the run. A failing step is reported
    and the others still run: retention holds back whatever is not yet aggregated."""
    with connect(url, autocommit=True) as conn:
        try:
            steps = conn.execute(
                "SELECT step, statement FROM peebot_maintenance_steps()"
            ).fetchall()
        except psycopg.errors.UndefinedFunction as exc:
            raise DatabaseError(
                "the database is not migrated yet: run `peebot db migrate`"
            ) from exc
        ran: list[str] = []
        failures: list[str] = []
        for step, statement in steps:
            try:
                conn.execute(statement)
            except psycopg.Error as exc:
                failures.append(f"{step}: {one_line(exc)}")
                continue
            ran.append(step)
        report = scalar(
            conn,
            "SELECT peebot_maintenance_report(%s)",
            (Jsonb({"ran": ran, "failed": failures}),),
        )
        policy = reading_policy(conn)
    return MaintenanceResult(
        mode=str(report["mode"]), steps_run=ran, failures=failures, policy=policy
    )
