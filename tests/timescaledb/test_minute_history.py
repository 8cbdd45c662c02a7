"""telemetry_minute is kept for good on a real TimescaleDB: replayed history and catch-up after a
long outage (both outside the refresh policy's 2 hours) reach it before retention drops their
raw rows, and dropping them leaves the minutes alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from ts_storage import (
    burst,
    chunks,
    expected_minutes,
    insert_readings,
    minute_counts,
    peebot,
    raw_count,
    setting,
    utcnow_minute,
)

from peebot_ingest import reading_policy as policies
from peebot_ingest.recordings import read_recording

pytestmark = pytest.mark.timescaledb


def _run_job(url: str, proc_name: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = %s", (proc_name,)
        ).fetchone()
        assert row, proc_name
        conn.execute(f"CALL run_job({int(row[0])})")


def test_replayed_2018_history_stays_in_the_minute_aggregate(
    timescale_db_url: str, monkeypatch: pytest.MonkeyPatch, shared_data: Path
) -> None:
    mimic = sorted(str(p) for p in (shared_data / "iss-mimic-2018").rglob("*.txt"))
    assert mimic
    monkeypatch.setenv("PEEBOT_DATABASE_URL", timescale_db_url)
    times = [r.ts for p in mimic for r in read_recording(p, year=2018).readings]
    replay = peebot("replay", "--year", "2018", *mimic)
    assert replay.exit_code == 0, replay.output
    notes = [line for line in replay.stdout.splitlines() if line.startswith("note: ")]
    assert len(notes) == 1, replay.stdout
    assert f"{len(times):,} of the readings are older than the 30-day retention horizon" in notes[0]
    assert "telemetry_minute keeps their minutes for good" in notes[0]
    expected = expected_minutes(times)
    # replay refreshed them already: no wait for a scheduler
    assert minute_counts(timescale_db_url) == expected
    maintain = peebot("db", "maintain")
    assert maintain.exit_code == 0, maintain.output
    assert raw_count(timescale_db_url) == 0  # retention dropped the raw rows...
    assert minute_counts(timescale_db_url) == expected  # ...and the minutes stay
    # a refresh over all of history later (anyone's) does not empty those minutes
    with psycopg.connect(timescale_db_url, autocommit=True) as conn:
        conn.execute("CALL refresh_continuous_aggregate('telemetry_minute', NULL, now())")
    assert minute_counts(timescale_db_url) == expected
    kept_from = setting(timescale_db_url, "reading_retention")["raw_kept_from"]
    assert datetime.fromisoformat(kept_from) > max(times)


def test_catch_up_after_a_long_outage_reaches_the_aggregate(timescale_db_url: str) -> None:
    now = utcnow_minute()
    live = burst(now - timedelta(minutes=30), 6)
    insert_readings(timescale_db_url, live)
    _run_job(timescale_db_url, "policy_refresh_continuous_aggregate")
    assert minute_counts(timescale_db_url) == expected_minutes(live)
    # the journal is written back: five hours the feed went on while the database was away
    backlog = burst(now - timedelta(hours=5), 30, timedelta(minutes=5))
    insert_readings(timescale_db_url, backlog)
    _run_job(timescale_db_url, "policy_refresh_continuous_aggregate")
    seen = minute_counts(timescale_db_url)
    assert any(ts.replace(second=0) not in seen for ts in backlog), "the policy alone misses them"
    result = policies.maintain(timescale_db_url)
    assert result.failures == []
    assert minute_counts(timescale_db_url) == expected_minutes(live + backlog)


def test_retention_holds_back_a_chunk_the_aggregate_has_not_seen(timescale_db_url: str) -> None:
    old = burst(utcnow_minute() - timedelta(days=45), 8)
    insert_readings(timescale_db_url, old)
    with psycopg.connect(timescale_db_url, autocommit=True) as conn:
        conn.execute("CALL peebot_retention()")  # retention alone, no refresh before it
    state = setting(timescale_db_url, "reading_retention")
    assert (state["removed"], state["held_back"], state["raw_kept_from"]) == (0, 1, None)
    assert raw_count(timescale_db_url) == 8
    policies.maintain(timescale_db_url)
    assert raw_count(timescale_db_url) == 0
    assert minute_counts(timescale_db_url) == expected_minutes(old)
    assert chunks(timescale_db_url) == []


def test_pending_chunks_follow_what_the_aggregate_has_seen(timescale_db_url: str) -> None:
    day = datetime(2024, 5, 1, tzinfo=UTC)
    insert_readings(timescale_db_url, burst(day + timedelta(hours=3), 4))

    def pending() -> list[tuple[datetime, datetime]]:
        with psycopg.connect(timescale_db_url) as conn:
            return conn.execute("SELECT * FROM peebot_minute_pending_chunks()").fetchall()

    assert pending() == [(day, day + timedelta(days=1))]
    assert policies.refresh_history(timescale_db_url) == 1
    assert pending() == []
    # a late reading into the same, already aggregated day
    insert_readings(timescale_db_url, [day + timedelta(hours=9, seconds=7)])
    assert pending() == [(day, day + timedelta(days=1))]
    assert policies.refresh_history(timescale_db_url) == 1
    assert sum(minute_counts(timescale_db_url).values()) == 5
