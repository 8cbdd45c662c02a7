"""The compiled loops (`peebot_ingest._speedups`) give exactly what the Python loops give:
the same event ids, update columns, readings and COPY bytes, on random and edge input; what
they do not take falls back to the Python loops; and the writer stores the same rows either
way. Skipped where the loops were not built (no C compiler or headers at install time)."""

from __future__ import annotations

import contextlib
import gc
import io
import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.copy import Copy, FileWriter

from peebot_ingest import batch_validate, columns, copy_rows, speedups
from peebot_ingest.batch import Batch
from peebot_ingest.batch_validate import UpdateColumns, _meta_tail
from peebot_ingest.fields import CLASS_TEXT
from peebot_ingest.records import EVENT_NAMESPACE_BYTES, ValidatedReading
from peebot_ingest.sink import DatabaseSink
from peebot_ingest.storable import MAX_TEXT

native = speedups.native
pytestmark = pytest.mark.skipif(
    native is None,
    reason="the compiled loops were not built here (no C compiler, or no Python or OpenSSL "
    "headers, when the package was installed): the Python loops run, tested by the rest",
)
ITEMS = ["NODE3000005", "NODE3000004", "TIME_000001", "TIME_000002", "USLAB000058"]
CHANNELS = {item: k + 1 for k, item in enumerate(ITEMS)}


@contextlib.contextmanager
def python_loops() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(speedups, "native", None)
        yield


# -- event ids ---------------------------------------------------------------------------

floats = st.floats(allow_nan=True, allow_infinity=True)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(ITEMS),
            st.integers(-(2**62), 2**62),
            floats | st.sampled_from([0.0, -0.0, 1e16, 1e-7, 5e-324, 44.0, 0.1 + 0.2]),
        ),
        max_size=50,
    )
)
def test_event_ids_are_the_python_loops_ids(rows: list[tuple[str, int, float]]) -> None:
    items, micros, values = (list(c) for c in zip(*rows, strict=True)) if rows else ([], [], [])
    got = columns.event_ids(EVENT_NAMESPACE_BYTES, items, micros, values)
    with python_loops():
        assert got == columns.event_ids(EVENT_NAMESPACE_BYTES, items, micros, values)


def test_event_ids_the_compiled_loop_does_not_take_go_to_python() -> None:
    assert native is not None
    with pytest.raises(TypeError):
        native.event_ids(EVENT_NAMESPACE_BYTES, ["NODE3000005"], [1], [44])
    # the caller falls back: the same id as for 44 in Python
    with python_loops():
        expected = columns.event_ids(EVENT_NAMESPACE_BYTES, ["NODE3000005"], [1], [44])
    assert columns.event_ids(EVENT_NAMESPACE_BYTES, ["NODE3000005"], [1], [44]) == expected
    # a name longer than the compiled loop's buffer: the Python loop too
    long_name = ["N" * 600]
    with pytest.raises(ValueError, match="too long"):
        native.event_ids(EVENT_NAMESPACE_BYTES, long_name, [1], [44.0])
    with python_loops():
        expected = columns.event_ids(EVENT_NAMESPACE_BYTES, long_name, [1], [44.0])
    assert columns.event_ids(EVENT_NAMESPACE_BYTES, long_name, [1], [44.0]) == expected


# -- update columns ----------------------------------------------------------------------

number_text = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.integers(-(10**6), 10**6).map(str),
    st.sampled_from(["1e3", "+4.5", " 12.5 ", "\t7\n", "\x1c3\x1f", "00042", "-0", ".5"]),
)
clean_class = st.sampled_from(["24", "0", "255", "", None])
clean_text = st.one_of(
    st.none(), st.just(""), st.text(st.characters(max_codepoint=127, exclude_characters="\x00"))
)
any_text = st.one_of(st.none(), st.just(""), st.text(max_size=20))


@st.composite
def clean_update(draw: Any) -> tuple[str, dict[str, Any], float, bool]:
    fields = {
        "TimeStamp": draw(number_text),
        "Value": draw(number_text),
        "Status.Class": draw(clean_class),
        "Status.Indicator": draw(any_text),
        "Status.Color": draw(any_text),
        "CalibratedData": draw(clean_text),
    }
    for key in draw(st.sets(st.sampled_from(sorted(fields)))):  # fields the feed left out
        if key not in ("TimeStamp", "Value"):
            del fields[key]
    received = draw(st.floats(0, 4e9))
    return (draw(st.sampled_from(ITEMS)), fields, received, draw(st.booleans()))


def _same_columns(a: UpdateColumns, b: UpdateColumns) -> None:
    for name in ("items", "classes", "calibrated", "received_list", "metadata"):
        assert getattr(a, name) == getattr(b, name), name
    for name in ("hours", "values", "value_list", "received", "clean"):  # NaN == NaN here
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.year_rows == b.year_rows


@settings(max_examples=200)
@given(st.lists(clean_update(), max_size=40))
def test_clean_batches_give_the_python_columns(batch: list[Any]) -> None:
    assert native is not None
    # a value of +-inf or nan from a huge literal is not clean: those rows are the fallback's
    taken = native.update_columns(
        batch, set(ITEMS), CLASS_TEXT, MAX_TEXT, batch_validate._META_TAILS, _meta_tail
    )
    with python_loops():
        expected = UpdateColumns(batch, set(ITEMS))
    assert (taken is not None) == bool(expected.clean.all())
    _same_columns(UpdateColumns(batch, set(ITEMS)), expected)


UNCLEAN = {
    "item not known yet": ("NODE9999999", {}),  # the Python columns learn it
    "item not text": (5, {}),
    "fields not a dict": ("NODE3000005", None),
    "TimeStamp missing": ("NODE3000005", {"TimeStamp": None}),
    "TimeStamp not text": ("NODE3000005", {"TimeStamp": 2904.5}),
    "TimeStamp with _": ("NODE3000005", {"TimeStamp": "2_904.5"}),
    "TimeStamp not ASCII": ("NODE3000005", {"TimeStamp": "٢٩٠٤"}),
    "TimeStamp too long": ("NODE3000005", {"TimeStamp": "1" + "0" * 64}),
    "TimeStamp nan": ("NODE3000005", {"TimeStamp": "nan"}),
    "Value inf": ("NODE3000005", {"Value": "1e999"}),
    "Value empty": ("NODE3000005", {"Value": ""}),
    "Value with NUL": ("NODE3000005", {"Value": "4\x004"}),
    "class out of range": ("NODE3000005", {"Status.Class": "256"}),
    "class padded": ("NODE3000005", {"Status.Class": " 24"}),
    "class a number": ("NODE3000005", {"Status.Class": 24}),
    "calibrated too long": ("NODE3000005", {"CalibratedData": "x" * (MAX_TEXT + 1)}),
    "calibrated with NUL": ("NODE3000005", {"CalibratedData": "a\x00b"}),
    "calibrated not ASCII": ("NODE3000005", {"CalibratedData": "é"}),
    "indicator a number": ("NODE3000005", {"Status.Indicator": 0}),
    "received an int": ("NODE3000005", {}, 1_780_000_000),
    "received nan": ("NODE3000005", {}, math.nan),
    "snapshot an int": ("NODE3000005", {}, 1_780_000_000.0, 1),
}


@pytest.mark.parametrize("case", list(UNCLEAN), ids=list(UNCLEAN))
def test_one_unclean_update_leaves_the_batch_to_python(case: str) -> None:
    assert native is not None
    item, change, *rest = UNCLEAN[case]
    fields = {"TimeStamp": "2904.5", "Value": "44", "Status.Class": "24", "CalibratedData": "44"}
    update = (
        item,
        None if change is None else {**fields, **change},
        rest[0] if rest else 1_780_000_000.0,
        rest[1] if len(rest) > 1 else False,
    )
    clean = ("NODE3000004", fields, 1_780_000_000.0, False)
    batch = [clean, update, clean]
    good = set(ITEMS)
    tails = batch_validate._META_TAILS
    assert native.update_columns(batch, good, CLASS_TEXT, MAX_TEXT, tails, _meta_tail) is None
    with python_loops():
        expected = UpdateColumns(batch, set(ITEMS))
    unclean = case != "item not known yet"
    assert expected.clean.tolist() == [True, not unclean, True]
    _same_columns(UpdateColumns(batch, set(ITEMS)), expected)


# -- readings ----------------------------------------------------------------------------


def test_readings_are_equal_tuples_the_collector_does_not_walk() -> None:
    assert native is not None
    cols: list[list[Any]] = [
        ["NODE3000005", "NODE3000004"],
        [1, -(2**60)],
        [44.0, -0.0],
        [24, None],
        ["44", None],
        [b"\x01" * 16, b"\x02" * 16],
        [1.5, 2.5],
        ['{"raw_ts": "1"}', None],
    ]
    built = native.readings(ValidatedReading, *cols, "feed")
    expected = [ValidatedReading(*row, "feed") for row in zip(*cols, strict=True)]
    assert built == expected
    assert all(type(r) is ValidatedReading for r in built)
    assert not any(gc.is_tracked(r) for r in built)
    assert built[0].ts == datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC)
    with pytest.raises(TypeError, match="not a plain value"):
        native.readings(ValidatedReading, *cols[:-1], [[], None], "feed")
    class Text(str):  # a subclass may hold references: never untracked
        pass

    with pytest.raises(TypeError, match="not a plain value"):
        native.readings(ValidatedReading, *cols, Text("feed"))
    with pytest.raises(ValueError, match="different lengths"):
        native.readings(ValidatedReading, *cols[:-1], [None], "feed")


# -- COPY rows ---------------------------------------------------------------------------

received_times = st.one_of(
    st.floats(0, 4e9),
    # exactly half a microsecond: rounded half to even, as datetime.fromtimestamp does
    st.integers(0, 4 * 10**15).map(lambda us: (us + 0.5) / 1e6),
    st.sampled_from([0.0, 1.0000005, 1_780_000_000.0000025, 1e9 + 0.9999995]),
)


@st.composite
def reading(draw: Any) -> ValidatedReading:
    return ValidatedReading(
        draw(st.sampled_from(ITEMS)),
        draw(st.integers(-(2**62), 2**62)),
        draw(floats),
        draw(st.none() | st.integers(-(2**15), 2**15 - 1)),
        draw(st.none() | st.text(st.characters(exclude_categories=["Cs"]), max_size=30)),
        draw(st.binary(min_size=16, max_size=16)),
        draw(received_times),
        draw(st.none() | st.text(st.characters(exclude_categories=["Cs"]), max_size=60)),
        "feed",
    )


@pytest.fixture(scope="module")
def adapting(pg_server: Any) -> Iterator[psycopg.Connection[Any]]:
    """A connection for psycopg's adapters (nothing is sent to the server)."""
    with psycopg.connect(pg_server.admin_url) as conn:
        yield conn


def _psycopg_bytes(
    conn: psycopg.Connection[Any], rows: list[ValidatedReading], direct: bool
) -> bytes:
    out = io.BytesIO()
    with Copy(conn.cursor(), binary=True, writer=FileWriter(out)) as copy:
        copy_rows.write_rows(copy, rows, CHANNELS, direct=direct)
    return out.getvalue()


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(reading(), max_size=30), st.booleans())
def test_copy_rows_are_psycopgs_bytes(
    adapting: psycopg.Connection[Any], rows: list[ValidatedReading], direct: bool
) -> None:
    assert native is not None
    expected = _psycopg_bytes(adapting, rows, direct)
    assert (
        copy_rows.SIGNATURE + native.copy_rows(rows, CHANNELS, direct) + copy_rows.TRAILER
        == expected
    )


def test_what_the_compiled_copy_does_not_take_is_refused_whole() -> None:
    assert native is not None
    good = ValidatedReading("NODE3000005", 1, 44.0, 24, None, b"\x00" * 16, 1.5, None, "feed")
    for bad, error in [
        (good._replace(received_at=2), TypeError),  # an int receipt time: psycopg adapts it
        (good._replace(status_class=70_000), OverflowError),
        (good._replace(value=44), TypeError),
        (good._replace(received_at=math.inf), OverflowError),
        (good._replace(item_id="NODE9999999"), KeyError),
    ]:
        with pytest.raises(error):
            native.copy_rows([good, bad], CHANNELS, True)


def _stored(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT c.item_id, r.ts, r.value, r.status_class, r.calibrated_data, r.event_id, "
            "r.ingested_at, r.metadata FROM telemetry_reading r "
            "JOIN telemetry_channel c ON c.id = r.channel_id ORDER BY c.item_id, r.ts"
        ).fetchall()


def _sample(n: int, start: int = 0, received: Any = 1_780_000_000.123456) -> list[ValidatedReading]:
    """`n` readings, one a second from 2026-03-01 + `start` s, with every kind of field."""
    t0 = datetime(2026, 3, 1, tzinfo=UTC) + timedelta(seconds=start)
    out = []
    for k in range(n):
        micros = int((t0 + timedelta(seconds=k)).timestamp()) * 1_000_000 + k
        out.append(
            ValidatedReading(
                ITEMS[k % len(ITEMS)],
                micros,
                k / 7,
                None if k % 3 else 24,
                None if k % 2 else f"{k / 7:.2f}",
                columns.event_ids(EVENT_NAMESPACE_BYTES, [ITEMS[k % 5]], [micros], [k / 7])[0],
                received if k % 4 else received + k / 3,
                None if k % 5 == 0 else f'{{"raw_ts": "{k}", "note": "é"}}',
                "feed",
            )
        )
    return out


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "staging"])
def test_the_writer_stores_the_same_rows_either_way(
    db_url: str, empty_db_url: str, direct: bool
) -> None:
    """The same batches through the compiled loops and through the Python loops, into two
    databases: the same rows. One run of the batch has an int receipt time, which the
    compiled COPY does not take: it goes by `write_row` inside the same COPY."""
    from peebot_ingest.migrations import migrate
    from peebot_ingest.streamed_batch import StreamedBatch

    migrate(empty_db_url, timescale="off")
    runs = [_sample(300), _sample(5, 300, received=1_780_000_001), _sample(295, 305)]
    for url, loops in ((db_url, contextlib.nullcontext()), (empty_db_url, python_loops())):
        with loops:
            sink = DatabaseSink(url)
            sink.note_duplicates(staged=1, inserted=1 if direct else 0)
            stream = StreamedBatch(sink)
            for run in runs:
                stream.add(run)
            result = stream.commit()
            assert (result.written, result.duplicates) == (600, 0), result
            # and a whole batch written at once
            assert sink.write(Batch(readings=_sample(50, received=7.25))).written == 0
            sink.close()
    assert _stored(db_url) == _stored(empty_db_url)
    assert len(_stored(db_url)) == 600
