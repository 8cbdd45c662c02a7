"""PeeBot's Dagster code location: assembles the modules, defines nothing itself."""

from __future__ import annotations

import os

import dagster as dg

from peebot_dagster import daily, maintenance
from peebot_dagster.assets import DETECTION_ASSETS, telemetry_reading_spec
from peebot_dagster.checks import DETECTION_CHECKS
from peebot_dagster.jobs import detection_job, live_detection_job
from peebot_dagster.partitions import minute_partitions
from peebot_dagster.posting import definitions as posting
from peebot_dagster.resources import database_resource
from peebot_dagster.sensors import live_detection_sensor, telemetry_watermark_sensor

# A range run records one materialization per minute per asset. With batching on, Dagster
# writes a range's materializations in one INSERT instead of one connection + commit each
# (a 1,440-minute backfill of four assets: ~3x faster on PostgreSQL, bench/backfill.py).
# Run workers import this module, so the default reaches them; the environment wins.
os.environ.setdefault("DAGSTER_EVENT_BATCH_SIZE", "1000")

# one Definitions at module scope: Dagster's loaders refuse a module with two
defs = dg.Definitions.merge(
    dg.Definitions(
        assets=[telemetry_reading_spec(minute_partitions), *DETECTION_ASSETS],
        asset_checks=DETECTION_CHECKS,
        jobs=[detection_job, live_detection_job],
        sensors=[telemetry_watermark_sensor, live_detection_sensor],
        resources={"db": database_resource()},
        # steps here are short database calls: a subprocess per step (Dagster's default)
        # costs more than the work, also for ad-hoc materializations from the UI or CLI
        executor=dg.in_process_executor,
    ),
    posting.defs,
    daily.defs,
    maintenance.defs,
)
