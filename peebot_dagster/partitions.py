"""Minute partitions (UTC, `%Y-%m-%d-%H:%M`) and the time arithmetic around them.

Dagster recommends at most 100,000 partitions an asset (69 days of minutes), so the start is
recent and configurable: `PEEBOT_PARTITIONS_START` (`YYYY-MM-DD` or `YYYY-MM-DD-HH:MM`, UTC),
default `PEEBOT_PARTITIONS_DAYS` (14) days before today.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import dagster as dg

MINUTE_FMT = "%Y-%m-%d-%H:%M"
MINUTE = timedelta(minutes=1)
DEFAULT_PARTITION_DAYS = 14
# ~69 days of minutes: Dagster's recommended ceiling for one asset
MAX_PARTITIONS = 100_000

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
PARTITION_TAG = "dagster/partition"


class PartitionConfigError(ValueError):
    """A partition setting that cannot be used (said in one line)."""


def parse_start(text: str) -> datetime:
    """`YYYY-MM-DD` or `YYYY-MM-DD-HH:MM` (UTC) to an aware datetime on a minute."""
    text = text.strip()
    for fmt in (MINUTE_FMT, "%Y-%m-%d"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise PartitionConfigError(
        f"PEEBOT_PARTITIONS_START must be YYYY-MM-DD or YYYY-MM-DD-HH:MM (UTC), not {text!r}"
    )


def partitions_start(
    now: datetime | None = None, environ: dict[str, str] | None = None
) -> datetime:
    """The first minute partition, from the environment (see the module doc)."""
    env = os.environ if environ is None else environ
    now = now or datetime.now(UTC)
    text = env.get("PEEBOT_PARTITIONS_START", "").strip()
    if text:
        start = parse_start(text)
    else:
        days_text = env.get("PEEBOT_PARTITIONS_DAYS", str(DEFAULT_PARTITION_DAYS)).strip()
        try:
            days = int(days_text)
        except ValueError as exc:
            raise PartitionConfigError(
                f"PEEBOT_PARTITIONS_DAYS must be a whole number, not {days_text!r}"
            ) from exc
        if days < 1:
            raise PartitionConfigError("PEEBOT_PARTITIONS_DAYS must be at least 1")
        today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        start = today - timedelta(days=days)
    if start > now:
        raise PartitionConfigError(
            f"PEEBOT_PARTITIONS_START {start:%Y-%m-%d %H:%M} is in the future"
        )
    return start


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


def floor_minute(when: datetime) -> datetime:
    when = when.astimezone(UTC)
    return when.replace(second=0, microsecond=0)


def partition_key(when: datetime) -> str:
    """The key of the minute `when` falls in."""
    return floor_minute(when).strftime(MINUTE_FMT)


def key_start(key: str) -> datetime:
    """The start of a minute partition key."""
    try:
        return datetime.strptime(key, MINUTE_FMT).replace(tzinfo=UTC)
    except ValueError as exc:
        raise PartitionConfigError(f"not a minute partition key: {key!r}") from exc


def range_run_key(first: str, last: str) -> str:
    """The run key of a range run (Dagster's own `start...end` notation)."""
    return first if first == last else f"{first}...{last}"


def range_tags(first: str, last: str) -> dict[str, str]:
    return {RANGE_START_TAG: first, RANGE_END_TAG: last}


minute_partitions = minute_partitions_def(partitions_start())
