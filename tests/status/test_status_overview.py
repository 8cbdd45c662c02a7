"""`peebot status` as the one-screen overview: database, readings per minute, events, posts,
and the Dagster daemon's heartbeat and sensor states (a real instance on PostgreSQL)."""

from __future__ import annotations

import io
import json
import shutil
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from peebot.cli import cli
from peebot.commands.status import collect, default_dagster_storage_url, render
from peebot.overview import (
    HeartbeatView,
    event_detail,
    fill_minutes,
    floor_minute,
    sparkline,
    summarize_heartbeats,
)
from peebot_ingest import db as database
from peebot_ingest.validate import Reading, Validator
from peebot_ingest.writer import Batch, DatabaseSink

REPO = Path(__file__).resolve().parents[2]
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


def _seed(url: str, now: datetime) -> dict[str, int]:
    """Readings through the real ingest writer; events and posts as Dagster writes them."""
    v = Validator(clock_check=False)
    base = floor_minute(now)
    # minutes -1..-8 before the current one: still inside the 10-minute window if the clock
    # crosses a minute boundary while the test runs
    per_minute = {1: 3, 4: 2, 8: 1}
    readings = []
    for back, n in per_minute.items():
        for i in range(n):
            r = v.reading("NODE3000005", base - timedelta(minutes=back, seconds=-5 * i - 1), 40 + i)
            assert isinstance(r, Reading)
            readings.append(r)
    old = v.reading("NODE3000005", base - timedelta(minutes=15), 39)  # outside the window
    assert isinstance(old, Reading)
    sink = DatabaseSink(url)
    sink.write(Batch(readings=[*readings, old], rejections=[], transitions=[]))
    sink.close()

    def event(kind: str, start: datetime, meta: dict[str, Any], retracted: bool = False) -> int:
        with database.connect(url, autocommit=True) as conn:
            row = conn.execute(
                """
                INSERT INTO detected_event (event_key, event_type, processor, item_id,
                    detected_at, confidence, metadata, window_key, retracted_at)
                VALUES (%s, %s, 'urine_tank', 'NODE3000005', %s, 0.9, %s, 'w', %s)
                RETURNING id
                """,
                (
                    f"k-{uuid.uuid4().hex}",
                    kind,
                    start,
                    psycopg.types.json.Jsonb(meta),
                    now if retracted else None,
                ),
            ).fetchone()
            assert row
            return int(row[0])

    ids = [
        event(
            "urination", now - timedelta(minutes=60 * i + 5), {"delta": 2.0 + i, "volume_ml": 160}
        )
        for i in range(4)
    ]
    ids.append(event("bulk_transfer", now - timedelta(hours=2, minutes=30), {"delta": 45.0}))
    event("urination", now - timedelta(minutes=1), {"delta": 3.0}, retracted=True)
    event("upa_cycle_start", now - timedelta(hours=30), {})  # older than a day
    ids.append(
        event(
            "upa_cycle_start",
            now - timedelta(hours=3),
            {"state_before_name": "STANDBY", "state_after_name": "NORMAL"},
        )
    )
    with database.connect(url, autocommit=True) as conn:
        posts = [
            (ids[0], "dry_run", "pending", None, None, None),
            (ids[1], "dry_run", "pending", None, None, None),
            (ids[1], "x", "pending", None, None, None),
            (ids[2], "dry_run", "posted", "dry-run-123", None, None),
            (ids[3], "x", "failed", None, None, "permanent"),
            (ids[4], "dry_run", "skipped", None, "too old", None),
        ]
        for n, (event_id, backend, status, ext, skip, err) in enumerate(posts):
            conn.execute(
                """
                INSERT INTO social_post (event_id, backend, status, text, external_id,
                    skip_reason, error_kind, attempts, updated_at)
                VALUES (%s, %s, %s, 'text', %s, %s, %s, 1, %s)
                """,
                (event_id, backend, status, ext, skip, err, now - timedelta(seconds=100 - n)),
            )
    return {"latest_event": ids[0]}


@pytest.fixture
def no_dagster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("PEEBOT_DAGSTER_STORAGE_URL", raising=False)
    monkeypatch.setenv("PEEBOT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_overview_numbers_through_the_cli(db_env: str, no_dagster: Path) -> None:
    now = datetime.now(UTC)
    seeded = _seed(db_env, now)

    result = CliRunner().invoke(cli, ["status", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)

    db = data["database"]
    assert db["mode"] == "plain"
    assert db["schema_version"] == max(m.version for m in database.discover_migrations())
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
    _seed(db_url, now)
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
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
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
    assert time.monotonic() - started < 15


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
    shutil.copyfile(REPO / "dagster.yaml", home / "dagster.yaml")
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
