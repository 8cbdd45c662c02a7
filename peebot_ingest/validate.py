"""Validation and enrichment of feed updates: pure functions and two small state holders.

An update is whatever the Lightstreamer listener saw: an item name and a mapping of the six
ISS Live fields (`TimeStamp`, `Value`, `Status.Class`, `Status.Indicator`, `Status.Color`,
`CalibratedData`). It becomes either a `Reading` (ready for the writer) or a `Rejection`
(raw payload + reason, for `rejected_update`). Nothing here raises on bad input.

The dedupe key `event_id` is UUIDv5 of (item, decoded UTC time in microseconds, value). The
value is taken in canonical form (the shortest `repr` of its float), so the same reading
from the feed (`"44"`), an export (`44.0`) or an inject gives the same key, and a snapshot
re-send, a replayed file or a repeated inject is a no-op in the database.

`Validator.updates` validates many feed updates at once, column by column (numpy, the
helpers in `columns`), with the same results as `update` one by one; the daemon's writer
thread hands it each run of updates it takes from its queue.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from hashlib import sha1
from itertools import repeat
from typing import Any, NamedTuple
from uuid import UUID

import numpy as np

from peebot_ingest import columns
from peebot_iss.catalog import YEAR_ITEM
from peebot_iss.timestamps import ROLLOVER_HOURS, days_in_year, encode_timestamp, infer_year

FIELDS = (
    "TimeStamp",
    "Value",
    "Status.Class",
    "Status.Indicator",
    "Status.Color",
    "CalibratedData",
)
AOS_CLASS = 24
EVENT_NAMESPACE = UUID("6f0c3a52-3c1e-5b7e-9a55-1ee7b07fee00")
_NS_BYTES = EVENT_NAMESPACE.bytes
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_ITEM_ID = re.compile(r"[A-Z0-9_]{1,64}")
_SMALL_INT = re.compile(r"\s*\d{1,5}\s*")
_MAX_TEXT = 4096
_CLASS_TEXT = {str(n): n for n in range(256)}
_STATUS_CLASS_MAX = 32767  # smallint
_MIN_YEAR, _MAX_YEAR = 1998, 2200  # the ISS was launched in 1998


class Reading(NamedTuple):
    """A validated, enriched reading (one future `telemetry_reading` row)."""

    item_id: str
    ts: datetime  # UTC
    value: float
    status_class: int | None
    calibrated_data: str | None
    event_id: bytes  # 16 bytes, UUIDv5
    received_at: float  # wall clock (epoch seconds) when it reached us
    metadata: str | None  # JSON text for the jsonb column
    source: str  # feed | replay | inject

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


# --------------------------------------------------------------------------- pure helpers


def clean_text(text: str) -> str:
    """Text PostgreSQL accepts: no NUL, no lone surrogates, bounded length."""
    if text.isascii() and len(text) <= _MAX_TEXT and "\x00" not in text:
        return text  # the common case, cheaply
    if len(text) > _MAX_TEXT:
        text = text[:_MAX_TEXT] + "…"
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, str):
        return clean_text(value)
    return clean_text(repr(value))


def raw_payload(item: Any, fields: Any) -> dict[str, Any]:
    """What the feed sent, in a form that always fits a jsonb column."""
    payload: dict[str, Any] = {"item": _json_safe(item)}
    if isinstance(fields, Mapping):
        try:
            payload["fields"] = {
                clean_text(str(k)): _json_safe(v) for k, v in list(fields.items())[:64]
            }
        except Exception as exc:  # a hostile mapping
            payload["fields"] = clean_text(f"unreadable fields: {type(exc).__name__}")
    else:
        payload["fields"] = _json_safe(fields)
    return payload


def event_id(item_id: str, ts: datetime, value: float) -> bytes:
    """UUIDv5(EVENT_NAMESPACE, "<item>|<µs since epoch>|<repr(value)>") as 16 bytes.

    Same bytes as `uuid.uuid5(...)`, computed without building UUID objects (hot path)."""
    micros = (ts - _EPOCH) // _ONE_US
    digest = bytearray(sha1(_NS_BYTES + f"{item_id}|{micros}|{value!r}".encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    return bytes(digest)


@lru_cache(maxsize=64)
def _year_start(year: int) -> datetime:
    return datetime(year, 1, 1, tzinfo=UTC)


def decode_hours(hours: float, year: int) -> datetime | None:
    """`timestamps.decode_timestamp` on an already parsed float (same arithmetic, same
    result); None when the TimeStamp is outside the year."""
    info = _YEARS.get(year)
    if info is None:
        info = _YEARS[year] = (_year_start(year), (days_in_year(year) + 1) * 24.0)
    if not 24.0 <= hours < info[1]:
        return None
    return info[0] + timedelta(hours=hours - 24.0)


_YEARS: dict[int, tuple[datetime, float]] = {}


def parse_number(raw: Any) -> float | None:
    """A finite float from the feed's text (or a number); None when it is not one.

    Plain decimal or exponent notation only: no `nan`, `inf`, `1_000`, hex or empty."""
    if type(raw) is str:
        if len(raw) > 64 or "_" in raw or not raw.isascii():
            return None
        try:
            number = float(raw)
        except ValueError:
            return None
        if number - number != 0.0:  # inf or nan (faster than math.isfinite + a call)
            return None
        return number
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    try:
        number = float(raw)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def parse_status_class(raw: Any) -> tuple[int | None, str | None]:
    """(class, None) or (None, reason). Missing or empty means no class."""
    if raw is None or raw == "":
        return None, None
    cached = _CLASS_TEXT.get(raw) if type(raw) is str else None
    if cached is not None:
        return cached, None
    if isinstance(raw, int) and not isinstance(raw, bool):
        number = raw
    elif isinstance(raw, str) and _SMALL_INT.fullmatch(raw):
        number = int(raw)
    else:
        return None, f"Status.Class {_short(raw)} is not a small integer"
    if not 0 <= number <= _STATUS_CLASS_MAX:
        return None, f"Status.Class {number} is out of range 0..{_STATUS_CLASS_MAX}"
    return number, None


def _short(raw: Any) -> str:
    text = repr(raw)
    return clean_text(text if len(text) <= 40 else text[:37] + "...")


_JSON_TEXT: dict[Any, str] = {}


def _json_text(raw: Any) -> str:
    """A JSON string of a field's text; the few values a status field takes are cached."""
    cached = _JSON_TEXT.get(raw) if type(raw) is str else None
    if cached is not None:
        return cached
    text = json.dumps(_optional_text(raw), ensure_ascii=False)
    if type(raw) is str and len(_JSON_TEXT) < 1024 and len(raw) <= 32:
        _JSON_TEXT[raw] = text
    return text


def _optional_text(raw: Any) -> str | None:
    if raw is None or raw == "":
        return None
    return clean_text(raw if isinstance(raw, str) else str(raw))


# --------------------------------------------------------------------------- the year


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
            start = _year_start(self.feed_year)
            newest = self.newest
            if newest is not None and (
                start - timedelta(days=2)
                <= newest
                < _year_start(self.feed_year + 1) + timedelta(days=2)
            ):
                return newest
            return start + timedelta(days=182)
        if self.newest is not None:
            return self.newest
        return datetime.fromtimestamp(now, UTC)

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

    def observe(self, item_id: str, ts: datetime, value: float) -> None:
        newest = self.newest
        if newest is None or ts > newest:
            self.newest = ts
            if ts >= self._ref_until:
                self._ref_until = ts + self._REFRESH
                self._ref = None
        if item_id == YEAR_ITEM:
            self.learn_year(value)

    def learn_year(self, value: float | None) -> None:
        if (
            value is not None
            and value.is_integer()
            and _MIN_YEAR <= value <= _MAX_YEAR
            and self.feed_year != int(value)
        ):
            self.feed_year = int(value)
            self._ref = None


# --------------------------------------------------------------------------- the validator


class Validator:
    """Turns raw updates (feed) or decoded readings (replay, inject) into Readings or
    Rejections. Holds only the year state; everything else is pure.

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
        self._good_items: set[str] = set()

    # -- feed updates ---------------------------------------------------------------------

    def update(
        self,
        item: Any,
        fields: Any,
        received_at: float | None = None,
        snapshot: bool = False,
    ) -> Reading | Rejection:
        """Validate one feed update. Never raises."""
        now = time.time() if received_at is None else received_at
        try:
            return self._update(item, fields, now, snapshot)
        except Exception as exc:  # a bug must not lose the update: record it
            return self._reject(item, fields, now, f"internal error: {type(exc).__name__}: {exc}")

    def _reject(self, item: Any, fields: Any, now: float, reason: str) -> Rejection:
        item_id = clean_text(item)[:64] if isinstance(item, str) else None
        return Rejection(self.source, item_id, reason, raw_payload(item, fields), now)

    def _update(self, item: Any, fields: Any, now: float, snapshot: bool) -> Reading | Rejection:
        if item not in self._good_items:
            if not isinstance(item, str) or not _ITEM_ID.fullmatch(item):
                return self._reject(
                    item, fields, now, f"item name {_short(item)} is not an item id"
                )
            if len(self._good_items) < 10_000:
                self._good_items.add(item)
        if type(fields) is not dict and not isinstance(fields, Mapping):
            return self._reject(item, fields, now, "fields are not a mapping")
        raw_ts = fields.get("TimeStamp")
        hours = parse_number(raw_ts)
        if hours is None:
            return self._reject(item, fields, now, f"TimeStamp {_short(raw_ts)} is not a number")
        if item == YEAR_ITEM:  # its own TimeStamp belongs to the year it announces
            self.years.learn_year(parse_number(fields.get("Value")))
        year = self.years.year_for(hours, now)
        ts = decode_hours(hours, year) if _MIN_YEAR <= year <= _MAX_YEAR else None
        if ts is None:
            return self._reject(
                item, fields, now, f"TimeStamp {_short(raw_ts)} is outside day 1..366 of {year}"
            )
        raw_value = fields.get("Value")
        value = parse_number(raw_value)
        if value is None:
            return self._reject(item, fields, now, f"Value {_short(raw_value)} is not a number")
        status_class, why = parse_status_class(fields.get("Status.Class"))
        if why:
            return self._reject(item, fields, now, why)
        # raw_ts parsed as a plain ASCII number, so it needs no JSON escaping
        meta = '{"raw_ts": "' + (raw_ts.strip() if type(raw_ts) is str else repr(hours)) + '"'
        indicator = fields.get("Status.Indicator")
        if indicator is not None and indicator != "":
            meta += ', "indicator": ' + _json_text(indicator)
        color = fields.get("Status.Color")
        if color is not None and color != "":
            meta += ', "color": ' + _json_text(color)
        if snapshot:
            meta += ', "snapshot": true'
        calibrated = fields.get("CalibratedData")
        if calibrated == "" or calibrated is None:
            calibrated = None
        elif not (
            type(calibrated) is str
            and calibrated.isascii()
            and len(calibrated) <= _MAX_TEXT
            and "\x00" not in calibrated
        ):
            calibrated = _optional_text(calibrated)
        if self.clock_check:
            return self._finish(
                item, ts, value, status_class, calibrated, now, meta + "}", item, fields
            )
        # the same as _finish without the clock check, inlined (the hot path of a feed)
        self.years.observe(item, ts, value)
        return Reading(
            item,
            ts,
            value,
            status_class,
            calibrated,
            event_id(item, ts, value),
            now,
            meta + "}",
            self.source,
        )

    def updates(self, batch: Sequence[Update]) -> list[Reading | Rejection]:
        """`update` of each (item, fields, received_at, snapshot) in turn: the same results
        in the same order, the year state moving exactly as it would one by one. Clean
        stretches are validated column by column (several times faster); whatever is
        unusual (hostile input, a New Year, a new year from `TIME_000002`) goes through
        `update`. Never raises."""
        try:
            cols = _Columns(batch, self._good_items)
        except Exception:  # a hostile batch (unhashable items, odd tuples): one by one
            return [self._one(u) for u in batch]
        out: list[Reading | Rejection] = []
        i, n = 0, len(batch)
        while i < n:
            if not cols.clean[i]:
                out.append(self._one(batch[i]))
                i += 1
                continue
            end = i + columns.first_true(~cols.clean[i : i + _SCAN])
            while i < end:
                done = self._segment(cols, i, end, out)
                if done < 0:  # these rows need the one-by-one path (their year is in doubt)
                    done = min(-done, end - i)
                    out.extend(map(self._one, batch[i : i + done]))
                i += done
        return out

    def _one(self, update: Any) -> Reading | Rejection:
        try:
            item, fields, received_at, snapshot = update
        except Exception as exc:
            return self._reject(None, update, time.time(), f"not an update: {type(exc).__name__}")
        return self.update(item, fields, received_at, snapshot)

    def _segment(self, cols: _Columns, start: int, end: int, out: list[Reading | Rejection]) -> int:
        """Validate clean rows start.. column-wise while the year state holds still; append
        their Readings and return how many, or -k: the next k rows must go one by one."""
        years = self.years
        ref = years.settled_reference()
        if ref is None:  # nothing seen yet: the clock decides, row by row
            return -1
        when, ref_hours = ref
        year = when.year
        if not _MIN_YEAR <= year <= columns.LAST_EXACT_YEAR:
            return -1
        hours = cols.hours[start:end]
        upper = (days_in_year(year) + 1) * 24.0
        # rows whose year is the reference's without a New Year question, inside the year
        doubt = (np.abs(hours - ref_hours) > ROLLOVER_HOURS) | (hours < 24.0) | (hours >= upper)
        stop = columns.first_true(doubt)
        if not stop:  # one by one up to the next row without doubt (a refresh may end it)
            return -min(columns.first_true(~doubt), 256)
        # a TIME_000002 announcing another year changes the state: it goes one by one
        for k in cols.year_rows:
            if start <= k < start + stop and _changes_year(years, cols.values[k]):
                stop = k - start
                break
        if not stop:
            return -1
        micros = columns.decode_micros(hours[:stop], _year_start_us(year))
        if self.clock_check:
            ahead = micros / 1e6 > cols.received[start : start + stop] + self.max_future_seconds
            stop = columns.first_true(ahead)
            micros = micros[:stop]
        # the tracker refreshes its reference when the newest time reaches `_ref_until`:
        # the row that does so is the last one this reference decides
        until = (years._ref_until - _EPOCH) // _ONE_US
        stop = min(stop, columns.first_true(micros >= until) + 1)
        if not stop:  # the clock check stopped at the first row
            return -1
        micros = micros[:stop]
        rows = slice(start, start + stop)
        items = cols.items[rows]
        values = cols.value_list[rows]
        times = columns.utc_datetimes(micros)
        ids = columns.event_ids(_NS_BYTES, items, micros.tolist(), values)
        fields = zip(
            items,
            times,
            values,
            cols.classes[rows],
            cols.calibrated[rows],
            ids,
            cols.received_list[rows],
            cols.metadata[rows],
            [self.source] * stop,
            strict=True,
        )
        out.extend(map(_new_tuple, repeat(Reading), fields))  # Reading(*f) without the call
        newest = int(np.argmax(micros))  # observing the newest row is observing them all
        years.observe(items[newest], times[newest], values[newest])
        self.column_wise += stop
        return stop

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
    ) -> Reading | Rejection:
        """Validate a reading whose time is already a UTC datetime. Never raises."""
        now = time.time() if received_at is None else received_at
        payload = {
            "ts": ts.isoformat() if isinstance(ts, datetime) else ts,
            "Value": value,
            "Status.Class": status_class,
            "CalibratedData": calibrated_data,
        }
        try:
            if not isinstance(item_id, str) or not _ITEM_ID.fullmatch(item_id):
                return self._reject(
                    item_id, payload, now, f"item name {_short(item_id)} is not an item id"
                )
            if not isinstance(ts, datetime) or ts.tzinfo is None:
                return self._reject(item_id, payload, now, f"ts {_short(ts)} is not a UTC time")
            ts = ts.astimezone(UTC)
            if not _MIN_YEAR <= ts.year <= _MAX_YEAR:
                return self._reject(item_id, payload, now, f"ts {ts.isoformat()} is not plausible")
            number = parse_number(value)
            if number is None:
                return self._reject(item_id, payload, now, f"Value {_short(value)} is not a number")
            klass, why = parse_status_class(status_class)
            if why:
                return self._reject(item_id, payload, now, why)
            meta = (
                json.dumps({k: _json_safe(v) for k, v in metadata.items()}, ensure_ascii=False)
                if metadata
                else None
            )
            return self._finish(
                item_id,
                ts,
                number,
                klass,
                _optional_text(calibrated_data),
                now,
                meta,
                item_id,
                payload,
            )
        except Exception as exc:
            return self._reject(
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
    ) -> Reading | Rejection:
        if self.clock_check and (ts - _EPOCH).total_seconds() > now + self.max_future_seconds:
            return self._reject(
                raw_item,
                raw_fields,
                now,
                f"time {ts.isoformat()} is more than {self.max_future_seconds:g} s ahead of the clock",
            )
        self.years.observe(item_id, ts, value)
        return Reading(
            item_id,
            ts,
            value,
            status_class,
            calibrated,
            event_id(item_id, ts, value),
            now,
            metadata,
            self.source,
        )


# --------------------------------------------------------------------------- many at once

Update = tuple[Any, Any, float, bool]  # item, fields, received_at (epoch s), snapshot
_SCAN = 8192  # rows looked at per column-wise step (bounds the work when many go one by one)


@lru_cache(maxsize=64)
def _year_start_us(year: int) -> int:
    return (_year_start(year) - _EPOCH) // _ONE_US


def _changes_year(years: YearTracker, value: float) -> bool:
    return value.is_integer() and _MIN_YEAR <= value <= _MAX_YEAR and years.feed_year != int(value)


_META_TAILS: dict[tuple[Any, Any, bool], str] = {}


def _meta_tail(indicator: Any, color: Any, snapshot: bool) -> str:
    """What follows the raw TimeStamp in a reading's metadata JSON (as `_update` builds it)."""
    key = (indicator, color, snapshot)
    tail = _META_TAILS.get(key)
    if tail is None:
        tail = '"'
        if indicator is not None and indicator != "":
            tail += ', "indicator": ' + _json_text(indicator)
        if color is not None and color != "":
            tail += ', "color": ' + _json_text(color)
        if snapshot:
            tail += ', "snapshot": true'
        tail += "}"
        if len(_META_TAILS) < 4096:
            _META_TAILS[key] = tail
    return tail


def _plain_text(raw: Any) -> bool:
    """CalibratedData `_update` keeps as it is (or drops as empty)."""
    return raw is None or (
        type(raw) is str and raw.isascii() and len(raw) <= _MAX_TEXT and "\x00" not in raw
    )


def _all_plain_text(column: list[Any]) -> bool:
    texts = column if set(map(type, column)) == {str} else [c for c in column if c is not None]
    if len(texts) < len(column) and not all(type(c) is str for c in texts):
        return False
    joined = "".join(texts)
    return (
        joined.isascii() and "\x00" not in joined and max(map(len, texts), default=0) <= _MAX_TEXT
    )


def _text_or_none(raw: Any) -> bool:
    return raw is None or type(raw) is str


def _all_text_or_none(column: list[Any]) -> bool:
    return set(map(type, column)) <= _TEXT_TYPES


def _class_ok(raw: Any) -> bool:
    return raw is None or (type(raw) is str and (raw == "" or raw in _CLASS_TEXT))


def _all_class_ok(column: list[Any]) -> bool:
    return all(map(_class_ok, set(column)))


def _mask(column: list[Any], ok_all: Any, ok_one: Any) -> columns.BoolArray:
    """Which cells pass `ok_one`; `ok_all` answers for the whole column first (cheaper)."""
    if ok_all(column):
        return np.ones(len(column), np.bool_)
    return np.fromiter(map(ok_one, column), np.bool_, len(column))


_TEXT_TYPES = {str, type(None)}
_new_tuple = tuple.__new__


class _Columns:
    """A batch of updates as columns, and which rows the column-wise path may take: a known
    item id, a dict of fields, TimeStamp and Value as plain numeric text, a Status.Class of
    0..255 (or none), text (or nothing) for the status fields and CalibratedData, a float
    receipt time and a bool snapshot flag. Each check is made on the whole column first and
    row by row only when that fails."""

    def __init__(self, batch: Sequence[Update], good_items: set[str]) -> None:
        n = len(batch)
        self.items: list[Any] = [u[0] for u in batch]
        fields: list[Any] = [u[1] for u in batch]
        self.received_list: list[Any] = [u[2] for u in batch]
        snapshots = [u[3] for u in batch]
        for item in set(self.items) - good_items:
            if type(item) is str and _ITEM_ID.fullmatch(item) and len(good_items) < 10_000:
                good_items.add(item)
        if set(map(type, fields)) == {dict} and good_items.issuperset(self.items):
            clean = np.ones(n, np.bool_)
        else:
            clean = np.fromiter(
                (
                    type(f) is dict and i in good_items
                    for i, f in zip(self.items, fields, strict=True)
                ),
                np.bool_,
                n,
            )
            fields = [f if type(f) is dict else {} for f in fields]
        get = dict.get
        raw_ts: list[Any] = [get(f, "TimeStamp") for f in fields]
        self.hours, ok = columns.number_column(raw_ts)
        clean &= ok
        self.values, ok = columns.number_column([get(f, "Value") for f in fields])
        clean &= ok
        self.value_list: list[float] = self.values.tolist()
        raw_classes = [get(f, "Status.Class") for f in fields]
        clean &= _mask(raw_classes, _all_class_ok, _class_ok)
        self.classes: list[int | None] = [
            _CLASS_TEXT.get(c) if type(c) is str else None for c in raw_classes
        ]
        raw_calibrated = [get(f, "CalibratedData") for f in fields]
        clean &= _mask(raw_calibrated, _all_plain_text, _plain_text)
        self.calibrated: list[str | None] = [
            c or None if type(c) is str else None for c in raw_calibrated
        ]
        indicators = [get(f, "Status.Indicator") for f in fields]
        colors = [get(f, "Status.Color") for f in fields]
        clean &= _mask(indicators, _all_text_or_none, _text_or_none)
        clean &= _mask(colors, _all_text_or_none, _text_or_none)
        clean &= _mask(snapshots, lambda c: set(map(type, c)) <= {bool}, lambda s: type(s) is bool)
        clean &= _mask(
            self.received_list, lambda c: set(map(type, c)) <= {float}, lambda r: type(r) is float
        )
        self.received = np.array(
            [r if type(r) is float else np.nan for r in self.received_list]
            if not clean.all()
            else self.received_list,
            np.float64,
        )
        clean &= np.isfinite(self.received)
        self.clean = clean
        tails = _META_TAILS
        self.metadata: list[str | None] = [
            '{"raw_ts": "' + t.strip() + (tails.get((i, c, s)) or _meta_tail(i, c, s))
            if ok
            else None
            for t, i, c, s, ok in zip(
                raw_ts, indicators, colors, snapshots, clean.tolist(), strict=True
            )
        ]
        self.year_rows = [k for k, item in enumerate(self.items) if item == YEAR_ITEM]
