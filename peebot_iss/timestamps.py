"""ISS Live `TimeStamp` <-> UTC.

TimeStamp = (1-based day of year) * 24 + UTC hour as a decimal, so 1 Jan 00:00 UTC is 24.0
and UTC = Jan 1 of the year + (TimeStamp - 24) hours. The year is not in the value.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from peebot_iss.utc import as_utc

# A TimeStamp this far below the previous one means the day-of-year counter wrapped.
ROLLOVER_HOURS = 24.0 * 300


class TimeStampError(ValueError):
    """The TimeStamp field cannot be a valid ISS time."""


def days_in_year(year: int) -> int:
    return 366 if (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)) else 365


def parse_timestamp(raw: str | float) -> float:
    """The TimeStamp as hours; raises TimeStampError with the reason."""
    try:
        hours = float(raw)
    except (TypeError, ValueError):
        raise TimeStampError(f"TimeStamp {raw!r} is not a number") from None
    if not math.isfinite(hours):
        raise TimeStampError(f"TimeStamp {raw!r} is not finite")
    return hours


def decode_timestamp(raw: str | float, year: int) -> datetime:
    """UTC time of a TimeStamp in a known year; raises TimeStampError if out of the year."""
    hours = parse_timestamp(raw)
    upper = (days_in_year(year) + 1) * 24.0
    if not 24.0 <= hours < upper:
        raise TimeStampError(f"TimeStamp {raw!r} is outside day 1..{days_in_year(year)} of {year}")
    return datetime(year, 1, 1, tzinfo=UTC) + timedelta(hours=hours - 24.0)


def encode_timestamp(when: datetime) -> float:
    """The ISS TimeStamp (hours) of a UTC time (naive: UTC, see `utc.as_utc`)."""
    when = as_utc(when)
    start = datetime(when.year, 1, 1, tzinfo=UTC)
    return 24.0 + (when - start).total_seconds() / 3600.0


def format_timestamp(when: datetime) -> str:
    """TimeStamp as the feed sends it (decimal hours, ~0.4 ms resolution)."""
    return f"{encode_timestamp(when):.7f}"


def infer_year(hours: float, reference: datetime) -> int:
    """The year a TimeStamp belongs to, given a nearby reference time (the clock or the last
    decoded reading). Handles New Year: 31 Dec readings seen just after midnight belong to the
    old year, and 1 Jan readings seen just before it to the new one."""
    reference = as_utc(reference)
    ref_hours = encode_timestamp(reference)
    year = reference.year
    if hours - ref_hours > ROLLOVER_HOURS:
        return year - 1
    if ref_hours - hours > ROLLOVER_HOURS:
        return year + 1
    return year
