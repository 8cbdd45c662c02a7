"""The summary domain: `daily_summary` per UTC day, its job and schedule."""

import dagster as dg

from peebot_dagster.defs.summary.assets import daily_summary
from peebot_dagster.defs.summary.jobs import daily_summary_job
from peebot_dagster.defs.summary.schedules import daily_summary_schedule

defs = dg.Definitions(
    assets=[daily_summary], jobs=[daily_summary_job], schedules=[daily_summary_schedule]
)
