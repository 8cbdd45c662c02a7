"""The maintenance jobs: old Dagster runs deleted, PeeBot's readings kept in bounds.

OSS Dagster keeps runs and their event logs for ever (only ticks have a retention setting in
dagster.yaml), and PeeBot's own readings need retention (or TimescaleDB's jobs run by hand,
where its background scheduler does not work). Two jobs (scheduled in schedules.py) do both.
"""

# No `from __future__ import annotations`: Dagster reads the ops' annotations at runtime.

from datetime import UTC, datetime, timedelta

import dagster as dg

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
    """Retention / compression / aggregate refresh: the `peebot_maintain` procedure (sql/0003),
    the same one `peebot db maintain` calls."""
    days = get_settings().retention_days
    with db.connect(autocommit=True) as conn:
        row = conn.execute("CALL peebot_maintain(%s, NULL)", (days,)).fetchone()
    result = dict(row[0]) if row else {}
    context.log.info(f"database maintenance: {result}")
    context.add_output_metadata(
        {"mode": str(result.get("mode")), "deleted_readings": int(result.get("deleted", 0))}
    )
    return result


@dg.job(tags=kind("maintenance"))
def instance_cleanup_job() -> None:
    delete_old_runs()


@dg.job(tags=kind("maintenance"))
def db_maintenance_job() -> None:
    maintain_database()
