"""The maintenance jobs: old Dagster runs deleted, PeeBot's readings kept in bounds.

OSS Dagster keeps runs and their event logs for ever (only ticks have a retention setting in
dagster.yaml), and PeeBot's own readings need retention, compression and their minute aggregate
(plain storage has no scheduler; TimescaleDB's does not work on every build). Two jobs
(scheduled in schedules.py) do both.
"""

# No `from __future__ import annotations`: Dagster reads the ops' annotations at runtime.

from datetime import UTC, datetime, timedelta

import dagster as dg
import psycopg
from psycopg.types.json import Jsonb

from peebot_dagster.defs.tags import kind
from peebot_dagster.resources import PostgresResource
from peebot_dagster.settings import get_settings

# Deleting a run with thousands of events takes a while; bound one pass.
MAX_RUNS_PER_PASS = 2000


def delete_runs_before(instance: dg.DagsterInstance, cutoff: datetime, limit: int) -> int:
    """Delete finished runs created before `cutoff` (with their event logs); returns how many."""
    finished = [
        dg.DagsterRunStatus.SUCCESS,
        dg.DagsterRunStatus.FAILURE,
        dg.DagsterRunStatus.CANCELED,
    ]
    records = instance.get_run_records(
        filters=dg.RunsFilter(created_before=cutoff, statuses=finished),
        limit=limit,
        ascending=True,
    )
    for record in records:
        instance.delete_run(record.dagster_run.run_id)
    return len(records)


@dg.op
def delete_old_runs(context: dg.OpExecutionContext) -> int:
    days = get_settings().dagster_run_retention_days
    cutoff = datetime.now(UTC) - timedelta(days=days)
    deleted = delete_runs_before(context.instance, cutoff, MAX_RUNS_PER_PASS)
    context.log.info(
        f"deleted {deleted} runs created before {cutoff:%Y-%m-%d %H:%M} UTC ({days} days)"
    )
    context.add_output_metadata({"deleted_runs": deleted, "retention_days": days})
    return deleted


@dg.op
def maintain_database(context: dg.OpExecutionContext, db: PostgresResource) -> dict[str, object]:
    """Aggregate refresh, compression and retention: each statement `peebot_maintenance_steps()`
    (sql/0005) lists, run at top level in autocommit as `peebot db maintain` runs them
    (TimescaleDB's `CALL run_job` fails inside a procedure). A failing step fails the op after
    the others ran."""
    ran: list[str] = []
    failed: list[str] = []
    with db.connect(autocommit=True) as conn:
        steps = conn.execute("SELECT step, statement FROM peebot_maintenance_steps()").fetchall()
        for step, statement in steps:
            try:
                conn.execute(statement)
            except psycopg.Error as exc:
                failed.append(f"{step}: {exc.diag.message_primary or exc}")
                continue
            ran.append(step)
        row = conn.execute(
            "SELECT peebot_maintenance_report(%s)", (Jsonb({"ran": ran, "failed": failed}),)
        ).fetchone()
    result = dict(row[0]) if row else {}
    retention = result.get("retention") or {}
    context.log.info(f"database maintenance: ran {ran}; retention {retention}")
    context.add_output_metadata(
        {
            "mode": str(result.get("mode")),
            "steps": ", ".join(ran),
            "removed": int(retention.get("removed") or 0),
            "removed_unit": str(retention.get("removed_unit") or ""),
            "held_back_chunks": int(retention.get("held_back") or 0),
        }
    )
    if failed:
        raise dg.Failure(f"{len(failed)} maintenance step(s) failed: " + "; ".join(failed))
    return result


@dg.job(tags=kind("maintenance"))
def instance_cleanup_job() -> None:
    delete_old_runs()


@dg.job(tags=kind("maintenance"))
def db_maintenance_job() -> None:
    maintain_database()
