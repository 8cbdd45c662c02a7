"""Validation and enrichment of one feed update, or of one already decoded reading.

An update is whatever the Lightstreamer listener saw: an item name and a mapping of the six
ISS Live fields (`fields`). It becomes either a `ValidatedReading` (ready for the writer) or a
`Rejection` (raw payload + reason, for `rejected_update`); nothing here raises on bad input
(docs/ARCHITECTURE.md, "Ingest"). `Validator.updates` takes many feed updates at once and
hands their clean stretches to `batch_validate`, which gives the same results column-wise.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from peebot_ingest.batch_validate import FeedUpdate, validate_updates
from peebot_ingest.fields import (
    ITEM_ID,
    json_text,
    optional_text,
    parse_number,
    parse_status_class,
    short_repr,
)
from peebot_ingest.records import (
    EPOCH,
    Rejection,
    ValidatedReading,
    event_id_at,
    micros_since_epoch,
)
from peebot_ingest.storable import MAX_TEXT, clean_text, json_safe, raw_payload
from peebot_ingest.years import MAX_YEAR, MIN_YEAR, YearTracker, decode_hours
from peebot_iss.catalog import YEAR_ITEM


class Validator:
    """Turns raw updates (feed) or decoded readings (replay, inject) into
    `ValidatedReading`s or `Rejection`s. Holds the year state and the item ids already
    checked; everything else is pure.

    `clock_check`: reject readings more than `max_future_seconds` ahead of the wall clock.
    Turn it off for simulated feeds that run faster than real time."""

    def __init__(
        self,
        *,
        source: str = "feed",
        clock_check: bool = True,
        max_future_seconds: float = 86400.0,
        years: YearTracker | None = None,
    ) -> None:
        self.source = source
        self.clock_check = clock_check
        self.max_future_seconds = max_future_seconds
        self.years = years or YearTracker()
        self.column_wise = 0  # updates `updates` validated column-wise (the rest one by one)
        self.known_items: set[str] = set()  # item ids already found well-formed (bounded)

    # -- feed updates ---------------------------------------------------------------------

    def update(
        self,
        item: Any,
        fields: Any,
        received_at: float | None = None,
        snapshot: bool = False,
    ) -> ValidatedReading | Rejection:
        """Validate one feed update. Never raises."""
        now = time.time() if received_at is None else received_at
        try:
            return self._update(item, fields, now, snapshot)
        except Exception as exc:  # a bug must not lose the update: record it
            return self.reject(item, fields, now, f"internal error: {type(exc).__name__}: {exc}")

    def reject(self, item: Any, fields: Any, now: float, reason: str) -> Rejection:
        """What the feed sent, as a rejection from this validator's source."""
        item_id = clean_text(item)[:64] if isinstance(item, str) else None
        return Rejection(self.source, item_id, reason, raw_payload(item, fields), now)

    def _update(
        self, item: Any, fields: Any, now: float, snapshot: bool
    ) -> ValidatedReading | Rejection:
        if item not in self.known_items:
            if not isinstance(item, str) or not ITEM_ID.fullmatch(item):
                return self.reject(
                    item, fields, now, f"item name {short_repr(item)} is not an item id"
                )
            if len(self.known_items) < 10_000:
                self.known_items.add(item)
        if type(fields) is not dict and not isinstance(fields, Mapping):
            return self.reject(item, fields, now, "fields are not a mapping")
        raw_ts = fields.get("TimeStamp")
        hours = parse_number(raw_ts)
        if hours is None:
            return self.reject(item, fields, now, f"TimeStamp {short_repr(raw_ts)} is not a number")
        if item == YEAR_ITEM:  # its own TimeStamp belongs to the year it announces
            self.years.learn_year(parse_number(fields.get("Value")))
        year = self.years.year_for(hours, now)
        ts = decode_hours(hours, year) if MIN_YEAR <= year <= MAX_YEAR else None
        if ts is None:
            return self.reject(
                item, fields, now, f"TimeStamp {short_repr(raw_ts)} is outside day 1..366 of {year}"
            )
        raw_value = fields.get("Value")
        value = parse_number(raw_value)
        if value is None:
            return self.reject(item, fields, now, f"Value {short_repr(raw_value)} is not a number")
        status_class, why = parse_status_class(fields.get("Status.Class"))
        if why:
            return self.reject(item, fields, now, why)
        # raw_ts parsed as a plain ASCII number, so it needs no JSON escaping
        meta = '{"raw_ts": "' + (raw_ts.strip() if type(raw_ts) is str else repr(hours)) + '"'
        indicator = fields.get("Status.Indicator")
        if indicator is not None and indicator != "":
            meta += ', "indicator": ' + json_text(indicator)
        color = fields.get("Status.Color")
        if color is not None and color != "":
            meta += ', "color": ' + json_text(color)
        if snapshot:
            meta += ', "snapshot": true'
        calibrated = fields.get("CalibratedData")
        if calibrated == "" or calibrated is None:
            calibrated = None
        elif not (
            type(calibrated) is str
            and calibrated.isascii()
            and len(calibrated) <= MAX_TEXT
            and "\x00" not in calibrated
        ):
            calibrated = optional_text(calibrated)
        if self.clock_check:
            return self._finish(
                item, ts, value, status_class, calibrated, now, meta + "}", item, fields
            )
        # the same as _finish without the clock check, inlined (the hot path of a feed)
        self.years.observe(item, ts, value)
        micros = micros_since_epoch(ts)
        return ValidatedReading(
            item,
            micros,
            value,
            status_class,
            calibrated,
            event_id_at(item, micros, value),
            now,
            meta + "}",
            self.source,
        )

    def updates(self, batch: Sequence[FeedUpdate]) -> list[ValidatedReading | Rejection]:
        """`update` of each (item, fields, received_at, snapshot) in turn: the same results
        in the same order, the year state moving exactly as it would one by one. Clean
        stretches are validated column by column (several times faster, `batch_validate`);
        whatever is unusual (hostile input, a New Year, a new year from `TIME_000002`) goes
        through `update`. Never raises."""
        return validate_updates(self, batch)

    def time_and_class(self, fields: Any, now: float) -> tuple[datetime, int | None] | None:
        """The decoded TimeStamp and Status.Class of an update, whatever its Value (for
        signal tracking of a `TIME_000001` update that was rejected); None if unusable."""
        try:
            if not isinstance(fields, Mapping):
                return None
            hours = parse_number(fields.get("TimeStamp"))
            klass, why = parse_status_class(fields.get("Status.Class"))
            if hours is None or why:
                return None
            ts = decode_hours(hours, self.years.year_for(hours, now))
            return None if ts is None else (ts, klass)
        except Exception:
            return None

    # -- already decoded readings (replay, inject) ---------------------------------------

    def reading(
        self,
        item_id: Any,
        ts: Any,
        value: Any,
        status_class: Any = None,
        calibrated_data: Any = None,
        *,
        received_at: float | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> ValidatedReading | Rejection:
        """Validate a reading whose time is already a UTC datetime. Never raises."""
        now = time.time() if received_at is None else received_at
        payload = {
            "ts": ts.isoformat() if isinstance(ts, datetime) else ts,
            "Value": value,
            "Status.Class": status_class,
            "CalibratedData": calibrated_data,
        }
        try:
            if not isinstance(item_id, str) or not ITEM_ID.fullmatch(item_id):
                return self.reject(
                    item_id, payload, now, f"item name {short_repr(item_id)} is not an item id"
                )
            # a naive time is refused, not taken as UTC (peebot_iss.utc): what is replayed
            # or injected must say its zone
            if not isinstance(ts, datetime) or ts.tzinfo is None:
                return self.reject(item_id, payload, now, f"ts {short_repr(ts)} is not a UTC time")
            ts = ts.astimezone(UTC)
            if not MIN_YEAR <= ts.year <= MAX_YEAR:
                return self.reject(item_id, payload, now, f"ts {ts.isoformat()} is not plausible")
            number = parse_number(value)
            if number is None:
                return self.reject(
                    item_id, payload, now, f"Value {short_repr(value)} is not a number"
                )
            klass, why = parse_status_class(status_class)
            if why:
                return self.reject(item_id, payload, now, why)
            meta = (
                json.dumps({k: json_safe(v) for k, v in metadata.items()}, ensure_ascii=False)
                if metadata
                else None
            )
            return self._finish(
                item_id,
                ts,
                number,
                klass,
                optional_text(calibrated_data),
                now,
                meta,
                item_id,
                payload,
            )
        except Exception as exc:
            return self.reject(
                item_id, payload, now, f"internal error: {type(exc).__name__}: {exc}"
            )

    # -- shared tail -----------------------------------------------------------------------

    def _finish(
        self,
        item_id: str,
        ts: datetime,
        value: float,
        status_class: int | None,
        calibrated: str | None,
        now: float,
        metadata: str | None,
        raw_item: Any,
        raw_fields: Any,
    ) -> ValidatedReading | Rejection:
        if self.clock_check and (ts - EPOCH).total_seconds() > now + self.max_future_seconds:
            return self.reject(
                raw_item,
                raw_fields,
                now,
                f"time {ts.isoformat()} is more than {self.max_future_seconds:g} s ahead of the clock",
            )
        self.years.observe(item_id, ts, value)
        micros = micros_since_epoch(ts)
        return ValidatedReading(
            item_id,
            micros,
            value,
            status_class,
            calibrated,
            event_id_at(item_id, micros, value),
            now,
            metadata,
            self.source,
        )
