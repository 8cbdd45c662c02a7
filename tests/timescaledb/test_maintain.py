"""`peebot db maintain` and Dagster's db_maintenance_job in both storage modes: every step at top
level (TimescaleDB's `CALL run_job` fails inside a procedure), reported; never through the
background scheduler (the test databases have their jobs paused)."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from ts_storage import (
    burst,
    chunks,
    expected_minutes,
    insert_readings,
    minute_counts,
    mode_of,
    peebot,
    raw_count,
    utcnow_minute,
)

from peebot_dagster.defs.maintenance.jobs import db_maintenance_job
from peebot_dagster.resources import PostgresResource
from peebot_ingest import reading_policy as policies

TIMESCALEDB_STEPS = [
    "peebot_refresh_history",
    "Refresh Continuous Aggregate Policy",
    "Columnstore Policy",
    "peebot_retention",
]


def _step_names(steps: list[str]) -> list[str]:
    return [s.split(" [")[0] for s in steps]  # "Columnstore Policy [1000]" -> "Columnstore Policy"


@pytest.fixture
def aged(storage_db_url: str) -> dict[str, list]:
    """Readings 40 days, 10 days and 3 hours old (retention 30, compression 7 days)."""
    now = utcnow_minute()
    times = {
        "old": burst(now - timedelta(days=40), 12),
        "week": burst(now - timedelta(days=10), 12),
        "recent": burst(now - timedelta(hours=3), 12),
    }
    for group in times.values():
        insert_readings(storage_db_url, group)
    return times


def test_maintain_command_runs_each_step_and_reports_it(
    storage_db_env: str, aged: dict[str, list]
) -> None:
    url = storage_db_env
    mode = mode_of(url)
    result = peebot("db", "maintain")
    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"{mode}: ran ")
    assert "raw readings kept 30 days" in result.stdout
    now = utcnow_minute()
    assert raw_count(url, hi=now - timedelta(days=30)) == 0
    assert raw_count(url) == 24
    with psycopg.connect(url) as conn:
        state = conn.execute(
            "SELECT state_data FROM processor_state WHERE processor_name = 'db_maintain'"
        ).fetchone()[0]
    assert state["mode"] == mode and state["steps"]["failed"] == []
    if mode == "timescaledb":
        assert _step_names(state["steps"]["ran"]) == TIMESCALEDB_STEPS
        assert all(name.split(" [")[0] in first for name in TIMESCALEDB_STEPS)
        # every minute reached the aggregate before retention dropped the old chunk
        assert minute_counts(url) == expected_minutes(aged["old"] + aged["week"] + aged["recent"])
        compressed = {start.date(): c for start, _, c in chunks(url)}
        assert compressed == {
            aged["week"][0].date(): True,  # older than 7 days
            aged["recent"][0].date(): False,
        }
        assert state["retention"]["removed"] == 1 and state["retention"]["removed_unit"] == "chunks"
    else:
        assert state["steps"]["ran"] == ["peebot_retention"]
        assert state["retention"]["removed"] == 12
        assert state["retention"]["removed_unit"] == "readings"
        assert minute_counts(url) == expected_minutes(aged["week"] + aged["recent"])


def test_maintain_twice_changes_nothing_more(storage_db_url: str, aged: dict[str, list]) -> None:
    first = policies.maintain(storage_db_url)
    minutes = minute_counts(storage_db_url)
    second = policies.maintain(storage_db_url)
    assert first.failures == [] and second.failures == []
    assert first.steps_run == second.steps_run
    assert second.policy is not None and second.policy.last_removed == 0
    assert minute_counts(storage_db_url) == minutes
    assert raw_count(storage_db_url) == 24


def test_db_maintenance_job_runs_the_same_steps(storage_db_url: str, aged: dict[str, list]) -> None:
    result = db_maintenance_job.execute_in_process(
        resources={"db": PostgresResource(dsn=storage_db_url)}
    )
    assert result.success
    out = result.output_for_node("maintain_database")
    mode = mode_of(storage_db_url)
    assert out["mode"] == mode and out["steps"]["failed"] == []
    if mode == "timescaledb":
        assert _step_names(out["steps"]["ran"]) == TIMESCALEDB_STEPS
        assert minute_counts(storage_db_url) == expected_minutes(
            aged["old"] + aged["week"] + aged["recent"]
        )
    else:
        assert out["retention"]["removed"] == 12
    assert raw_count(storage_db_url, hi=utcnow_minute() - timedelta(days=30)) == 0


def test_a_failing_step_is_reported_and_retention_holds_back(
    timescale_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PEEBOT_DATABASE_URL", timescale_db_url)
    insert_readings(timescale_db_url, burst(utcnow_minute() - timedelta(days=40), 5))
    with psycopg.connect(timescale_db_url) as conn:
        conn.execute(
            "CREATE OR REPLACE PROCEDURE peebot_refresh_history(job_id integer DEFAULT NULL, "
            "config jsonb DEFAULT NULL) LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'refresh unavailable'; END $$"
        )
    result = peebot("db", "maintain")
    assert result.exit_code != 0
    error = result.stderr.strip().splitlines()
    assert len(error) == 1, result.stderr
    assert error[0].startswith("Error: 1 maintenance step(s) failed: peebot_refresh_history")
    assert "refresh unavailable" in error[0]
    assert "ran 3 step(s)" in result.stdout
    assert "1 chunk(s) held back until aggregated" in result.stdout
    # the old chunk's minutes never reached the aggregate, so retention kept its rows
    assert raw_count(timescale_db_url) == 5
    assert minute_counts(timescale_db_url) == {}
