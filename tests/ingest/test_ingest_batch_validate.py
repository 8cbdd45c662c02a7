"""`Validator.updates` (many updates, column-wise) gives what `update` gives one by one."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from peebot_ingest import columns
from peebot_ingest.records import EVENT_NAMESPACE_BYTES, Rejection, ValidatedReading, event_id
from peebot_ingest.validate import Validator
from peebot_ingest.years import MAX_YEAR, MIN_YEAR, YearTracker, decode_hours, year_start_us
from peebot_iss.catalog import FIELDS
from peebot_iss.timestamps import format_timestamp

FeedUpdate = tuple[Any, Any, Any, Any]
NOW = datetime(2026, 6, 1, 12, tzinfo=UTC).timestamp()
ITEMS = ["NODE3000005", "NODE3000004", "TIME_000001", "TIME_000002", "USLAB000058"]


def _fields(ts: Any, value: Any = "67", klass: Any = "24", **extra: Any) -> dict[str, Any]:
    return {
        "TimeStamp": ts,
        "Value": value,
        "Status.Class": klass,
        "Status.Indicator": extra.get("indicator", "0"),
        "Status.Color": extra.get("color", "GREEN"),
        "CalibratedData": extra.get("calibrated", value),
    }


def _twins(**kw: Any) -> tuple[Validator, Validator]:
    year = kw.pop("year", None)
    return (
        Validator(years=YearTracker(year), **kw),
        Validator(years=YearTracker(year), **kw),
    )


def _assert_same(
    batch: list[FeedUpdate], chunk: int = 1000, column_wise: float = 0.0, **kw: Any
) -> list[ValidatedReading | Rejection]:
    """`updates` in chunks == `update` one by one; at least `column_wise` of the batch taken
    column-wise (so the comparison is not one-by-one against itself)."""
    one, many = _twins(**kw)
    expected = [one.update(*u) for u in batch]
    got: list[ValidatedReading | Rejection] = []
    for k in range(0, len(batch), chunk):
        got.extend(many.updates(batch[k : k + chunk]))
    assert len(got) == len(expected)
    for k, (a, b) in enumerate(zip(expected, got, strict=True)):
        assert a == b, (k, batch[k], a, b)
        assert type(a) is type(b)
        if isinstance(a, ValidatedReading):
            assert b.ts.tzinfo is UTC
    # the year state ends where one-by-one leaves it
    assert (one.years.feed_year, one.years.newest) == (many.years.feed_year, many.years.newest)
    assert many.column_wise >= column_wise * len(batch), many.column_wise
    return got


def _stream(start: datetime, n: int, step_ms: int, items: list[str] = ITEMS) -> list[FeedUpdate]:
    out: list[FeedUpdate] = []
    for k in range(n):
        when = start + timedelta(milliseconds=k * step_ms)
        value = f"{(k * 7919) % 10007 / 100:.2f}"
        out.append(
            (items[k % len(items)], _fields(format_timestamp(when), value), when.timestamp(), False)
        )
    return out


def test_a_clean_stream_is_identical_and_all_readings() -> None:
    got = _assert_same(
        _stream(datetime(2026, 5, 1, tzinfo=UTC), 5000, 7), year=2026, column_wise=0.999
    )
    assert all(isinstance(r, ValidatedReading) for r in got)


def test_new_year_inside_a_batch_without_the_year_item() -> None:
    # the clock and then the newest reading decide; 31 Dec and 1 Jan interleave
    start = datetime(2026, 12, 31, 23, 59, 0, tzinfo=UTC)
    batch = _stream(start, 6000, 20, items=["NODE3000005", "NODE3000004"])
    seen_at = (start + timedelta(seconds=80)).timestamp()
    late = [
        ("NODE3000004", _fields(format_timestamp(start + timedelta(seconds=s))), seen_at, False)
        for s in (5, 50, 59)
    ]
    batch[4000:4000] = late  # 31 Dec readings arriving after midnight (80 s in)
    got = _assert_same(batch, chunk=2500, column_wise=0.5)
    assert all(isinstance(r, ValidatedReading) for r in got)
    assert {r.ts.year for r in got[4000:4003]} == {2026}  # the late ones stay in the old year
    assert {r.ts.year for r in got} == {2026, 2027}


def test_the_year_item_changing_the_year_mid_batch() -> None:
    start = datetime(2026, 12, 31, 23, 59, 30, tzinfo=UTC)
    batch = _stream(start, 3000, 20, items=["NODE3000005", "TIME_000001"])
    # TIME_000002 announces 2026, then (after midnight) 2027
    batch.insert(0, ("TIME_000002", _fields(format_timestamp(start), "2026"), NOW, False))
    midnight = next(k for k, u in enumerate(batch) if u[1]["TimeStamp"].startswith("24."))
    batch.insert(
        midnight + 40,
        ("TIME_000002", _fields(batch[midnight + 40][1]["TimeStamp"], "2027"), NOW, False),
    )
    got = _assert_same(batch, chunk=3100, year=None, column_wise=0.5)
    assert {r.ts.year for r in got if isinstance(r, ValidatedReading)} == {2026, 2027}


def test_clock_check_and_snapshots_and_empty_fields() -> None:
    start = datetime(2026, 6, 1, 11, tzinfo=UTC)
    batch = _stream(start, 1200, 500)
    ahead = format_timestamp(datetime(2026, 6, 3, tzinfo=UTC))
    batch[10] = ("NODE3000005", _fields(ahead), NOW, False)
    batch[11] = ("NODE3000005", _fields(batch[11][1]["TimeStamp"]), NOW, True)
    batch[12] = (
        "NODE3000005",
        _fields(batch[12][1]["TimeStamp"], klass="", indicator=""),
        NOW,
        True,
    )
    batch[13] = ("NODE3000005", _fields(batch[13][1]["TimeStamp"], calibrated=None), NOW, False)
    got = _assert_same(batch, clock_check=True, year=2026, column_wise=0.9)
    assert isinstance(got[10], Rejection) and "ahead of the clock" in got[10].reason
    assert isinstance(got[11], ValidatedReading) and '"snapshot": true' in (got[11].metadata or "")


def test_bad_rows_in_a_batch_go_one_by_one_in_order() -> None:
    batch = _stream(datetime(2026, 5, 1, tzinfo=UTC), 2000, 11)
    batch[5] = ("node 5; drop", batch[5][1], NOW, False)
    batch[6] = ("NODE3000005", ["not", "a", "dict"], NOW, False)
    batch[7] = ("NODE3000005", _fields("nan"), NOW, False)
    batch[8] = ("NODE3000005", _fields(batch[8][1]["TimeStamp"], "1_000"), NOW, False)
    batch[9] = ("NODE3000005", _fields(batch[9][1]["TimeStamp"], klass="x"), NOW, False)
    batch[10] = ("NODE3000005", _fields(" 3000.25 "), NOW, False)  # accepted, stripped
    batch[11] = ("NODE3000005", _fields(batch[11][1]["TimeStamp"], calibrated="a\x00b"), NOW, False)
    batch[12] = ("NEW_ITEM_1", batch[12][1], NOW, False)  # unknown but well-formed: kept
    batch[13] = ("NODE3000005", _fields(3000.5), NOW, False)  # a number, not text
    batch[14] = ("NODE3000005", batch[14][1], 12, False)  # an int receipt time
    got = _assert_same(batch, year=2026, column_wise=0.9)
    assert [type(r).__name__ for r in got[5:10]] == ["Rejection"] * 5
    assert isinstance(got[12], ValidatedReading) and got[12].item_id == "NEW_ITEM_1"


_text = st.one_of(
    st.none(),
    st.just(""),
    st.text(max_size=12),
    st.from_regex(r" ?-?\d{1,5}(\.\d{0,7})?(e-?\d)? ?", fullmatch=True),
    st.sampled_from(["24", "2026", "2027", "0", "GREEN", "inf", "1_0", "8783.99"]),
    st.integers(-5, 10_000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.integers(), max_size=2),
)
_update = st.tuples(
    st.one_of(st.sampled_from(ITEMS), st.text(max_size=8), st.none()),
    st.one_of(
        st.fixed_dictionaries(
            {},
            optional=dict.fromkeys(FIELDS, _text),
        ),
        _text,
    ),
    st.one_of(st.floats(1.7e9, 1.9e9), st.integers(0, 10)),
    st.one_of(st.booleans(), st.none()),
)


@settings(max_examples=300, deadline=None)
@given(
    batch=st.lists(_update, max_size=40),
    clock_check=st.booleans(),
    year=st.sampled_from([None, 2026, 2027]),
)
def test_hostile_batches_match_one_by_one(
    batch: list[FeedUpdate], clock_check: bool, year: int | None
) -> None:
    _assert_same(batch, chunk=17, clock_check=clock_check, year=year)


@settings(max_examples=150, deadline=None)
@given(
    start=st.datetimes(
        min_value=datetime(2024, 12, 30), max_value=datetime(2027, 1, 2), timezones=st.just(UTC)
    ),
    steps=st.lists(st.integers(-90_000, 120_000), min_size=1, max_size=60),
    year_item=st.sampled_from([None, 2024, 2025, 2026, 2027]),
)
def test_time_jumps_around_new_year_match_one_by_one(
    start: datetime, steps: list[int], year_item: int | None
) -> None:
    batch: list[FeedUpdate] = []
    when = start
    for k, ms in enumerate(steps):
        when += timedelta(milliseconds=ms)
        item = "TIME_000002" if year_item and k % 7 == 3 else ITEMS[k % 2]
        value = str(year_item) if item == "TIME_000002" else "1.5"
        batch.append((item, _fields(format_timestamp(when), value), when.timestamp(), False))
    _assert_same(batch, chunk=9, clock_check=False)


def test_decode_micros_is_timedelta_exactly() -> None:
    rng = random.Random(7)
    hours = [24.0 + rng.random() * 365 * 24 for _ in range(50_000)]
    hours += [24.0 + k / 3600 / 1e6 * 0.5 for k in range(2000)]  # half-microsecond ties
    hours += [float(f"{24 + rng.random() * 8000:.7f}") for _ in range(20_000)]  # as the feed
    for year in (2024, 2026):
        micros = columns.decode_micros(np.array(hours), year_start_us(year))
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        for h, us in zip(hours, micros.tolist(), strict=True):
            expected = decode_hours(h, year)
            assert expected is not None
            assert epoch + timedelta(microseconds=us) == expected, (h, year)


def test_event_ids_match_the_one_row_function() -> None:
    rng = random.Random(3)
    micros = [1_700_000_000_000_000 + rng.randrange(10**12) for _ in range(3000)]
    values = [rng.uniform(-1e6, 1e6) for _ in range(3000)]
    items = [ITEMS[k % len(ITEMS)] for k in range(3000)]
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    ids = columns.event_ids(EVENT_NAMESPACE_BYTES, items, micros, values)
    for item, us, value, eid in zip(items, micros, values, ids, strict=True):
        assert eid == event_id(item, epoch + timedelta(microseconds=us), value)
    assert columns.event_ids(EVENT_NAMESPACE_BYTES, [], [], []) == []


def test_number_column_agrees_with_parse_number() -> None:
    from peebot_ingest.fields import parse_number

    raw = ["1", " 2.5 ", "1e3", "nan", "inf", "1_0", "0x10", "", "１２", "9" * 70, "-0.0", "abc"]
    values, ok = columns.number_column(raw)
    for text, value, usable in zip(raw, values.tolist(), ok.tolist(), strict=True):
        expected = parse_number(text)
        assert usable == (expected is not None), text
        if usable:
            assert value == expected
    clean, all_ok = columns.number_column(["1.5", "2", "-3e-2"])
    assert all_ok.all() and clean.tolist() == [1.5, 2.0, -0.03]


def test_times_are_exact_in_every_plausible_year() -> None:
    """Times stay integers (microseconds) all the way to the COPY: the column-wise path is
    exact from the first plausible year to the last, and its readings' datetimes too."""
    for year in (MIN_YEAR, 2026, 2150, MAX_YEAR):
        batch = _stream(datetime(year, 3, 1, tzinfo=UTC), 300, 100)
        one, many = _twins(year=year, clock_check=False)
        got = many.updates(batch)
        assert got == [one.update(*u) for u in batch]
        assert many.column_wise >= 0.9 * len(batch), (year, many.column_wise)
        first = got[0]
        assert isinstance(first, ValidatedReading)
        assert first.ts == datetime(year, 3, 1, tzinfo=UTC) and first.ts.tzinfo is UTC
