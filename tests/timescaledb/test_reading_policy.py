"""Retention and compression horizons after the first migration (`peebot db policy`),
`PEEBOT_RETENTION_DAYS=0` (raw readings forever) and the policies `peebot db status` shows, in
both storage modes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest
from ts_storage import burst, chunks, insert_readings, mode_of, peebot, raw_count, utcnow_minute

from peebot_ingest import migrations
from peebot_ingest import reading_policy as policies
from tests.support.timescaledb import pause_timescaledb_jobs


def test_policy_command_changes_retention_after_the_first_migration(storage_db_env: str) -> None:
    url = storage_db_env
    now = utcnow_minute()
    insert_readings(url, burst(now - timedelta(days=12), 5) + burst(now - timedelta(hours=1), 5))
    assert policies.maintain(url).policy.last_removed == 0  # within 30 days
    shown = peebot("db", "policy")
    assert shown.exit_code == 0 and "raw readings kept 30 days" in shown.stdout
    changed = peebot("db", "policy", "--retention-days", "10")
    assert changed.exit_code == 0, changed.output
    assert "raw readings kept 10 days" in changed.stdout
    result = policies.maintain(url)
    assert result.failures == []
    assert raw_count(url) == 5
    assert result.policy is not None and result.policy.retention_days == 10
    status = peebot("db", "status")
    assert status.exit_code == 0
    policy_line = next(line for line in status.stdout.splitlines() if line.startswith("policy:"))
    if mode_of(url) == "timescaledb":
        assert "raw readings kept 10 days, compressed after 7 days" in policy_line
        assert "removed 1 chunks" in status.stdout
        assert "peebot_retention" in status.stdout and "peebot_refresh_history" in status.stdout
    else:
        assert "raw readings kept 10 days; no compression (plain storage)" in policy_line
        assert "removed 5 readings" in status.stdout
    assert "raw from:" in status.stdout


@pytest.fixture(params=["plain", pytest.param("timescaledb", marks=pytest.mark.timescaledb)])
def fresh_url(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """(mode, URL of an empty database) on a server of that mode."""
    if request.param == "plain":
        yield "off", request.getfixturevalue("empty_db_url")
    else:
        yield "on", request.getfixturevalue("timescale_empty_db_url")


def test_retention_days_zero_keeps_raw_readings_forever(
    fresh_url: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    setting, url = fresh_url
    monkeypatch.setenv("PEEBOT_RETENTION_DAYS", "0")
    migrations.migrate(url, timescale=setting)
    if setting == "on":
        pause_timescaledb_jobs(url)
    insert_readings(url, burst(utcnow_minute() - timedelta(days=800), 6))
    result = policies.maintain(url)
    assert result.failures == []
    assert result.policy is not None and result.policy.retention_days == 0
    assert result.policy.raw_kept_from is None
    assert "raw readings kept forever" in result.policy.describe()
    assert raw_count(url) == 6


def test_policy_zero_keeps_what_is_there_from_then_on(storage_db_url: str) -> None:
    insert_readings(storage_db_url, burst(utcnow_minute() - timedelta(days=90), 3))
    policies.set_reading_policy(storage_db_url, retention_days=0)
    assert policies.maintain(storage_db_url).policy.last_removed == 0
    assert raw_count(storage_db_url) == 3


def test_environment_set_differently_later_is_named_not_silently_ignored(
    storage_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PEEBOT_RETENTION_DAYS", "12")
    result = migrations.migrate(storage_db_url)
    assert result.applied == []
    assert result.warnings == [
        "warning: PEEBOT_RETENTION_DAYS=12 but the database keeps 30 (the environment counts "
        "at the first migration only); change it with `peebot db policy --retention-days 12`"
    ]
    monkeypatch.setenv("PEEBOT_RETENTION_DAYS", "30")
    assert migrations.migrate(storage_db_url).warnings == []


@pytest.mark.timescaledb
def test_compression_horizon_changes_the_policy_job(timescale_db_url: str) -> None:
    now = utcnow_minute()
    insert_readings(timescale_db_url, burst(now - timedelta(days=4), 4))
    policies.maintain(timescale_db_url)
    assert [c for _, _, c in chunks(timescale_db_url)] == [False]  # younger than 7 days
    policy = policies.set_reading_policy(timescale_db_url, compress_after_days=3)
    assert policy.compress_after_days == 3 and policy.retention_days == 30
    with psycopg.connect(timescale_db_url) as conn:
        job = conn.execute(
            "SELECT config ->> 'compress_after', scheduled FROM timescaledb_information.jobs "
            "WHERE proc_name = 'policy_compression'"
        ).fetchone()
    assert job == ("3 days", False)  # the test database's jobs stay paused
    policies.maintain(timescale_db_url)
    assert [c for _, _, c in chunks(timescale_db_url)] == [True]
    policies.set_reading_policy(timescale_db_url, compress_after_days=0)
    with psycopg.connect(timescale_db_url) as conn:
        assert (
            conn.execute(
                "SELECT count(*) FROM timescaledb_information.jobs "
                "WHERE proc_name = 'policy_compression'"
            ).fetchone()[0]
            == 0
        )
    assert "never compressed" in policies.maintain(timescale_db_url).policy.describe()
    assert raw_count(timescale_db_url) == 4


def test_policy_refuses_negative_days(storage_db_env: str) -> None:
    result = peebot("db", "policy", "--retention-days", "-1")
    assert result.exit_code != 0
    assert "-1 is not in the range x>=0" in result.output
