"""The detection domain: `telemetry_reading` (external) and one minute-partitioned asset per
processor, their checks, the watermark and live passes (jobs and sensors)."""

import dagster as dg

from peebot_dagster.defs.detection.assets import DETECTION_ASSETS
from peebot_dagster.defs.detection.checks import DETECTION_CHECKS
from peebot_dagster.defs.detection.jobs import detection_job, live_detection_job
from peebot_dagster.defs.detection.partitions import minute_partitions
from peebot_dagster.defs.detection.sensors import (
    live_detection_sensor,
    telemetry_watermark_sensor,
)
from peebot_dagster.defs.telemetry import telemetry_reading_spec

defs = dg.Definitions(
    assets=[telemetry_reading_spec(minute_partitions), *DETECTION_ASSETS],
    asset_checks=DETECTION_CHECKS,
    jobs=[detection_job, live_detection_job],
    sensors=[telemetry_watermark_sensor, live_detection_sensor],
)
