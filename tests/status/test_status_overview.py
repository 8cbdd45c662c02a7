"""`peebot status` as the one-screen overview: database, readings per minute, events, posts,
and the Dagster daemon's heartbeat and sensor states (a real instance on PostgreSQL)."""

from __future__ import annotations

import io
import json
import os
import shutil
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from status_seed import seed_overview

from peebot.cli import cli
from peebot.settings import Settings
from peebot.status.collect import collect
from peebot.status.dagster_probe import dagster_status, default_dagster_storage_url
from peebot.status.render import render
from peebot.status.shaping import (
    HeartbeatView,
    event_detail,
    fill_minutes,
    sparkline,
    summarize_heartbeats,
)
from peebot_ingest import db as database
from peebot_ingest import migrations

REPO = Path(__file__).resolve().parents[2]
# the Dagster instance config `peebot up` writes into its DAGSTER_HOME (package data)
INSTANCE_CONFIG = REPO / "peebot" / "config" / "dagster.yaml"
WIDE = {"COLUMNS": "100"}  # rich reads the terminal width from COLUMNS


# --------------------------------------------------------------------------- pure parts


def test_event_detail_picks_the_number_worth_seeing() -> None:
    assert event_detail("urination", {"delta": 2.5, "volume_ml": 200}) == "+2.5 %, ≈200 mL"
    assert event_detail("clean_water_draw", {"delta": -1.25}) == "-1.25 %"
    assert (
        event_detail(
            "upa_cycle_start", {"state_before_name": "STANDBY", "state_after_name": "NORMAL"}
        )
        == "STANDBY→NORMAL"
    )
    assert event_detail("aos", {"los_duration_s": 1800.4}) == "1,800 s"
    assert event_detail("los", {}) == "-"


def test_minutes_are_filled_and_sparkline_scales() -> None:
    end = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    buckets = fill_minutes({end - timedelta(minutes=1): 7}, end, minutes=3)
    assert [b["readings"] for b in buckets] == [0, 0, 7]
    assert buckets[0]["minute"] == end - timedelta(minutes=3)
    assert sparkline([0, 4, 8]) == "▁▅█"
    assert sparkline([0, 0]) == "▁▁"


def test_heartbeats_summary_calls_an_old_heartbeat_stale() -> None:
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    beats = [
        HeartbeatView("SENSOR", now.timestamp() - 10, 0),
        HeartbeatView("SCHEDULER", now.timestamp() - 20, 2),
    ]
    fresh = summarize_heartbeats(beats, now)
    assert fresh["state"] == "running" and fresh["age_s"] == 10.0
    assert [d["daemon"] for d in fresh["daemons"]] == ["SCHEDULER", "SENSOR"]
    assert summarize_heartbeats(beats, now + timedelta(minutes=10))["state"] == "stale"
    assert summarize_heartbeats([], now)["state"] == "no heartbeat"


def test_default_dagster_storage_is_peebot_dagster_on_the_same_server() -> None:
    url = default_dagster_storage_url("postgresql://postgres:@/peebot?host=/tmp/sock")
    assert url == "postgresql+psycopg2://postgres:@/peebot_dagster?host=%2Ftmp%2Fsock"


# --------------------------------------------------------------------------- database sections


def test_overview_numbers_through_the_cli(db_env: str, no_dagster: Path) -> None:
    now = datetime.now(UTC)
    seeded = seed_overview(db_env, now)

    result = CliRunner().invoke(cli, ["status", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)

    db = data["database"]
    assert db["mode"] == "plain"
    assert db["schema_version"] == max(m.version for m in migrations.discover_migrations())
    assert db["size_bytes"] > 1_000_000

    rate = data["readings_per_minute"]
    assert rate["basis"].startswith("ISS time")
    assert rate["total"] == 6 and rate["average"] == 0.6
    assert sorted(b["readings"] for b in rate["per_minute"] if b["readings"]) == [1, 2, 3]
    assert len(rate["per_minute"]) == 10

    events = data["latest_events"]
    assert len(events) == 5
    assert events[0]["id"] == seeded["latest_event"]
    assert [e["event_type"] for e in events] == [
        "urination",
        "urination",
        "urination",
        "bulk_transfer",
        "upa_cycle_start",
    ]
    assert events[0]["delta"] == 2.0 and events[0]["volume_ml"] == 160
    assert events[0]["detail"] == "+2 %, ≈160 mL" and events[0]["confidence"] == 0.9
    assert data["events_by_type_24h"] == {"urination": 4, "bulk_transfer": 1, "upa_cycle_start": 1}

    posts = data["posts_overview"]
    assert posts["pending_by_backend"] == {"dry_run": 2, "x": 1}
    recent = posts["recent"]
    assert len(recent) == 5
    assert recent[0]["status"] == "skipped" and recent[0]["skip_reason"] == "too old"
    assert recent[1]["status"] == "failed" and recent[1]["error_kind"] == "permanent"
    assert recent[2]["external_id"] == "dry-run-123"

    assert data["dagster"]["available"] is False

    # the same data on the screen
    screen = CliRunner().invoke(cli, ["status"], env=WIDE)
    assert screen.exit_code == 0, screen.output
    for text in ("plain", "urination", "STANDBY→NORMAL", "too old", "permanent", "dry-run-123"):
        assert text in screen.output, screen.output


def test_overview_fits_one_screen(db_url: str, no_dagster: Path) -> None:
    from rich.console import Console

    now = datetime.now(UTC)
    seed_overview(db_url, now)
    health = collect(db_url, now=now)
    # the worst case: a running daemon and a handful of sensors and schedules
    health["dagster"] = {
        "available": True,
        "daemon": summarize_heartbeats([HeartbeatView("SENSOR", now.timestamp() - 3, 0)], now),
        "instigators": [
            {
                "name": name,
                "type": "SENSOR",
                "status": "RUNNING",
                "last_tick_age_s": 4.0,
                "last_tick_status": "SKIPPED",
            }
            for name in (
                "telemetry_watermark_sensor",
                "live_detection_sensor",
                "posting_sensor",
                "instance_cleanup_schedule",
                "db_maintenance_schedule",
                "daily_summary_schedule_x",
            )
        ],
    }
    out = io.StringIO()
    render(health, Console(file=out, width=100, height=40, color_system=None))
    lines = out.getvalue().splitlines()
    assert len(lines) <= 40, out.getvalue()
    assert max(len(line) for line in lines) <= 100


def test_empty_database_says_none_yet(db_env: str, no_dagster: Path) -> None:
    result = CliRunner().invoke(cli, ["status"], env=WIDE)
    assert result.exit_code == 0, result.output
    assert "none yet" in result.output and "none pending" in result.output
    data = json.loads(CliRunner().invoke(cli, ["status", "--json"]).output)
    assert data["latest_events"] == [] and data["events_by_type_24h"] == {}
    assert data["readings_per_minute"]["total"] == 0
    assert data["posts_overview"] == {"pending_by_backend": {}, "recent": []}
    assert data["dagster"]["available"] is False
    skipped = json.loads(CliRunner().invoke(cli, ["status", "--json", "--no-dagster"]).output)
    assert skipped["dagster"] == {"available": False, "reason": "skipped"}


def test_unmigrated_database_is_one_line(
    empty_db_url: str, monkeypatch: pytest.MonkeyPatch, no_dagster: Path
) -> None:
    monkeypatch.setenv("PEEBOT_DATABASE_URL", empty_db_url)
    result = CliRunner().invoke(cli, ["status"])
    assert result.exit_code == 1
    assert "not migrated" in result.output and "Traceback" not in result.output


# --------------------------------------------------------------------------- Dagster


def test_no_dagster_instance_is_one_line_and_exit_0(db_env: str, no_dagster: Path) -> None:
    result = CliRunner().invoke(cli, ["status"], env=WIDE)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "unavailable" in line]
    assert len(lines) == 1, result.output
    assert "dagster" in lines[0] and "no dagster.yaml" in lines[0]
    assert "Traceback" not in result.output and "NODE3000005" in result.output


def test_dagster_storage_down_is_one_line(
    db_env: str, no_dagster: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = no_dagster / "dagster"
    home.mkdir(parents=True)
    shutil.copyfile(INSTANCE_CONFIG, home / "dagster.yaml")
    # a storage database that does not exist on the server
    missing = f"peebot_dagster_missing_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv(
        "PEEBOT_DAGSTER_STORAGE_URL",
        database.sqlalchemy_url(database.with_database(db_env, missing)),
    )
    started = time.monotonic()
    data = json.loads(CliRunner().invoke(cli, ["status", "--json"]).output)
    assert data["dagster"]["available"] is False
    assert missing in data["dagster"]["reason"]
    result = CliRunner().invoke(cli, ["status"], env=WIDE)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "unavailable" in line]
    assert len(lines) == 1 and "cannot connect" in lines[0], result.output
    # bounded, not fast: it gives up instead of retrying for minutes (no speed asserted)
    assert time.monotonic() - started < 120


def test_dagster_gets_its_storage_from_the_settings_not_the_environment(
    db_url: str, pg_server: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    storage_db = f"peebot_dagster_t_{uuid.uuid4().hex[:8]}"
    storage_url = database.sqlalchemy_url(pg_server.create_database(storage_db))
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(INSTANCE_CONFIG, home / "dagster.yaml")
    # the environment names a server that is not there: had the URL gone through it (as the
    # project's dagster.yaml asks Dagster to read it), the instance could not open
    monkeypatch.setenv("PEEBOT_DAGSTER_STORAGE_URL", "postgresql+psycopg2://nobody@127.0.0.1:1/x")
    before = dict(os.environ)
    settings = Settings(
        home=tmp_path / "peebot_home", dagster_home=home, dagster_storage_url=storage_url
    )
    try:
        dag = dagster_status(settings, db_url)
        assert dag["available"] is True, dag
        assert dag["home"] == str(home.resolve())
        assert dag["daemon"]["state"] == "no heartbeat" and dag["instigators"] == []
        assert dict(os.environ) == before
    finally:
        pg_server.drop_database(storage_db)


def test_dagster_heartbeat_and_sensor_states(
    db_env: str, pg_server: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from dagster import DagsterInstance
    from dagster._core.definitions.run_request import InstigatorType
    from dagster._core.definitions.sensor_definition import SensorType
    from dagster._core.remote_origin import (
        RegisteredCodeLocationOrigin,
        RemoteInstigatorOrigin,
        RemoteRepositoryOrigin,
    )
    from dagster._core.scheduler.instigation import (
        InstigatorState,
        InstigatorStatus,
        SensorInstigatorData,
        TickData,
        TickStatus,
    )
    from dagster._daemon.types import DaemonHeartbeat

    # the project's own dagster.yaml on a real PostgreSQL storage database
    storage_db = f"peebot_dagster_t_{uuid.uuid4().hex[:8]}"
    storage_url = database.sqlalchemy_url(pg_server.create_database(storage_db))
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(INSTANCE_CONFIG, home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("PEEBOT_DAGSTER_STORAGE_URL", storage_url)
    monkeypatch.setenv("PEEBOT_HOME", str(tmp_path / "peebot_home"))
    try:
        # an instance with no daemon yet
        data = json.loads(CliRunner().invoke(cli, ["status", "--json"]).output)
        assert data["dagster"]["available"] is True
        assert data["dagster"]["daemon"]["state"] == "no heartbeat"
        assert data["dagster"]["instigators"] == []

        now = time.time()
        instance = DagsterInstance.from_config(str(home))
        try:
            instance.add_daemon_heartbeat(DaemonHeartbeat(now - 4.0, "SENSOR", "d1"))
            instance.add_daemon_heartbeat(DaemonHeartbeat(now - 9.0, "SCHEDULER", "d1"))
            repo = RemoteRepositoryOrigin(RegisteredCodeLocationOrigin("peebot"), "__repository__")
            running = InstigatorState(
                RemoteInstigatorOrigin(repo, "watermark_sensor"),
                InstigatorType.SENSOR,
                InstigatorStatus.RUNNING,
                SensorInstigatorData(
                    last_tick_timestamp=now - 7.0, sensor_type=SensorType.STANDARD
                ),
            )
            instance.add_instigator_state(running)
            instance.add_instigator_state(
                InstigatorState(
                    RemoteInstigatorOrigin(repo, "posting_sensor"),
                    InstigatorType.SENSOR,
                    InstigatorStatus.STOPPED,
                    SensorInstigatorData(sensor_type=SensorType.STANDARD),
                )
            )
            instance.create_tick(
                TickData(
                    instigator_origin_id=running.instigator_origin_id,
                    instigator_name="watermark_sensor",
                    instigator_type=InstigatorType.SENSOR,
                    status=TickStatus.SKIPPED,
                    timestamp=now - 2.0,
                    selector_id=running.selector_id,
                )
            )
        finally:
            instance.dispose()

        data = json.loads(CliRunner().invoke(cli, ["status", "--json"]).output)
        dag = data["dagster"]
        assert dag["available"] is True
        assert dag["daemon"]["state"] == "running"
        assert 4.0 <= dag["daemon"]["age_s"] < 30
        assert [d["daemon"] for d in dag["daemon"]["daemons"]] == ["SCHEDULER", "SENSOR"]
        by_name = {s["name"]: s for s in dag["instigators"]}
        assert set(by_name) == {"watermark_sensor", "posting_sensor"}
        assert by_name["watermark_sensor"]["status"] == "RUNNING"
        assert by_name["watermark_sensor"]["last_tick_status"] == "SKIPPED"
        assert 2.0 <= by_name["watermark_sensor"]["last_tick_age_s"] < 30
        assert by_name["posting_sensor"]["status"] == "STOPPED"
        assert by_name["posting_sensor"]["last_tick"] is None

        screen = CliRunner().invoke(cli, ["status"], env=WIDE)
        assert screen.exit_code == 0, screen.output
        assert "daemon running" in screen.output and "2 daemon(s)" in screen.output
        assert "watermark_sensor" in screen.output and "STOPPED" in screen.output
    finally:
        pg_server.drop_database(storage_db)
