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
