"""The streaming bulk path (`BulkLoader` / `StreamedBatch`) against a real PostgreSQL: rows
go into an open COPY as they are added; duplicates, new items, refused data and a lost
connection end up as `DatabaseSink.write` would have them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from peebot_ingest.batch import Batch, BatchResult
from peebot_ingest.bulk_loader import BulkLoader
from peebot_ingest.migrations import migrate
from peebot_ingest.records import FeedTransition, Rejection, ValidatedReading
from peebot_ingest.sink import DatabaseSink, DatabaseUnavailable
from tests.support.sample_readings import T0, readings


def _readings(n: int, item: str = "NODE3000005", start: datetime = T0) -> list[ValidatedReading]:
    return readings(n, item, start, calibrated=True)


def _table(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT c.item_id, r.ts, r.value, r.status_class, r.calibrated_data, r.event_id, "
            "r.metadata FROM telemetry_reading r JOIN telemetry_channel c ON c.id = r.channel_id "
            "ORDER BY c.item_id, r.ts"
        ).fetchall()


def test_streamed_rows_equal_the_batch_writer_rows(db_url: str, empty_db_url: str) -> None:
    readings = _readings(2500) + _readings(700, item="NODE3000004")
    committed: list[tuple[int, BatchResult]] = []
    loader = BulkLoader(
        DatabaseSink(db_url),
        batch_rows=1000,
        on_commit=lambda b, r: committed.append((len(b.readings), r)),
    )
    for k in range(0, len(readings), 300):
        loader.extend(readings[k : k + 300])
    counters = loader.close()
    assert (counters.written, counters.duplicates, counters.batches) == (3200, 0, 4)
    assert [n for n, _ in committed] == [1000, 1000, 1000, 200]
    assert all(r.written == n for n, r in committed)
    # the same readings through DatabaseSink.write: the very same rows
    migrate(empty_db_url, timescale="off")
    sink = DatabaseSink(empty_db_url)
    sink.write(Batch(readings=readings))
    sink.close()
    assert _table(db_url) == _table(empty_db_url)
    with psycopg.connect(db_url) as conn:
        last = conn.execute(
            "SELECT last_processed_at FROM processor_state WHERE processor_name = 'ingest'"
        ).fetchone()[0]
    assert last == T0 + timedelta(seconds=2499)


def test_duplicates_mid_stream_fall_back_to_staging_once(db_url: str) -> None:
    first = BulkLoader(DatabaseSink(db_url), batch_rows=10_000)
    first.extend(_readings(1000))
    assert first.close().written == 1000
    fresh = _readings(500, start=T0 + timedelta(hours=1))
    later = _readings(500, start=T0 + timedelta(hours=2))
    loader = BulkLoader(DatabaseSink(db_url), batch_rows=10_000)
    loader.extend(fresh)  # streamed straight into telemetry_reading
    loader.extend(_readings(1000)[400:900])  # 500 already stored: the direct COPY fails
    loader.extend(later)  # the rest of the batch goes by staging
    loader.extend(fresh[:10])  # duplicates inside the batch
    counters = loader.close()
    assert (counters.written, counters.duplicates) == (1000, 510)
    rows = _table(db_url)
    assert len(rows) == 2000 and len({r[5] for r in rows}) == 2000
    # the next load starts on the staging path (a batch with duplicates tends to be followed
    # by more) and still counts right
    again = BulkLoader(DatabaseSink(db_url), batch_rows=10_000)
    again.extend(later + _readings(5, start=T0 + timedelta(hours=3)))
    assert (again.close().written, again.counters.duplicates) == (5, 500)


def test_new_item_mid_stream_survives_a_rolled_back_segment(db_url: str) -> None:
    seeded = BulkLoader(DatabaseSink(db_url))
    seeded.extend(_readings(100))
    seeded.close()
    loader = BulkLoader(DatabaseSink(db_url), batch_rows=10_000)
    loader.extend(_readings(50, start=T0 + timedelta(hours=1)))
    # a new item: the open COPY ends, the channel is added outside the savepoint
    loader.extend(_readings(30, item="NEWITEM_7"))
    # then a duplicate fails the new COPY segment; its readings (and NEWITEM_7's) are staged
    loader.extend(_readings(30, item="NEWITEM_7", start=T0 + timedelta(minutes=5)))
    loader.extend(_readings(100)[:20])
    counters = loader.close()
    assert (counters.written, counters.duplicates) == (110, 20)
    with psycopg.connect(db_url) as conn:
        channel = conn.execute(
            "SELECT in_catalog, is_active FROM telemetry_channel WHERE item_id = 'NEWITEM_7'"
        ).fetchone()
    assert channel == (False, False)
    rows = _table(db_url)
    assert sum(r[0] == "NEWITEM_7" for r in rows) == 60 and len(rows) == 210


def test_rejections_and_transitions_ride_along(db_url: str) -> None:
    rejection = Rejection("replay", "NODE3000005", "Value 'x' is not a number", {"v": "x"}, 1.0)
    transition = FeedTransition("signal", "LOS", 2.0, T0, {"why": "test"})
    loader = BulkLoader(DatabaseSink(db_url), batch_rows=100)
    loader.add(rejection)
    for r in _readings(150):
        loader.add(r)
    loader.add(transition)
    counters = loader.close()
    assert (counters.written, counters.rejected, counters.transitions) == (150, 1, 1)
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM rejected_update").fetchone()[0] == 1
        assert conn.execute("SELECT state FROM feed_status").fetchone()[0] == "LOS"


def test_refused_data_becomes_rejections(db_url: str) -> None:
    good = _readings(20)
    bad = good[5]._replace(calibrated_data="a\x00b")  # text PostgreSQL cannot store
    loader = BulkLoader(DatabaseSink(db_url), batch_rows=1000)
    loader.extend([*good[:5], bad, *good[6:]])
    counters = loader.close()
    assert (counters.written, counters.rejected) == (0, 20)
    assert _table(db_url) == []
    with psycopg.connect(db_url) as conn:
        reasons = [r[0] for r in conn.execute("SELECT reason FROM rejected_update")]
        payloads = [r[0] for r in conn.execute("SELECT raw_payload FROM rejected_update")]
    assert len(reasons) == 20 and all(r.startswith("database refused the batch") for r in reasons)
    # each reading kept, the one PostgreSQL could not store made storable
    assert sorted(p["fields"]["ts"] for p in payloads) == sorted(r.ts.isoformat() for r in good)
    assert [p["fields"]["calibrated_data"] for p in payloads].count("a\ufffdb") == 1
    # the next load is unaffected
    again = BulkLoader(DatabaseSink(db_url))
    again.extend(good)
    assert again.close().written == 20


def test_lost_connection_raises_unavailable_and_a_rerun_completes(db_url: str) -> None:
    readings = _readings(3000)
    sink = DatabaseSink(db_url)
    loader = BulkLoader(sink, batch_rows=1000)
    loader.extend(readings[:1500])  # one batch committed, 500 rows in an open COPY
    assert loader.counters.written == 1000
    pid = sink.conn.info.backend_pid  # type: ignore[union-attr]
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(DatabaseUnavailable):
        loader.extend(readings[1500:])
        loader.close()
    assert len(_table(db_url)) == 1000  # the open batch was not committed
    rerun = BulkLoader(DatabaseSink(db_url), batch_rows=1000)
    rerun.extend(readings)
    counters = rerun.close()
    assert (counters.written, counters.duplicates) == (2000, 1000)
    assert len(_table(db_url)) == 3000


@pytest.mark.parametrize("direct", [True, False], ids=["direct", "staging"])
def test_times_at_the_ends_of_the_plausible_years_are_stored_exactly(
    db_url: str, direct: bool
) -> None:
    """A reading's time goes to the server as an integer (microseconds since 2000, which is
    timestamptz's binary form): before 2000 it is negative, after 2038 beyond 32 bits."""
    starts = [
        datetime(1998, 11, 20, 6, 40, 0, 1, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2200, 12, 31, 23, 59, 0, 500_001, tzinfo=UTC),
    ]
    readings = [r for k, t in enumerate(starts) for r in _readings(3, f"NODE300000{k}", t)]
    sink = DatabaseSink(db_url)
    sink.note_duplicates(staged=1, inserted=1 if direct else 0)  # which way the batch goes
    assert sink.expect_no_duplicates is direct
    assert sink.write(Batch(readings=readings)).written == 9
    sink.close()
    stored = {(r[0], r[1]) for r in _table(db_url)}
    assert stored == {(r.item_id, r.ts) for r in readings}
    assert min(ts for _, ts in stored) == starts[0]
