from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import psycopg

from peebot_dagster.defs.maintenance import defs
from peebot_dagster.defs.maintenance.jobs import (
    db_maintenance_job,
    delete_runs_before,
    instance_cleanup_job,
)
from peebot_dagster.resources import PostgresResource


@dg.op
def nothing() -> int:
    return 1


@dg.job
def tiny_job() -> None:
    nothing()


def test_old_runs_and_their_events_are_deleted_new_ones_kept() -> None:
    with dg.instance_for_test() as instance:
        old = [tiny_job.execute_in_process(instance=instance).run_id for _ in range(3)]
        cutoff = datetime.now(UTC)
        new = tiny_job.execute_in_process(instance=instance).run_id
        assert instance.all_logs(old[0])  # the run has an event log before cleanup
        deleted = delete_runs_before(instance, cutoff, 100)
        remaining = {r.run_id for r in instance.get_runs()}
        assert deleted == 3
        assert remaining == {new}
        assert instance.all_logs(old[0]) == []
        assert delete_runs_before(instance, cutoff, 100) == 0


def test_cleanup_job_respects_the_retention_setting(monkeypatch) -> None:
    monkeypatch.setenv("PEEBOT_DAGSTER_RUN_RETENTION_DAYS", "1")
    with dg.instance_for_test() as instance:
        tiny_job.execute_in_process(instance=instance)
        result = instance_cleanup_job.execute_in_process(instance=instance)
        assert result.success
        assert result.output_for_node("delete_old_runs") == 0  # the fresh run is kept
        assert len(instance.get_runs()) == 2


def test_db_maintenance_job_applies_plain_retention(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute("SELECT peebot_set_reading_policy(5, NULL)")
        conn.execute(
            """
            INSERT INTO telemetry_reading (channel_id, ts, value, event_id)
            SELECT id, now() - make_interval(days => d) + interval '1 hour', d, gen_random_uuid()
            FROM telemetry_channel, generate_series(1, 8) AS d WHERE item_id = 'NODE3000005'
            """
        )
    result = db_maintenance_job.execute_in_process(resources={"db": PostgresResource(dsn=db_url)})
    assert result.success
    out = result.output_for_node("maintain_database")
    assert out["mode"] == "plain" and out["retention"]["removed"] == 3
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM telemetry_reading").fetchone() == (5,)
        state = conn.execute(
            "SELECT state_data FROM processor_state WHERE processor_name = 'db_maintain'"
        ).fetchone()
        assert state is not None and state[0]["retention"]["removed"] == 3


def test_schedules_default_to_running() -> None:
    status = {s.name: s.default_status for s in defs.schedules or []}
    assert status == {
        "instance_cleanup_schedule": dg.DefaultScheduleStatus.RUNNING,
        "db_maintenance_schedule": dg.DefaultScheduleStatus.RUNNING,
    }
