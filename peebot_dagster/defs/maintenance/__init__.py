"""The maintenance domain: Dagster's old runs and PeeBot's old readings, hourly."""

import dagster as dg

from peebot_dagster.defs.maintenance.jobs import db_maintenance_job, instance_cleanup_job
from peebot_dagster.defs.maintenance.schedules import (
    db_maintenance_schedule,
    instance_cleanup_schedule,
)

defs = dg.Definitions(
    jobs=[instance_cleanup_job, db_maintenance_job],
    schedules=[instance_cleanup_schedule, db_maintenance_schedule],
)
