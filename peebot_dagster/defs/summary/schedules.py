"""The daily summary of yesterday (UTC), shortly after midnight."""

from __future__ import annotations

import dagster as dg

from peebot_dagster.defs.summary.jobs import daily_summary_job

daily_summary_schedule = dg.build_schedule_from_partitioned_job(
    daily_summary_job,
    hour_of_day=0,
    minute_of_hour=20,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
