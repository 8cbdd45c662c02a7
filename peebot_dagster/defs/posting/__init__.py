"""The posting domain: `post_events_job` and the sensors that launch it when posts are due
(a poll of the outbox, and right after each detection run that left posts due).

Needs the `db` resource (PostgresResource), which the code location provides.
"""

import dagster as dg

from peebot_dagster.defs.posting.jobs import post_events_job
from peebot_dagster.defs.posting.sensors import post_after_detection_sensor, posting_sensor

defs = dg.Definitions(jobs=[post_events_job], sensors=[posting_sensor, post_after_detection_sensor])
