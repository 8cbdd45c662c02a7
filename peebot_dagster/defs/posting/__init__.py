"""The posting domain: `post_events_job` and the sensor that launches it when posts are due.

Needs the `db` resource (PostgresResource), which the code location provides.
"""

import dagster as dg

from peebot_dagster.defs.posting.jobs import post_events_job
from peebot_dagster.defs.posting.sensors import posting_sensor

defs = dg.Definitions(jobs=[post_events_job], sensors=[posting_sensor])
