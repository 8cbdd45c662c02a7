"""UTC datetimes: the one rule for times without a zone.

Every time PeeBot handles is UTC: ISS Live TimeStamps, the recordings, the database's
`timestamptz` columns and the times a person types on the command line. So a *naive*
datetime (no tzinfo) is read as UTC, never as the machine's local time, and an aware one is
converted to UTC. Code that must refuse naive input (a CSV row without an offset, a reading
handed to the validator) checks `tzinfo` itself before calling this: it is a validation rule
there, not a conversion.
"""

from __future__ import annotations

from datetime import UTC, datetime


def as_utc(when: datetime) -> datetime:
    """`when` as an aware UTC datetime; a naive `when` is taken to be UTC already."""
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when.astimezone(UTC)


def utc_from_epoch(seconds: float) -> datetime:
    """The aware UTC datetime of seconds since the epoch (a wall-clock `time.time()`)."""
    return datetime.fromtimestamp(seconds, UTC)
