"""PeeBot's Dagster code location: assembles the modules, defines nothing itself."""

from __future__ import annotations

import dagster as dg

from peebot_dagster import daily, maintenance
from peebot_dagster.assets import DETECTION_ASSETS, telemetry_reading_spec
from peebot_dagster.checks import DETECTION_CHECKS
from peebot_dagster.jobs import detection_job
from peebot_dagster.partitions import minute_partitions
from peebot_dagster.resources import database_resource
from peebot_dagster.sensors import telemetry_watermark_sensor

detection_defs = dg.Definitions(
    assets=[telemetry_reading_spec(minute_partitions), *DETECTION_ASSETS],
    asset_checks=DETECTION_CHECKS,
    jobs=[detection_job],
    sensors=[telemetry_watermark_sensor],
    resources={"db": database_resource()},
)

defs = dg.Definitions.merge(detection_defs, daily.defs, maintenance.defs)
