"""Minute partitions as plain time arithmetic: keys (UTC, `%Y-%m-%d-%H:%M`) and where they start.

Dagster recommends at most 100,000 partitions an asset (69 days of minutes), so the start is
recent and configurable: `PEEBOT_PARTITIONS_START` (settings.py), else `PEEBOT_PARTITIONS_DAYS`
(14) days before today. The Dagster partitions definition built from it is in
defs/detection/partitions.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

MINUTE_FMT = "%Y-%m-%d-%H:%M"
MINUTE = timedelta(minutes=1)
DEFAULT_PARTITION_DAYS = 14
# ~69 days of minutes: Dagster's recommended ceiling for one asset
MAX_PARTITIONS = 100_000


class PartitionConfigError(ValueError):
    """A partition start or key that cannot be used (said in one line)."""


def partitions_start(
    now: datetime, start: datetime | None = None, days: int = DEFAULT_PARTITION_DAYS
) -> datetime:
    """The first minute partition: `start` when given, else `days` before today (UTC)."""
    if start is None:
        today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        start = today - timedelta(days=days)
    if start > now:
        raise PartitionConfigError(
            f"PEEBOT_PARTITIONS_START {start:%Y-%m-%d %H:%M} is in the future"
        )
    return start


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
