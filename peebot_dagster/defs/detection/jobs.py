"""The detection jobs: the watermark pass over ended minutes, the live pass over the newest.

Both post what their urine step left due as soon as it succeeds
(`post_after_detection_hook`, defs/posting/jobs.py), rather than waiting for a posting run to
be launched. Both run in process, as every job of the code location does (its executor, set once in
peebot_dagster/definitions.py): a minute's work is well under a second, and a subprocess
per step costs ~1.5 s here.
"""

from __future__ import annotations

import dagster as dg

from peebot_dagster.defs.detection.assets import DETECTION_GROUP
from peebot_dagster.defs.posting.jobs import post_after_detection_hook
from peebot_dagster.defs.tags import kind

# All detection assets (and their checks) over one partition or one range.
detection_job = dg.define_asset_job(
    name="detection_job",
    selection=dg.AssetSelection.groups(DETECTION_GROUP),
    tags=kind("detection"),
    hooks={post_after_detection_hook},
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
    tags=kind("live"),
    hooks={post_after_detection_hook},
    description="Provisional detection over the newest minutes (the live pass).",
)
