"""Validation and enrichment: TimeStamp decoding, hostile input, dedupe key stability."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from peebot_ingest.records import EVENT_NAMESPACE, Rejection, ValidatedReading, event_id
from peebot_ingest.validate import Validator
from peebot_ingest.years import YearTracker, decode_hours
from peebot_iss.catalog import FIELDS
from peebot_iss.timestamps import decode_timestamp, encode_timestamp, format_timestamp

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC).timestamp()


def _fields(ts: str, value: str = "67", klass: str = "24") -> dict[str, str]:
    return {
        "TimeStamp": ts,
        "Value": value,
        "Status.Class": klass,
        "Status.Indicator": "",
        "Status.Color": "",
        "CalibratedData": "",
    }


def test_timestamp_decodes_to_utc() -> None:
    v = Validator(clock_check=False)
    r = v.update("NODE3000005", _fields("4224.0145"), NOW)
    assert isinstance(r, ValidatedReading)
    # day 176 (4224 // 24) of 2026 = 25 Jun, 0.0145 h = 52.2 s
    assert r.ts == datetime(2026, 6, 25, 0, 0, 52, 200000, tzinfo=UTC)
    assert r.value == 67.0 and r.status_class == 24
    assert json.loads(r.metadata or "{}")["raw_ts"] == "4224.0145"


def test_year_from_time_000002_wins_over_the_clock() -> None:
    v = Validator(clock_check=False)
    before = v.update("NODE3000004", _fields("1000.5", "16"), NOW)
    assert (
        isinstance(before, ValidatedReading) and before.ts.year == 2026
    )  # not known yet: the clock
    year = v.update("TIME_000002", _fields("1000.5", "2019"), NOW)
    assert (
        isinstance(year, ValidatedReading) and year.ts.year == 2019
    )  # its own time is in its year
    r = v.update("NODE3000005", _fields("1000.5"), NOW)
    assert isinstance(r, ValidatedReading)
    assert r.ts == decode_timestamp(1000.5, 2019)


def test_new_year_rollover_31_dec_to_1_jan() -> None:
    v = Validator(clock_check=False)
    assert isinstance(
        v.update(
            "TIME_000002",
            _fields(format_timestamp(datetime(2025, 12, 31, 23, 59, 50, tzinfo=UTC)), "2025"),
            NOW,
        ),
        ValidatedReading,
    )
    late = v.update(
        "TIME_000001",
        _fields(format_timestamp(datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC))),
        NOW,
    )
    assert isinstance(late, ValidatedReading) and late.ts.year == 2025
    # TIME_000002 still says 2025, but the day counter wrapped: 1 Jan 2026
    jan = v.update("TIME_000001", _fields("24.0005"), NOW)
    assert isinstance(jan, ValidatedReading)
    assert jan.ts == datetime(2026, 1, 1, 0, 0, 1, 800000, tzinfo=UTC)
    # a delayed 31 Dec reading seen after midnight stays in the old year
    old = v.update(
        "NODE3000005",
        _fields(format_timestamp(datetime(2025, 12, 31, 23, 59, 58, tzinfo=UTC))),
        NOW,
    )
    assert isinstance(old, ValidatedReading) and old.ts.year == 2025
    # TIME_000002 turns; later readings stay in 2026
    assert isinstance(v.update("TIME_000002", _fields("24.001", "2026"), NOW), ValidatedReading)
    again = v.update("NODE3000005", _fields("24.002"), NOW)
    assert isinstance(again, ValidatedReading) and again.ts.year == 2026


def test_rollover_from_the_clock_when_no_year_item() -> None:
    just_after = datetime(2027, 1, 1, 0, 0, 3, tzinfo=UTC).timestamp()
    v = Validator(clock_check=False)
    r = v.update(
        "NODE3000005",
        _fields(format_timestamp(datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC))),
        just_after,
    )
    assert isinstance(r, ValidatedReading) and r.ts.year == 2026


def test_leap_years() -> None:
    # 2024 is a leap year: day 366 exists (31 Dec) and 29 Feb is day 60
    v = Validator(clock_check=False, years=YearTracker(2024))
    r = v.update("NODE3000005", _fields(str(366 * 24 + 23.5)), NOW)
    assert isinstance(r, ValidatedReading) and r.ts == datetime(2024, 12, 31, 23, 30, tzinfo=UTC)
    # (a fresh stream: after 31 Dec, day 60 would rightly be read as next year's)
    feb29 = Validator(clock_check=False, years=YearTracker(2024)).update(
        "NODE3000005", _fields(str(60 * 24 + 1)), NOW
    )
    assert isinstance(feb29, ValidatedReading) and feb29.ts == datetime(2024, 2, 29, 1, tzinfo=UTC)
    # 2025 is not: day 366 is out of range
    v25 = Validator(clock_check=False, years=YearTracker(2025))
    bad = v25.update("NODE3000005", _fields(str(366 * 24 + 1)), NOW)
    assert isinstance(bad, Rejection) and "outside" in bad.reason
    assert decode_hours(60 * 24 + 1, 2025) == datetime(2025, 3, 1, 1, tzinfo=UTC)
    assert decode_hours(2000 * 1.0, 2100) == decode_timestamp(2000.0, 2100)  # 2100: not leap


@given(st.floats(min_value=24.0, max_value=366 * 24 + 23.99), st.integers(1998, 2200))
def test_decode_hours_matches_the_foundation(hours: float, year: int) -> None:
    if hours >= (366 if year % 4 == 0 and (year % 100 or year % 400 == 0) else 365) * 24 + 24:
        assert decode_hours(hours, year) is None
    else:
        assert decode_hours(hours, year) == decode_timestamp(hours, year)


def test_event_id_is_uuid5_and_stable() -> None:
    ts = datetime(2023, 9, 19, 11, 26, 45, tzinfo=UTC)
    micros = (ts - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    expected = uuid.uuid5(EVENT_NAMESPACE, f"NODE3000005|{micros}|44.0")
    assert event_id("NODE3000005", ts, 44.0) == expected.bytes
    assert uuid.UUID(bytes=event_id("NODE3000005", ts, 44.0)).version == 5
    # pinned: changing the key would make every re-sent update a new row
    assert str(expected) == str(uuid.UUID(bytes=event_id("NODE3000005", ts, 44.0)))
    assert event_id("NODE3000005", ts, 45.0) != expected.bytes
    assert event_id("NODE3000004", ts, 44.0) != expected.bytes
    assert event_id("NODE3000005", ts + timedelta(microseconds=1), 44.0) != expected.bytes


def test_same_reading_from_feed_replay_and_inject_has_one_key() -> None:
    feed = Validator(clock_check=False, years=YearTracker(2023))
    from_feed = feed.update("NODE3000005", _fields("6176.5", "44"), NOW)
    from_snapshot = feed.update("NODE3000005", _fields("6176.5", "44.0"), NOW + 5, snapshot=True)
    assert isinstance(from_feed, ValidatedReading) and isinstance(from_snapshot, ValidatedReading)
    replay = Validator(source="replay", clock_check=False)
    from_file = replay.reading("NODE3000005", from_feed.ts, 44.0)
    assert isinstance(from_file, ValidatedReading)
    assert from_feed.event_id == from_snapshot.event_id == from_file.event_id
    assert encode_timestamp(from_feed.ts) == 6176.5


def test_clock_check_rejects_far_future_only_when_on() -> None:
    future = format_timestamp(datetime(2026, 6, 3, tzinfo=UTC))
    strict = Validator(clock_check=True, years=YearTracker(2026))
    r = strict.update("NODE3000005", _fields(future), NOW)
    assert isinstance(r, Rejection) and "ahead of the clock" in r.reason
    relaxed = Validator(clock_check=False, years=YearTracker(2026))
    assert isinstance(relaxed.update("NODE3000005", _fields(future), NOW), ValidatedReading)


def test_bad_updates_are_rejected_with_reasons() -> None:
    v = Validator(clock_check=False)
    cases = {
        "TimeStamp": ("NODE3000005", _fields("abc")),
        "outside": ("NODE3000005", _fields("5.0")),
        "Value": ("NODE3000005", _fields("100.0", "NaN")),
        "Status.Class": ("NODE3000005", _fields("100.0", "1", "x")),
        "item name": ("node 5; drop", _fields("100.0")),
        "not a mapping": ("NODE3000005", ["100.0"]),
    }
    for expected, (item, fields) in cases.items():
        r = v.update(item, fields, NOW)
        assert isinstance(r, Rejection), expected
        assert expected in r.reason
        json.dumps(r.raw_payload)  # always storable
    for bad_value in ("inf", "1_000", "0x10", "", None, "１２"):
        assert isinstance(v.update("X", _fields("100.0", bad_value)), Rejection)  # type: ignore[arg-type]
    assert isinstance(v.update("UNKNOWN_ITEM_1", _fields("100.0", "-3.5e2")), ValidatedReading)


_text = st.one_of(
    st.none(),
    st.text(max_size=30),
    st.from_regex(r"-?\d{1,6}(\.\d{0,6})?", fullmatch=True),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=3),
)
_fields_strategy = st.one_of(
    st.dictionaries(
        st.sampled_from([*FIELDS, "junk"]),
        _text,
    ),
    _text,
)


@settings(max_examples=400, deadline=None)
@given(
    item=st.one_of(
        st.text(max_size=70),
        st.sampled_from(["NODE3000005", "TIME_000001"]),
        st.none(),
        st.integers(),
    ),
    fields=_fields_strategy,
    received=st.floats(min_value=0, max_value=2e10),
    snapshot=st.booleans(),
)
def test_hostile_input_never_raises(
    item: object, fields: object, received: float, snapshot: bool
) -> None:
    v = Validator(clock_check=True)
    r = v.update(item, fields, received, snapshot)
    if isinstance(r, Rejection):
        assert r.reason and not r.reason.startswith("internal error"), r.reason
        encoded = json.dumps(r.raw_payload, ensure_ascii=False)
        assert "\x00" not in encoded
        encoded.encode("utf-8")
    else:
        assert isinstance(r, ValidatedReading)
        assert r.ts.tzinfo is not None and len(r.event_id) == 16
        assert r.value == r.value and abs(r.value) != float("inf")
        json.loads(r.metadata or "{}")
        for text in (r.calibrated_data or "", r.metadata or ""):
            assert "\x00" not in text
            text.encode("utf-8")


@settings(max_examples=200, deadline=None)
@given(
    item=st.from_regex(r"[A-Z0-9_]{1,20}", fullmatch=True),
    ts=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    value=st.floats(allow_nan=False, allow_infinity=False),
)
def test_valid_readings_are_accepted_and_keys_deterministic(
    item: str, ts: datetime, value: float
) -> None:
    a = Validator(source="replay", clock_check=False).reading(item, ts, value)
    b = Validator(source="inject", clock_check=False).reading(item, ts, repr(value))
    assert isinstance(a, ValidatedReading) and isinstance(b, ValidatedReading)
    assert a.event_id == b.event_id


@settings(max_examples=300, deadline=None)
@given(
    hours=st.floats(min_value=24.0, max_value=366 * 24 + 23.99),
    ref=st.datetimes(
        min_value=datetime(2001, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(UTC)
    ),
)
def test_year_rule_is_infer_year(hours: float, ref: datetime) -> None:
    from peebot_iss.timestamps import infer_year

    years = YearTracker()
    years.observe("NODE3000005", ref, 1.0)
    assert years.year_for(hours, 0.0) == infer_year(hours, ref)
    clock_only = YearTracker()
    assert clock_only.year_for(hours, ref.timestamp()) == infer_year(hours, ref)


def test_time_and_class_of_a_rejected_time_update() -> None:
    v = Validator(clock_check=False, years=YearTracker(2026))
    fields = _fields("1000.5", "not a number", "24")
    assert isinstance(v.update("TIME_000001", fields, NOW), Rejection)
    assert v.time_and_class(fields, NOW) == (decode_timestamp(1000.5, 2026), 24)
    assert v.time_and_class(_fields("x"), NOW) is None
    assert v.time_and_class("junk", NOW) is None
