"""Jobs: one per thing that needs one."""

from __future__ import annotations

import dagster as dg

from peebot_dagster.assets.detection import DETECTION_GROUP

# All detection assets (and their checks) over one partition or one range. In-process: a
# minute's work is well under a second, and a subprocess per step costs ~1.5 s here.
detection_job = dg.define_asset_job(
    name="detection_job",
    selection=dg.AssetSelection.groups(DETECTION_GROUP),
    executor_def=dg.in_process_executor,
    tags={"peebot/kind": "detection"},
    description="Detect events in minute windows of telemetry_reading (all processors).",
)


# The live pass: the urine tank's newest minutes, re-run every few seconds with whatever data
# has arrived (the watermark pass re-runs them later with the full look-ahead). Only the
# urine tank posts, so only it needs the low latency.
LIVE_ASSETS = ("urine_tank_events",)

live_detection_job = dg.define_asset_job(
    name="live_detection_job",
    # checks run with the watermark pass; the live pass only detects
    selection=dg.AssetSelection.assets(*LIVE_ASSETS).without_checks(),
    executor_def=dg.in_process_executor,
    tags={"peebot/kind": "live"},
    description="Provisional detection over the newest minutes (the live pass).",
)
