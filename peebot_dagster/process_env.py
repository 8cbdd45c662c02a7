"""Settings that Dagster reads itself, from the environment of each of its processes.

The code location cannot set them (it must not write the environment at import, and by then
the webserver and daemon have read them): whatever starts Dagster's processes sets them,
`peebot up` for its children, the service environment in production (deploy/), the
benchmarks for themselves. Measured by bench/backfill.py, which runs a day's backfill with
and without them in one run (docs/ARCHITECTURE.md, "Backfills").
"""

from __future__ import annotations

DAGSTER_PROCESS_ENV: dict[str, str] = {
    # A range run's materializations written in batches: one INSERT a batch instead of a
    # connection and commit per event.
    "DAGSTER_EVENT_BATCH_SIZE": "1000",
    # One "materialization planned" event per asset for a range run instead of one per
    # partition: a day of four minute-partitioned assets is 5,760 single-row writes, each on
    # a new connection, before the run starts. The price: if such a run fails, Dagster does
    # not mark its partitions failed (they stay missing, the run shows the failure).
    "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true",
}
