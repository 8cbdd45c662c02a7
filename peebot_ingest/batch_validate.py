"""Many feed updates validated at once, column by column, with the results `Validator.update`
gives one by one (the tests compare them on random and hostile input).

The daemon's writer thread hands the validator each run of updates it takes from its queue;
the clean stretches of a run (known items, plain numeric text, a year not in doubt) go
through numpy (the helpers in `columns`), several times faster than one by one, and every
row that is unusual goes back to `update`. The year state moves exactly as it would one by
one: a stretch ends where the year could change (`TIME_000002`, New Year, a reference
refresh). Where the compiled loops are built (`speedups`), a batch's columns, event ids and
readings come from them, with the same results.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from itertools import repeat
from typing import Any, Protocol

import numpy as np

from peebot_ingest import columns, speedups
from peebot_ingest.fields import CLASS_TEXT, ITEM_ID, json_text
from peebot_ingest.records import (
    EVENT_NAMESPACE_BYTES,
    Rejection,
    ValidatedReading,
    micros_since_epoch,
    utc_from_micros,
)
from peebot_ingest.storable import MAX_TEXT
from peebot_ingest.years import MAX_YEAR, MIN_YEAR, YearTracker, year_start_us
from peebot_iss.catalog import YEAR_ITEM
from peebot_iss.timestamps import ROLLOVER_HOURS, days_in_year

# One update as the feed listener queues it: item, fields, received_at (epoch s), snapshot.
# Untyped on purpose: whatever the client hands over is validated, nothing is assumed.
FeedUpdate = tuple[Any, Any, float, bool]


class OneByOne(Protocol):
    """What the column-wise path needs of the validator (`validate.Validator`)."""

    source: str
    clock_check: bool
    max_future_seconds: float
    years: YearTracker
    known_items: set[str]
    column_wise: int

    def update(
        self, item: Any, fields: Any, received_at: float | None = None, snapshot: bool = False
    ) -> ValidatedReading | Rejection: ...

    def reject(self, item: Any, fields: Any, now: float, reason: str) -> Rejection: ...


_SCAN = 8192  # rows looked at per column-wise step (bounds the work when many go one by one)


def validate_updates(
    validator: OneByOne, batch: Sequence[FeedUpdate]
) -> list[ValidatedReading | Rejection]:
    """`validator.update` of each (item, fields, received_at, snapshot) in turn: the same
    results in the same order, the year state moving exactly as it would one by one. Clean
    stretches are validated column by column; whatever is unusual (hostile input, a New
    Year, a new year from `TIME_000002`) goes through `update`. Never raises."""
    try:
        cols = UpdateColumns(batch, validator.known_items)
    except Exception:  # a hostile batch (unhashable items, odd tuples): one by one
        return [_one(validator, u) for u in batch]
    out: list[ValidatedReading | Rejection] = []
    i, n = 0, len(batch)
    while i < n:
        if not cols.clean[i]:
            out.append(_one(validator, batch[i]))
            i += 1
            continue
        end = i + columns.first_true(~cols.clean[i : i + _SCAN])
        while i < end:
            done = _segment(validator, cols, i, end, out)
            if done < 0:  # these rows need the one-by-one path (their year is in doubt)
                done = min(-done, end - i)
                out.extend(_one(validator, u) for u in batch[i : i + done])
            i += done
    return out


def _one(validator: OneByOne, update: Any) -> ValidatedReading | Rejection:
    try:
        item, fields, received_at, snapshot = update
    except Exception as exc:
        return validator.reject(None, update, time.time(), f"not an update: {type(exc).__name__}")
    return validator.update(item, fields, received_at, snapshot)


def _segment(
    validator: OneByOne,
    cols: UpdateColumns,
    start: int,
    end: int,
    out: list[ValidatedReading | Rejection],
) -> int:
    """Validate clean rows start.. column-wise while the year state holds still; append
    their readings and return how many, or -k: the next k rows must go one by one."""
    years = validator.years
    ref = years.settled_reference()
    if ref is None:  # nothing seen yet: the clock decides, row by row
        return -1
    when, ref_hours = ref
    year = when.year
    if not MIN_YEAR <= year <= MAX_YEAR:
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
        if start <= k < start + stop and years.announces_new_year(cols.values[k]):
            stop = k - start
            break
    if not stop:
        return -1
    micros = columns.decode_micros(hours[:stop], year_start_us(year))
    if validator.clock_check:
        ahead = micros / 1e6 > cols.received[start : start + stop] + validator.max_future_seconds
        stop = columns.first_true(ahead)
        micros = micros[:stop]
    # the row that reaches `reference_until` is the last one this reference decides
    until = micros_since_epoch(years.reference_until)
    stop = min(stop, columns.first_true(micros >= until) + 1)
    if not stop:  # the clock check stopped at the first row
        return -1
    micros = micros[:stop]
    rows = slice(start, start + stop)
    items = cols.items[rows]
    values = cols.value_list[rows]
    times = micros.tolist()
    ids = columns.event_ids(EVENT_NAMESPACE_BYTES, items, times, values)
    fields = [
        items,
        times,
        values,
        cols.classes[rows],
        cols.calibrated[rows],
        ids,
        cols.received_list[rows],
        cols.metadata[rows],
    ]
    native = speedups.native
    if native is not None:  # the same tuples, built in C and kept out of the collector's way
        out.extend(native.readings(ValidatedReading, *fields, validator.source))
    else:  # ValidatedReading(*f) without the call
        rows_of = zip(*fields, repeat(validator.source, stop), strict=True)
        out.extend(map(_new_tuple, repeat(ValidatedReading), rows_of))
    newest = int(np.argmax(micros))  # observing the newest row is observing them all
    years.observe(items[newest], utc_from_micros(times[newest]), values[newest])
    validator.column_wise += stop
    return stop


_META_TAILS: dict[tuple[Any, Any, bool], str] = {}


def _meta_tail(indicator: Any, color: Any, snapshot: bool) -> str:
    """What follows the raw TimeStamp in a reading's metadata JSON (as `Validator.update`
    builds it)."""
    key = (indicator, color, snapshot)
    tail = _META_TAILS.get(key)
    if tail is None:
        tail = '"'
        if indicator is not None and indicator != "":
            tail += ', "indicator": ' + json_text(indicator)
        if color is not None and color != "":
            tail += ', "color": ' + json_text(color)
        if snapshot:
            tail += ', "snapshot": true'
        tail += "}"
        if len(_META_TAILS) < 4096:
            _META_TAILS[key] = tail
    return tail


def _plain_text(raw: Any) -> bool:
    """CalibratedData `Validator.update` keeps as it is (or drops as empty)."""
    return raw is None or (
        type(raw) is str and raw.isascii() and len(raw) <= MAX_TEXT and "\x00" not in raw
    )


def _all_plain_text(column: list[Any]) -> bool:
    texts = column if set(map(type, column)) == {str} else [c for c in column if c is not None]
    if len(texts) < len(column) and not all(type(c) is str for c in texts):
        return False
    joined = "".join(texts)
    return joined.isascii() and "\x00" not in joined and max(map(len, texts), default=0) <= MAX_TEXT


def _text_or_none(raw: Any) -> bool:
    return raw is None or type(raw) is str


def _all_text_or_none(column: list[Any]) -> bool:
    return set(map(type, column)) <= _TEXT_TYPES


def _class_ok(raw: Any) -> bool:
    return raw is None or (type(raw) is str and (raw == "" or raw in CLASS_TEXT))


def _all_class_ok(column: list[Any]) -> bool:
    return all(map(_class_ok, set(column)))


def _mask(column: list[Any], ok_all: Any, ok_one: Any) -> columns.BoolArray:
    """Which cells pass `ok_one`; `ok_all` answers for the whole column first (cheaper)."""
    if ok_all(column):
        return np.ones(len(column), np.bool_)
    return np.fromiter(map(ok_one, column), np.bool_, len(column))


_TEXT_TYPES = {str, type(None)}
_new_tuple = tuple.__new__


class UpdateColumns:
    """A batch of updates as columns, and which rows the column-wise path may take: a known
    item id, a dict of fields, TimeStamp and Value as plain numeric text, a Status.Class of
    0..255 (or none), text (or nothing) for the status fields and CalibratedData, a float
    receipt time and a bool snapshot flag. Each check is made on the whole column first and
    row by row only when that fails."""

    items: list[Any]
    hours: columns.FloatArray
    values: columns.FloatArray
    value_list: list[float]
    classes: list[int | None]
    calibrated: list[str | None]
    received_list: list[Any]
    received: columns.FloatArray
    clean: columns.BoolArray
    metadata: list[str | None]
    year_rows: list[int]

    def __init__(self, batch: Sequence[FeedUpdate], good_items: set[str]) -> None:
        native = speedups.native
        if native is not None and type(batch) is list:
            # the compiled loop takes a batch whose every update is clean, and only such
            cols = native.update_columns(
                batch, good_items, CLASS_TEXT, MAX_TEXT, _META_TAILS, _meta_tail
            )
            if cols is not None:
                self._from_clean(*cols)
                return
        self._from_any(batch, good_items)

    def _from_clean(
        self,
        items: list[Any],
        hours: list[Any],
        values: list[Any],
        classes: list[Any],
        calibrated: list[Any],
        received: list[Any],
        metadata: list[Any],
    ) -> None:
        """The columns of a batch found clean, update by update, by the compiled loop."""
        self.items = items
        self.hours = np.array(hours, np.float64)
        self.values = np.array(values, np.float64)
        self.value_list = values
        self.classes = classes
        self.calibrated = calibrated
        self.received_list = received
        self.received = np.array(received, np.float64)
        self.clean = np.ones(len(items), np.bool_)
        self.metadata = metadata
        self.year_rows = [k for k, item in enumerate(items) if item == YEAR_ITEM]

    def _from_any(self, batch: Sequence[FeedUpdate], good_items: set[str]) -> None:
        n = len(batch)
        self.items = [u[0] for u in batch]
        fields: list[Any] = [u[1] for u in batch]
        self.received_list = [u[2] for u in batch]
        snapshots = [u[3] for u in batch]
        for item in set(self.items) - good_items:
            if type(item) is str and ITEM_ID.fullmatch(item) and len(good_items) < 10_000:
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
        self.value_list = self.values.tolist()
        raw_classes = [get(f, "Status.Class") for f in fields]
        clean &= _mask(raw_classes, _all_class_ok, _class_ok)
        self.classes = [CLASS_TEXT.get(c) if type(c) is str else None for c in raw_classes]
        raw_calibrated = [get(f, "CalibratedData") for f in fields]
        clean &= _mask(raw_calibrated, _all_plain_text, _plain_text)
        self.calibrated = [c or None if type(c) is str else None for c in raw_calibrated]
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
        self.metadata = [
            '{"raw_ts": "' + t.strip() + (tails.get((i, c, s)) or _meta_tail(i, c, s))
            if ok
            else None
            for t, i, c, s, ok in zip(
                raw_ts, indicators, colors, snapshots, clean.tolist(), strict=True
            )
        ]
        self.year_rows = [k for k, item in enumerate(self.items) if item == YEAR_ITEM]
