"""PeeBot's Dagster code location: assembles the domains in defs/, defines nothing itself.

Dagster's `DAGSTER_EVENT_BATCH_SIZE` (range runs write their materializations in batches) is
an environment variable of the Dagster processes, so the process that starts them sets it
(`peebot up`); importing this module changes no environment.
"""

from __future__ import annotations

import dagster as dg

from peebot_dagster.defs import detection, maintenance, posting, summary
from peebot_dagster.resources import database_resource

# one Definitions at module scope: Dagster's loaders refuse a module with two
defs = dg.Definitions.merge(
    detection.defs,
    posting.defs,
    summary.defs,
    maintenance.defs,
    dg.Definitions(
        resources={"db": database_resource()},
        # Every job runs in process: steps here are short database calls, and a subprocess
        # per step (Dagster's default) costs more than the work, also for ad-hoc
        # materializations from the UI or CLI.
        executor=dg.in_process_executor,
    ),
)
