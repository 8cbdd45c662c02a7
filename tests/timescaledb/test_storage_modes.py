"""The storage contract in both modes (plain PostgreSQL, real TimescaleDB): migrations, the
ingest writer and `peebot replay` with exact counts and dedupe, including rows re-sent into a
chunk TimescaleDB has already compressed."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import psycopg
from ts_storage import chunks, mode_of, peebot, utcnow_minute

from peebot_ingest import migrations
from peebot_ingest import reading_policy as policies
from peebot_ingest.batch import Batch
from peebot_ingest.bulk_loader import BulkLoader
from peebot_ingest.recordings import read_recording
from peebot_ingest.sink import DatabaseSink
from tests.support.sample_readings import readings as sample_readings

_SCHEMA_SQL = """
SELECT (SELECT count(*) FROM schema_migrations),
       (SELECT max(applied_at) FROM schema_migrations),
       (SELECT count(*) FROM pg_proc WHERE proname LIKE 'peebot%%'),
       (SELECT count(*) FROM telemetry_channel),
       (SELECT max(updated_at) FROM telemetry_channel),
       (SELECT value FROM peebot_setting WHERE key = 'reading_policy')
"""


def _schema_state(url: str) -> tuple:
    with psycopg.connect(url) as conn:
        state = conn.execute(_SCHEMA_SQL).fetchone()
        jobs = ()
        if mode_of(url) == "timescaledb":
            jobs = tuple(
                conn.execute(
                    "SELECT job_id, proc_name, config FROM timescaledb_information.jobs "
                    "ORDER BY job_id"
                ).fetchall()
            )
    return (state, jobs)


def test_migrate_twice_is_a_no_op(storage_db_url: str) -> None:
    before = _schema_state(storage_db_url)
    again = migrations.migrate(storage_db_url)
    assert again.applied == [] and again.warnings == []
    assert again.mode == mode_of(storage_db_url)
    assert again.current_version == max(m.version for m in migrations.discover_migrations())
    assert _schema_state(storage_db_url) == before


def _rows(url: str) -> set[tuple]:
    with psycopg.connect(url) as conn:
        return set(
            conn.execute(
                "SELECT c.item_id, r.ts, r.value, r.status_class, r.event_id "
                "FROM telemetry_reading r JOIN telemetry_channel c ON c.id = r.channel_id"
            ).fetchall()
        )


def _compress_all(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        done = conn.execute(
            "SELECT count(compress_chunk(c, if_not_compressed => true)) "
            "FROM show_chunks('telemetry_reading') c"
        ).fetchone()
    return int(done[0]) if done else 0


def test_writer_counts_and_dedupes_exactly(storage_db_url: str) -> None:
    start = utcnow_minute() - timedelta(days=9)
    first = sample_readings(400, start=start)
    sink = DatabaseSink(storage_db_url)
    try:
        stored = sink.write(Batch(readings=first))
        assert (stored.written, stored.duplicates) == (400, 0)
        if mode_of(storage_db_url) == "timescaledb":
            assert _compress_all(storage_db_url) == 1
            assert [c for _, _, c in chunks(storage_db_url)] == [True]
        # a re-sent snapshot: 150 already stored (in a compressed chunk on TimescaleDB),
        # 20 new in the same chunk, 5 twice in the batch itself
        new = sample_readings(20, item="NODE3000004", start=start)
        twice = sample_readings(5, item="NODE3000009", start=start + timedelta(hours=1))
        result = sink.write(Batch(readings=first[:150] + new + twice + twice))
        assert (result.written, result.duplicates) == (25, 155)
    finally:
        sink.close()
    assert _rows(storage_db_url) == {
        (r.item_id, r.ts, r.value, r.status_class, r.event_uuid) for r in first + new + twice
    }


def test_bulk_loader_into_compressed_chunks_skips_what_is_there(storage_db_url: str) -> None:
    start = utcnow_minute() - timedelta(days=20)
    batch = sample_readings(300, start=start)
    loader = BulkLoader(DatabaseSink(storage_db_url, source="replay"), 100)
    for r in batch:
        loader.add(r)
    assert loader.close().written == 300
    if mode_of(storage_db_url) == "timescaledb":
        assert _compress_all(storage_db_url) == 1
    again = BulkLoader(DatabaseSink(storage_db_url, source="replay"), 100)
    for r in batch + sample_readings(7, item="NODE3000004", start=start):
        again.add(r)
    counters = again.close()
    assert (counters.written, counters.duplicates) == (7, 300)
    with psycopg.connect(storage_db_url) as conn:
        assert conn.execute("SELECT count(*) FROM telemetry_reading").fetchone() == (307,)


def test_replay_loads_exactly_and_twice_adds_nothing(storage_db_env: str, shared_data: Path) -> None:
    wallclock = sorted(str(p) for p in (shared_data / "issp-2023").rglob("*.txt"))
    mimic = sorted(str(p) for p in (shared_data / "iss-mimic-2018").rglob("*.txt"))
    assert wallclock and mimic
    url = storage_db_env
    # keep the raw 2018 / 2023 readings whatever the date: this is about counts
    policies.set_reading_policy(url, retention_days=0)
    lines = sum(len(read_recording(p, year=2018).readings) for p in wallclock + mimic)
    first = peebot("replay", *wallclock, "--year", "2018", *mimic)
    assert first.exit_code == 0, first.output
    with psycopg.connect(url) as conn:
        stored = conn.execute("SELECT count(*) FROM telemetry_reading").fetchone()[0]
    assert f"loaded {stored}, duplicates {lines - stored}," in first.stdout
    if mode_of(url) == "timescaledb":
        maintained = peebot("db", "maintain")
        assert maintained.exit_code == 0, maintained.output
        assert all(c for _, _, c in chunks(url))  # every chunk is older than 7 days
        note = "older than the 7-day compression horizon: they stay, compressed"
        assert note in first.stdout
    again = peebot("replay", *wallclock, "--year", "2018", *mimic)
    assert again.exit_code == 0, again.output
    assert f"loaded 0, duplicates {lines}," in again.stdout
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM telemetry_reading").fetchone() == (stored,)
        assert conn.execute("SELECT sum(n) FROM telemetry_minute").fetchone() == (stored,)
