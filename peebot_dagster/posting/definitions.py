"""Posting's part of the code location (merged by peebot_dagster/definitions.py).

Needs the `db` resource (PostgresResource), which the code location provides.
"""

from __future__ import annotations

import dagster as dg

from peebot_dagster.posting.job import post_events_job
from peebot_dagster.posting.sensor import posting_sensor

defs = dg.Definitions(jobs=[post_events_job], sensors=[posting_sensor])
