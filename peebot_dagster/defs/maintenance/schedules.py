"""When the maintenance jobs run: hourly, the database at :07 and the run cleanup at :17."""

from __future__ import annotations

import dagster as dg

from peebot_dagster.defs.maintenance.jobs import db_maintenance_job, instance_cleanup_job

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
