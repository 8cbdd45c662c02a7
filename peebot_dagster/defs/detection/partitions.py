"""The minute partitions of `telemetry_reading` and the detection assets, as deployed.

The start comes from the settings (`PEEBOT_PARTITIONS_START` / `PEEBOT_PARTITIONS_DAYS`,
see peebot_dagster/partitions.py for the arithmetic).
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from peebot_dagster.partitions import MINUTE_FMT, partitions_start
from peebot_dagster.settings import get_settings


def minute_partitions_def(start: datetime) -> dg.TimeWindowPartitionsDefinition:
    # end_offset=1: the minute in progress is a partition too, so the live pass
    # (sensors.live_detection_sensor) can detect a use seconds after it happens instead of
    # waiting for its minute to end; the watermark pass still runs only ended minutes.
    return dg.TimeWindowPartitionsDefinition(
        cron_schedule="* * * * *",
        start=start.astimezone(UTC).strftime(MINUTE_FMT),
        fmt=MINUTE_FMT,
        timezone="UTC",
        end_offset=1,
    )


def deployed_start(now: datetime | None = None) -> datetime:
    """The first minute partition the settings ask for."""
    settings = get_settings()
    return partitions_start(
        now or datetime.now(UTC), settings.partitions_start, settings.partitions_days
    )


minute_partitions = minute_partitions_def(deployed_start())
