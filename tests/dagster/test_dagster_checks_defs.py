"""Asset checks through detection_job, and the deployed definitions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import psycopg

from peebot_dagster.defs.detection.checks import build_detection_checks, freshness
from peebot_dagster.defs.detection.jobs import detection_job
from peebot_dagster.defs.tags import range_tags
from peebot_dagster.store import SignalState
from tests.support.dagster_testing import db_resource, set_ingest_watermark

MINUTE_KEY = "2023-09-19-02:10"  # the slow use starts at 02:10:16


def run_minute(url, test_assets, instance, key=MINUTE_KEY):
    defs = dg.Definitions(
        assets=test_assets,
        asset_checks=build_detection_checks(partitions_def=test_assets[0].partitions_def),
        jobs=[detection_job],
        resources={"db": db_resource(url)},
    )
    result = defs.resolve_job_def("detection_job").execute_in_process(
        instance=instance, partition_key=key
    )
    assert result.success  # checks only warn
    return {(e.asset_key.path[-1], e.check_name): e for e in result.get_asset_check_evaluations()}


def test_checks_pass_on_clean_detections(loaded_db, test_assets, instance):
    checks = run_minute(loaded_db, test_assets, instance)
    assert len(checks) == 9
    assert all(c.passed for c in checks.values())
    dup = checks[("urine_tank_events", "no_duplicate_events")]
    assert dup.metadata["checked"].value == 1 and dup.metadata["overlapping"].value == 0
    rate = checks[("urine_tank_events", "plausible_event_rate")]
    assert rate.metadata["urination_per_day"].value >= 1


def test_rate_check_warns_above_the_ceiling(loaded_db, test_assets, instance, monkeypatch):
    dg.materialize(
        test_assets,
        selection=["urine_tank_events"],
        tags=range_tags("2023-09-18-23:00", "2023-09-19-01:59"),
        resources={"db": db_resource(loaded_db)},
        instance=instance,
    )
    monkeypatch.setenv("PEEBOT_MAX_EVENTS_PER_DAY", "urination=2")
    rate = run_minute(loaded_db, test_assets, instance)[
        ("urine_tank_events", "plausible_event_rate")
    ]
    # 23:30, 00:27, 01:29 and 02:10 within the day up to 02:11
    assert rate.metadata["urination_per_day"].value == 4
    assert not rate.passed and rate.severity == dg.AssetCheckSeverity.WARN
    assert rate.metadata["too_many"].value == "urination 4 > 2"


def test_duplicate_check_sees_an_overlapping_copy(loaded_db, test_assets, instance):
    run_minute(loaded_db, test_assets, instance)
    with psycopg.connect(loaded_db) as conn:
        # a copy of the 02:10:16 use starting 26 s earlier, stored by minute 02:09 (say by a
        # detector version that put starts elsewhere): the 02:10 run does not own it
        conn.execute(
            "INSERT INTO detected_event (event_key, event_type, processor, item_id, detected_at, "
            "ended_at, window_key) SELECT event_key || 'x', event_type, processor, item_id, "
            "detected_at - interval '26 seconds', ended_at, '2023-09-19-02:09' "
            "FROM detected_event WHERE processor = 'urine_tank'"
        )
    dup = run_minute(loaded_db, test_assets, instance)[("urine_tank_events", "no_duplicate_events")]
    assert not dup.passed
    assert dup.metadata["overlapping"].value == 1 and dup.metadata["misowned"].value == 0


def test_freshness_while_in_signal(loaded_db, test_assets, instance):
    now = datetime.now(UTC)
    with psycopg.connect(loaded_db) as conn:
        conn.execute(
            "INSERT INTO feed_status (kind, state, changed_at) VALUES ('signal', 'AOS', %s)",
            (now - timedelta(hours=1),),
        )
    set_ingest_watermark(loaded_db, now - timedelta(minutes=10))
    check = run_minute(loaded_db, test_assets, instance)[("signal_events", "feed_freshness")]
    assert not check.passed and check.metadata["signal"].value == "AOS"
    assert check.metadata["lag_seconds"].value >= 600
    # the pure rule: LOS is never stale, fresh AOS passes
    assert freshness(SignalState("LOS", now, None), now - timedelta(hours=5), now, 120)[0]
    assert freshness(SignalState("AOS", now, None), now - timedelta(seconds=30), now, 120)[0]
    assert not freshness(SignalState("AOS", now, None), None, now, 120)[0]


def test_deployed_definitions_load(monkeypatch):
    monkeypatch.setenv("PEEBOT_DATABASE_URL", "postgresql://nobody@localhost:1/none")
    from peebot_dagster.definitions import defs

    dg.Definitions.validate_loadable(defs)
    job = defs.resolve_job_def("detection_job")
    keys = {k.path[-1] for k in job.asset_layer.executable_asset_keys}
    assert {"urine_tank_events", "upa_cycles", "signal_events", "clean_water_events"} <= keys
    graph = defs.resolve_asset_graph()
    for name in ("urine_tank_events", "upa_cycles", "signal_events", "clean_water_events"):
        node = graph.get(dg.AssetKey(name))
        assert dg.AssetKey("telemetry_reading") in node.parent_keys
        assert node.backfill_policy == dg.BackfillPolicy.single_run()
        assert (
            node.partitions_def.get_serializable_unique_identifier()
            == (
                graph.get(dg.AssetKey("telemetry_reading")).partitions_def
            ).get_serializable_unique_identifier()
        )
    assert not graph.get(dg.AssetKey("telemetry_reading")).is_executable
    assert defs.resolve_sensor_def("telemetry_watermark_sensor")
    # posting's job and sensor are part of the same code location
    assert defs.resolve_job_def("post_events_job")
    assert {s.name for s in defs.sensors or []} >= {"telemetry_watermark_sensor"}


def test_instance_on_postgres_and_workspace_validate(pg_server, tmp_path, monkeypatch):
    """dagster.yaml gives a PostgreSQL instance (psycopg2 scheme, socket URL), and the
    workspace validates from the command line against it."""
    import os
    import shutil
    import subprocess
    import sys
    import uuid
    from pathlib import Path

    from peebot_ingest.db import sqlalchemy_url

    repo = Path(__file__).resolve().parents[2]
    storage = pg_server.create_database(f"peebot_dagster_{uuid.uuid4().hex[:8]}")
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(repo / "peebot" / "config" / "dagster.yaml", home / "dagster.yaml")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "PEEBOT_DAGSTER_STORAGE_URL": sqlalchemy_url(storage),
        "PEEBOT_DATABASE_URL": "postgresql://nobody@localhost:1/none",
    }
    for key in ("DAGSTER_HOME", "PEEBOT_DAGSTER_STORAGE_URL"):
        monkeypatch.setenv(key, env[key])
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert instance.get_settings("telemetry") == {"enabled": False}
        assert instance.run_coordinator is not None
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.run_monitoring_enabled
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w",
         "workspace.yaml"],
        cwd=repo, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "All code locations passed validation" in proc.stdout + proc.stderr


def test_deployed_jobs_run_in_process(monkeypatch):
    monkeypatch.setenv("PEEBOT_DATABASE_URL", "postgresql://nobody@localhost:1/none")
    from peebot_dagster.definitions import defs

    assert defs.executor is dg.in_process_executor
    assert defs.resolve_job_def("detection_job").executor_def is dg.in_process_executor


def test_every_deployed_job_runs_in_process(monkeypatch):
    monkeypatch.setenv("PEEBOT_DATABASE_URL", "postgresql://nobody@localhost:1/none")
    from peebot_dagster.definitions import defs

    names = {job.name for job in defs.resolve_all_job_defs() if not job.name.startswith("__")}
    assert names >= {
        "detection_job",
        "live_detection_job",
        "post_events_job",
        "daily_summary_job",
        "instance_cleanup_job",
        "db_maintenance_job",
    }
    for name in names:
        assert defs.resolve_job_def(name).executor_def is dg.in_process_executor, name
