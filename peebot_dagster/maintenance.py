"""Instance hygiene for a system that runs a detection every minute, forever.

OSS Dagster keeps runs and their event logs for ever (only ticks have a retention setting in
dagster.yaml), and PeeBot's own readings need retention (or TimescaleDB's jobs run by hand,
where its background scheduler does not work). Two scheduled jobs do both.
"""

import os
from datetime import UTC, datetime, timedelta

import dagster as dg

from peebot_dagster.resources import PostgresResource

# Deleting a run with thousands of events takes a while; bound one pass.
MAX_RUNS_PER_PASS = 2000


def run_retention_days() -> int:
    return int(os.environ.get("PEEBOT_DAGSTER_RUN_RETENTION_DAYS", "7"))


def reading_retention_days() -> int:
    return int(os.environ.get("PEEBOT_RETENTION_DAYS", "30"))


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
    days = run_retention_days()
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
    days = reading_retention_days()
    with db.connect(autocommit=True) as conn:
        row = conn.execute("CALL peebot_maintain(%s, NULL)", (days,)).fetchone()
    result = dict(row[0]) if row else {}
    context.log.info(f"database maintenance: {result}")
    context.add_output_metadata(
        {"mode": str(result.get("mode")), "deleted_readings": int(result.get("deleted", 0))}
    )
    return result


@dg.job(tags={"peebot/kind": "maintenance"})
def instance_cleanup_job() -> None:
    delete_old_runs()


@dg.job(tags={"peebot/kind": "maintenance"})
def db_maintenance_job() -> None:
    maintain_database()


instance_cleanup_schedule = dg.ScheduleDefinition(
    name="instance_cleanup_schedule",
    job=instance_cleanup_job,
    cron_schedule="17 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

db_maintenance_schedule = dg.ScheduleDefinition(
    name="db_maintenance_schedule",
    job=db_maintenance_job,
    cron_schedule="7 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

defs = dg.Definitions(
    jobs=[instance_cleanup_job, db_maintenance_job],
    schedules=[instance_cleanup_schedule, db_maintenance_schedule],
)
