"""The batched writer against a real PostgreSQL: COPY + ON CONFLICT, unknown items,
rejections, watermark, outages with the journal."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from peebot_ingest.batch import Batch
from peebot_ingest.buffered_writer import BufferedWriter, WriterConfig
from peebot_ingest.journal import Journal, decode_entry, encode_entry
from peebot_ingest.records import FeedTransition, Rejection, ValidatedReading
from peebot_ingest.sink import DatabaseSink, DatabaseUnavailable
from peebot_ingest.validate import Validator
from peebot_ingest.years import YearTracker
from tests.support.sample_readings import T0
from tests.support.sample_readings import readings as _readings
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import wait_until


def _rows(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT c.item_id, r.ts, r.value, r.status_class, r.event_id FROM telemetry_reading r "
            "JOIN telemetry_channel c ON c.id = r.channel_id ORDER BY r.ts, c.item_id"
        ).fetchall()


def test_batch_is_written_once_and_duplicates_counted(db_url: str) -> None:
    sink = DatabaseSink(db_url)
    readings = _readings(500)
    first = sink.write(Batch(readings=readings))
    assert (first.written, first.duplicates) == (500, 0)
    # the same batch again (a snapshot re-send, a replay): nothing new
    again = sink.write(
        Batch(readings=readings[:300] + _readings(10, start=T0 + timedelta(hours=1)))
    )
    assert (again.written, again.duplicates) == (10, 300)
    # duplicates inside one batch
    dup = _readings(5, start=T0 + timedelta(hours=2))
    inner = sink.write(Batch(readings=dup + dup))
    assert (inner.written, inner.duplicates) == (5, 5)
    rows = _rows(db_url)
    assert len(rows) == 515
    assert rows[0][:4] == ("NODE3000005", T0, 0.0, 24)
    assert rows[0][4] == readings[0].event_uuid
    sink.close()


def test_watermark_is_monotonic_and_counts_recorded(db_url: str) -> None:
    sink = DatabaseSink(db_url, source="replay")
    sink.write(Batch(readings=_readings(3, start=T0 + timedelta(days=1))))
    sink.write(Batch(readings=_readings(3, start=T0)))  # older data must not move it back
    with psycopg.connect(db_url) as conn:
        last, state = conn.execute(
            "SELECT last_processed_at, state_data FROM processor_state "
            "WHERE processor_name = 'ingest'"
        ).fetchone()
    assert last == T0 + timedelta(days=1, seconds=2)
    assert state["replay"]["written"] == 6
    sink.close()


def test_unknown_items_are_added_not_dropped(db_url: str) -> None:
    sink = DatabaseSink(db_url)
    result = sink.write(Batch(readings=_readings(2, item="NEWITEM_42")))
    assert result.written == 2 and result.new_channels == 1
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT in_catalog, is_active FROM telemetry_channel WHERE item_id = 'NEWITEM_42'"
        ).fetchone()
        catalogued = conn.execute(
            "SELECT count(*) FROM telemetry_channel WHERE in_catalog"
        ).fetchone()[0]
    assert row == (False, False)
    assert catalogued == 337
    assert [r[0] for r in _rows(db_url)] == ["NEWITEM_42", "NEWITEM_42"]


def test_rejections_and_transitions_are_recorded(db_url: str) -> None:
    v = Validator(clock_check=False)
    bad = v.update("NODE3000005", {"TimeStamp": "x\x00y", "Value": "1"}, time.time())
    assert isinstance(bad, Rejection)
    sink = DatabaseSink(db_url)
    t = FeedTransition("signal", "AOS", time.time(), T0, {"why": "Status.Class 24"})
    result = sink.write(Batch(rejections=[bad], transitions=[t]))
    assert (result.rejected, result.transitions) == (1, 1)
    with psycopg.connect(db_url) as conn:
        rej = conn.execute(
            "SELECT source, item_id, reason, raw_payload FROM rejected_update"
        ).fetchone()
        fs = conn.execute("SELECT kind, state, feed_ts FROM feed_status").fetchone()
    assert rej[0:2] == ("feed", "NODE3000005") and "TimeStamp" in rej[2]
    assert rej[3]["fields"]["TimeStamp"] == "x\ufffdy"
    assert fs == ("signal", "AOS", T0)


def test_journal_round_trips_every_entry_kind(tmp_path: Path) -> None:
    v = Validator(clock_check=False, years=YearTracker(2026))
    reading = v.update(
        "NODE3000005",
        {
            "TimeStamp": "1500.123456789",
            "Value": "12.5",
            "Status.Class": "24",
            "Status.Color": "é|%",
        },
        1.5,
    )
    rejection = v.update("NODE3000005", {"TimeStamp": "1"}, 2.5)
    transition = FeedTransition("connection", "CONNECTED:WS-STREAMING", 3.5, None, {"a": 1})
    journal = Journal(tmp_path / "j")
    path = journal.append([reading, rejection, transition])
    assert journal.entries == 3
    again = Journal(tmp_path / "j")  # a new process finds it
    assert again.entries == 3
    (chunk,) = list(again.read(path, 10))
    assert chunk == [reading, rejection, transition]
    assert decode_entry(encode_entry(reading)) == reading
    path.write_text(path.read_text() + "{broken\n")
    third = Journal(tmp_path / "j")
    (chunk,) = list(third.read(path, 10))
    assert isinstance(chunk[-1], Rejection) and "unreadable journal line" in chunk[-1].reason


def test_outage_spills_to_journal_and_everything_lands_once(db_url: str, tmp_path: Path) -> None:
    proxy = TcpProxy.for_database(db_url)
    try:
        url = proxy.url_for(db_url)
        journal = Journal(tmp_path / "journal")
        writer = BufferedWriter(
            DatabaseSink(url, connect_timeout=2),
            journal,
            WriterConfig(
                batch_rows=100,
                batch_seconds=0.01,
                memory_rows=250,
                retry_initial=0.05,
                retry_max=0.2,
            ),
        )
        readings = _readings(2000)
        writer.extend(readings[:300])
        assert writer.flush()
        proxy.refuse()  # the database goes away mid-stream
        for r in readings[300:1500]:
            writer.add(r)
            writer.maybe_flush()
        assert writer.db_up is False and writer.counters.outages == 1
        assert writer.counters.spilled > 0 and journal.entries > 0
        assert len(writer.pending) <= 250
        proxy.resume()
        writer.extend(readings[1500:])

        def drained() -> bool:
            writer.maybe_flush()
            return not writer.backlog

        wait_until(drained, timeout=60, interval=0.01, message="the backlog written back")
        assert writer.close()
        assert writer.db_up is True
        assert not list((tmp_path / "journal").glob("*.jsonl"))
    finally:
        proxy.close()
    rows = _rows(db_url)
    assert len(rows) == 2000
    assert sorted(r[4] for r in rows) == sorted(r.event_uuid for r in readings)
    assert writer.counters.written == 2000 and writer.counters.duplicates == 0


def test_close_with_database_away_keeps_entries_for_next_start(db_url: str, tmp_path: Path) -> None:
    proxy = TcpProxy.for_database(db_url)
    url = proxy.url_for(db_url)
    proxy.refuse()
    journal_dir = tmp_path / "journal"
    writer = BufferedWriter(
        DatabaseSink(url, connect_timeout=1), Journal(journal_dir), WriterConfig(memory_rows=1000)
    )
    writer.extend(_readings(50))
    assert writer.close(timeout=0.5) is False
    assert Journal(journal_dir).entries == 50
    proxy.close()
    # the next run (database back) writes the journal first
    nxt = BufferedWriter(DatabaseSink(db_url), Journal(journal_dir))
    assert nxt.backlog == 50
    assert nxt.close()
    assert len(_rows(db_url)) == 50


def test_unreachable_database_raises_unavailable() -> None:
    sink = DatabaseSink("postgresql://nobody@127.0.0.1:1/none", connect_timeout=1)
    with pytest.raises(DatabaseUnavailable):
        sink.write(Batch(readings=_readings(1)))


def test_uuid_column_holds_the_same_uuid(db_url: str) -> None:
    sink = DatabaseSink(db_url)
    r = _readings(1)[0]
    sink.write(Batch(readings=[r]))
    with psycopg.connect(db_url) as conn:
        got = conn.execute("SELECT event_id, metadata FROM telemetry_reading").fetchone()
    assert got[0] == uuid.UUID(bytes=r.event_id)
    assert got[1] is None or json.dumps(got[1])


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_backlog_is_sent_ahead_and_committed_when_due(db_url: str, tmp_path: Path) -> None:
    clock = _Clock()
    batches: list[int] = []
    writer = BufferedWriter(
        DatabaseSink(db_url),
        Journal(tmp_path / "journal"),
        WriterConfig(batch_rows=1000, backlog_seconds=1.0, stream_rows=300),
        on_commit=lambda b, r: batches.append(r.written),
        clock=clock,
    )
    readings = _readings(2500)
    bad = Rejection("feed", "NODE3000005", "Value 'x' is not a number", {"v": "x"}, 1.0)
    writer.extend(readings[:250])
    # under stream_rows: nothing sent
    assert writer.maybe_flush(more_waiting=True) and writer._stream is None
    writer.add(bad)
    writer.extend(readings[250:700])
    assert writer.maybe_flush(more_waiting=True)
    assert writer._streamed == 701  # sent ahead, in order, the rejection with them
    assert _rows(db_url) == []  # not committed: nothing visible yet
    writer.extend(readings[700:2500])
    # 2501 pending >= batch_rows: due; two batches commit
    assert writer.maybe_flush(more_waiting=True)
    assert batches == [999, 1000] and len(_rows(db_url)) == 1999
    clock.now = 2.0  # the rest is old enough
    assert writer.maybe_flush(more_waiting=True)
    assert batches == [999, 1000, 501]
    rows = _rows(db_url)
    assert sorted(r[4] for r in rows) == sorted(r.event_uuid for r in readings)
    assert writer.counters.rejected == 1 and writer.counters.written == 2500
    assert writer.close()


def test_database_lost_while_sending_ahead_loses_nothing(db_url: str, tmp_path: Path) -> None:
    clock = _Clock()
    sink = DatabaseSink(db_url)
    writer = BufferedWriter(
        sink,
        Journal(tmp_path / "journal"),
        WriterConfig(batch_rows=1000, backlog_seconds=1.0, stream_rows=200, memory_rows=1500),
        clock=clock,
    )
    readings = _readings(3000)
    writer.extend(readings[:600])
    assert writer.maybe_flush(more_waiting=True) and writer._streamed == 600
    pid = sink.conn.info.backend_pid  # type: ignore[union-attr]
    with psycopg.connect(db_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        wait_until(
            lambda: not admin.execute(
                "SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)
            ).fetchone(),
            message="the terminated backend gone",
        )
    writer.extend(readings[600:900])
    ok = writer.maybe_flush(more_waiting=True)
    if ok:  # the lost connection did not surface while sending: it does at the commit
        clock.now += 2.0
        ok = writer.maybe_flush(more_waiting=True)
    assert ok is False  # the open batch is dropped, nothing of it committed
    assert writer.db_up is False and writer._stream is None
    assert len(writer.pending) == 900
    writer.extend(readings[900:])  # past the memory bound: spilled to the journal
    assert writer.counters.spilled > 0
    clock.now += 100.0  # the retry delay has passed; the database is reachable again
    assert writer.close()
    rows = _rows(db_url)
    assert len(rows) == 3000
    assert sorted(r[4] for r in rows) == sorted(r.event_uuid for r in readings)
    assert (writer.counters.written, writer.counters.duplicates) == (3000, 0)


def _journal_entries(n: int, start: datetime) -> list[Any]:
    """Readings with a rejection every 40th entry and a feed transition every 70th."""
    out: list[Any] = []
    for k, r in enumerate(_readings(n, start=start)):
        out.append(r)
        if k % 40 == 0:
            out.append(Rejection("feed", "NODE3000005", f"bad {k}", {"k": k}, 1.0 + k))
        if k % 70 == 0:
            out.append(FeedTransition("signal", "LOS", 2.0 + k, start, {"k": k}))
    return out


def _counts(url: str) -> tuple[int, int, int]:
    with psycopg.connect(url) as conn:
        return tuple(  # type: ignore[return-value]
            conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("telemetry_reading", "rejected_update", "feed_status")
        )


def test_journal_taken_up_after_a_crash_writes_nothing_twice(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal_dir = tmp_path / "journal"
    entries = _journal_entries(250, T0)
    expected = (250, sum(isinstance(e, Rejection) for e in entries), 4)
    Journal(journal_dir).append(entries)  # what a previous run spilled

    # a run commits two chunks of the segment and dies before the third
    dying = BufferedWriter(DatabaseSink(db_url), Journal(journal_dir), WriterConfig(batch_rows=100))
    commits = []
    real_write = DatabaseSink.write

    def write_then_die(self: DatabaseSink, batch: Batch) -> Any:
        if len(commits) == 2:
            raise KeyboardInterrupt  # the process dies here
        commits.append(batch.journal_mark)
        return real_write(self, batch)

    monkeypatch.setattr(DatabaseSink, "write", write_then_die)
    with pytest.raises(KeyboardInterrupt):
        dying.flush()
    monkeypatch.undo()
    segment = Journal(journal_dir).segments()[0].name
    assert commits == [(segment, 100), (segment, 200)]
    assert _counts(db_url)[0] == sum(isinstance(e, ValidatedReading) for e in entries[:200])

    # the next run takes the segment up where the database says it got
    nxt = BufferedWriter(DatabaseSink(db_url), Journal(journal_dir), WriterConfig(batch_rows=100))
    assert nxt.backlog == len(entries)  # (it cannot know before asking the database)
    assert nxt.close()
    assert nxt.counters.journal_replayed == len(entries) - 200
    assert _counts(db_url) == expected

    # a run that commits all of a segment and dies before deleting it
    more = _journal_entries(120, T0 + timedelta(days=1))
    Journal(journal_dir).append(more)
    undead = BufferedWriter(
        DatabaseSink(db_url), Journal(journal_dir), WriterConfig(batch_rows=100)
    )
    monkeypatch.setattr(
        Journal, "remove", lambda self, path: (_ for _ in ()).throw(KeyboardInterrupt)
    )
    with pytest.raises(KeyboardInterrupt):
        undead.flush()
    monkeypatch.undo()
    after = _counts(db_url)
    last = BufferedWriter(DatabaseSink(db_url), Journal(journal_dir), WriterConfig(batch_rows=100))
    assert last.close()
    assert last.counters.journal_replayed == 0 and _counts(db_url) == after
    assert after == (370, expected[1] + 3, expected[2] + 2)
    assert not Journal(journal_dir).segments()


def test_commits_by_a_short_age_when_drained_and_by_size_under_a_backlog(
    db_url: str, tmp_path: Path
) -> None:
    clock = _Clock()
    clock.now = 100.0
    batches: list[int] = []
    writer = BufferedWriter(
        DatabaseSink(db_url),
        Journal(tmp_path / "journal"),
        WriterConfig(
            batch_rows=1000,
            batch_seconds=0.05,
            idle_commit_seconds=0.02,
            backlog_seconds=1.0,
            stream_rows=0,
        ),
        on_commit=lambda b, r: batches.append(r.written),
        clock=clock,
    )
    readings = _readings(1300)
    writer.add(readings[0])
    assert writer.maybe_flush()  # drained, no commit for a while: commits at once
    assert batches == [1]
    clock.now = 100.005
    writer.add(readings[1])
    assert writer.maybe_flush() and batches == [1]  # 5 ms since the last commit: waits
    assert writer.seconds_until_due() == pytest.approx(0.015)
    clock.now = 100.02
    assert writer.maybe_flush() and batches == [1, 1]  # the idle gap has passed
    # more input waiting (a backlog): neither the idle gap nor the short age commits
    writer.extend(readings[2:502])
    clock.now = 100.9
    assert writer.maybe_flush(more_waiting=True) and batches == [1, 1]
    writer.extend(readings[502:1300])  # 1,298 pending: a full batch by size
    assert writer.maybe_flush(more_waiting=True) and batches == [1, 1, 1000]
    clock.now = 101.5  # the rest, 298, is not yet a second old ...
    assert writer.maybe_flush(more_waiting=True) and batches == [1, 1, 1000]
    clock.now = 101.91  # ... and now it is
    assert writer.maybe_flush(more_waiting=True) and batches == [1, 1, 1000, 298]
    assert writer.counters.written == 1300 and len(_rows(db_url)) == 1300
    assert writer.close()
