"""Which year a TimeStamp belongs to, and its UTC time in that year.

An ISS Live TimeStamp is hours since the start of the year, and the year is not in it:
`TIME_000002` announces it, the clock stands in until then, and New Year has to be judged
against the newest time seen (docs/ARCHITECTURE.md, "Ingest"). Pure logic and a small state
holder; no I/O.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache

from peebot_ingest.records import micros_since_epoch
from peebot_iss.catalog import YEAR_ITEM
from peebot_iss.timestamps import ROLLOVER_HOURS, days_in_year, encode_timestamp, infer_year
from peebot_iss.utc import utc_from_epoch

MIN_YEAR, MAX_YEAR = 1998, 2200  # plausible years (the ISS was launched in 1998)


@lru_cache(maxsize=64)
def year_start(year: int) -> datetime:
    return datetime(year, 1, 1, tzinfo=UTC)


@lru_cache(maxsize=64)
def year_start_us(year: int) -> int:
    """Microseconds since the epoch at the start of `year`."""
    return micros_since_epoch(year_start(year))


_YEARS: dict[int, tuple[datetime, float]] = {}  # year -> (its start, first TimeStamp past it)


def decode_hours(hours: float, year: int) -> datetime | None:
    """`timestamps.decode_timestamp` on an already parsed float (same arithmetic, same
    result); None when the TimeStamp is outside the year."""
    info = _YEARS.get(year)
    if info is None:
        info = _YEARS[year] = (year_start(year), (days_in_year(year) + 1) * 24.0)
    if not 24.0 <= hours < info[1]:
        return None
    return info[0] + timedelta(hours=hours - 24.0)


class YearTracker:
    """Which year a TimeStamp belongs to.

    The year from `TIME_000002` when it has been seen, else the clock; New Year rollover via
    `timestamps.infer_year` against the newest decoded feed time (31 Dec readings seen after
    midnight stay in the old year, 1 Jan readings seen before `TIME_000002` turns go to the
    new one). The reference is refreshed when the newest time moves by a minute or more,
    which only matters for TimeStamps ~300 days away from it."""

    _REFRESH = timedelta(seconds=60)

    def __init__(self, feed_year: int | None = None) -> None:
        self.feed_year = feed_year
        self.newest: datetime | None = None
        self._ref: tuple[datetime, float] | None = None  # the reference and its TimeStamp
        self._ref_until = datetime(1, 1, 1, tzinfo=UTC)  # refresh the reference from here

    def reference(self, now: float) -> datetime:
        if self.feed_year is not None:
            start = year_start(self.feed_year)
            newest = self.newest
            if newest is not None and (
                start - timedelta(days=2)
                <= newest
                < year_start(self.feed_year + 1) + timedelta(days=2)
            ):
                return newest
            return start + timedelta(days=182)
        if self.newest is not None:
            return self.newest
        return utc_from_epoch(now)

    def year_for(self, hours: float, now: float) -> int:
        ref = self._ref or self.settled_reference()
        if ref is None:
            when = self.reference(now)  # the clock, read afresh until the feed says something
            ref = (when, encode_timestamp(when))
        when, ref_hours = ref
        if -ROLLOVER_HOURS <= hours - ref_hours <= ROLLOVER_HOURS:
            return when.year  # the hot path: what infer_year returns when nothing wrapped
        return infer_year(hours, when)  # New Year: 31 Dec <-> 1 Jan

    def settled_reference(self) -> tuple[datetime, float] | None:
        """The cached reference and its TimeStamp, computed if needed; None while only the
        clock can tell (nothing seen from the feed yet)."""
        if self._ref is None and (self.feed_year is not None or self.newest is not None):
            when = self.reference(0.0)
            self._ref = (when, encode_timestamp(when))
        return self._ref

    @property
    def reference_until(self) -> datetime:
        """The newest time at which the settled reference is recomputed: a reading this new
        is the last one the current reference decides."""
        return self._ref_until

    def observe(self, item_id: str, ts: datetime, value: float) -> None:
        newest = self.newest
        if newest is None or ts > newest:
            self.newest = ts
            if ts >= self._ref_until:
                self._ref_until = ts + self._REFRESH
                self._ref = None
        if item_id == YEAR_ITEM:
            self.learn_year(value)

    def announces_new_year(self, value: float) -> bool:
        """Whether a `TIME_000002` Value would change the year this tracker goes by."""
        return value.is_integer() and MIN_YEAR <= value <= MAX_YEAR and self.feed_year != int(value)

    def learn_year(self, value: float | None) -> None:
        if value is not None and self.announces_new_year(value):
            self.feed_year = int(value)
            self._ref = None
