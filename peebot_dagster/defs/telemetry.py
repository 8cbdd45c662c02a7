"""`telemetry_reading`: written by the ingest daemon, never materialized by Dagster.

An external asset gives the detection and summary assets lineage (and the detection assets
a partition mapping to declare their look-back/look-ahead) without Dagster paying two event
rows per minute for it. It shares the detection assets' minute partitions, so the detection
domain puts it in the code location (defs/detection/__init__.py).
"""

from __future__ import annotations

import dagster as dg

TELEMETRY_READING_KEY = dg.AssetKey("telemetry_reading")


def telemetry_reading_spec(partitions_def: dg.PartitionsDefinition) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=TELEMETRY_READING_KEY,
        partitions_def=partitions_def,
        group_name="telemetry",
        kinds={"postgres"},
        description=(
            "Every ISS Live update, exactly once (table telemetry_reading), written by the "
            "peebot ingest daemon. External: Dagster reads it, never materializes it."
        ),
        metadata={"table": "telemetry_reading", "writer": "peebot ingest"},
    )
