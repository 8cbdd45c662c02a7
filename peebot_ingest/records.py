"""What the ingest daemon writes: one record type per table it fills, and the dedupe key.

`ValidatedReading` becomes a `telemetry_reading` row, `Rejection` a `rejected_update` row,
`FeedTransition` a `feed_status` row (docs/ARCHITECTURE.md, "Schema contract"). The writer,
the journal and the feed state all speak these types and nothing else, so none of them
needs another: plain data, no I/O.

The dedupe key `event_id` is UUIDv5 of (item, decoded UTC time in microseconds, value). The
value is taken in canonical form (the shortest `repr` of its float), so the same reading
from the feed (`"44"`), an export (`44.0`) or an inject gives the same key, and a snapshot
re-send, a replayed file or a repeated inject is a no-op in the database.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from hashlib import sha1
from typing import Any, NamedTuple
from uuid import UUID

EVENT_NAMESPACE = UUID("6f0c3a52-3c1e-5b7e-9a55-1ee7b07fee00")
EVENT_NAMESPACE_BYTES = EVENT_NAMESPACE.bytes
_NAMESPACE_HASH = sha1(EVENT_NAMESPACE_BYTES)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MICROSECOND = timedelta(microseconds=1)


class ValidatedReading(NamedTuple):
    """A reading that passed validation, enriched (one future `telemetry_reading` row).

    A tuple, not a dataclass: the writer's hot loop unpacks millions of them. Its time is
    kept as an integer (`ts_us`), the form the binary COPY sends; `ts` gives the datetime."""

    item_id: str
    ts_us: int  # the decoded ISS TimeStamp: microseconds since 1970-01-01 UTC
    value: float
    status_class: int | None
    calibrated_data: str | None
    event_id: bytes  # 16 bytes, UUIDv5 (`event_id`)
    received_at: float  # wall clock (epoch seconds) when it reached us
    metadata: str | None  # JSON text for the jsonb column
    source: str  # feed | replay | inject

    @property
    def ts(self) -> datetime:
        """The decoded ISS TimeStamp (UTC)."""
        return utc_from_micros(self.ts_us)

    @property
    def event_uuid(self) -> UUID:
        return UUID(bytes=self.event_id)


class Rejection(NamedTuple):
    """An update that failed validation (one future `rejected_update` row)."""

    source: str
    item_id: str | None
    reason: str
    raw_payload: dict[str, Any]
    received_at: float


class FeedTransition(NamedTuple):
    """A row of `feed_status`: a connection status change or a signal transition."""

    kind: str  # connection | signal
    state: str
    changed_at: float  # wall clock, epoch seconds
    feed_ts: datetime | None
    detail: dict[str, Any]


# What the writer takes, in arrival order.
Entry = ValidatedReading | Rejection | FeedTransition


def micros_since_epoch(ts: datetime) -> int:
    """`ts` (aware) as microseconds since 1970-01-01 UTC, exactly."""
    return (ts - EPOCH) // ONE_MICROSECOND


def utc_from_micros(micros: int) -> datetime:
    """The aware UTC datetime of microseconds since 1970-01-01 UTC, exactly."""
    return EPOCH + timedelta(microseconds=micros)


def event_id(item_id: str, ts: datetime, value: float) -> bytes:
    """UUIDv5(EVENT_NAMESPACE, "<item>|<µs since epoch>|<repr(value)>") as 16 bytes."""
    return event_id_at(item_id, micros_since_epoch(ts), value)


def event_id_at(item_id: str, micros: int, value: float) -> bytes:
    """`event_id` of a time in microseconds since the epoch. Same bytes as `uuid.uuid5(...)`,
    computed without building UUID objects (hot path)."""
    h = _NAMESPACE_HASH.copy()  # cheaper than a new hash of the namespace and the name
    h.update(f"{item_id}|{micros}|{value!r}".encode())
    digest = bytearray(h.digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    return bytes(digest)
