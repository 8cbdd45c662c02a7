"""The live pass: the urine tank's newest minutes, run whenever the watermark moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import psycopg
import pytest

from peebot_dagster.defs.detection.assets import build_detection_assets
from peebot_dagster.defs.detection.jobs import live_detection_job
from peebot_dagster.defs.detection.partitions import minute_partitions_def
from peebot_dagster.defs.detection.sensors import (
    LiveSettings,
    build_live_sensor,
    plan_live_run,
)
from peebot_dagster.defs.tags import range_tags
from peebot_dagster.defs.telemetry import telemetry_reading_spec
from peebot_dagster.partitions import partition_key
from peebot_dagster.settings import DEFAULT_POST_MIN_CONFIDENCE, Settings
from tests.support.dagster_testing import (
    db_resource,
    event_rows,
    load_readings,
    set_ingest_watermark,
)

NOW = datetime(2026, 11, 27, 12, 0, 40, tzinfo=UTC)
START = datetime(2026, 11, 1, tzinfo=UTC)


def test_plan_covers_the_newest_minutes_including_the_one_in_progress() -> None:
    settings = LiveSettings(minutes=3)
    run, cursor, _ = plan_live_run(NOW - timedelta(seconds=2), None, START, settings, NOW)
    assert run is not None
    assert (run.first, run.last) == ("2026-11-27-11:58", "2026-11-27-12:00")
    assert cursor == (NOW - timedelta(seconds=2)).isoformat()
    # the same watermark again: nothing new to see
    again, cursor2, why = plan_live_run(NOW - timedelta(seconds=2), cursor, START, settings, NOW)
    assert again is None and cursor2 == cursor and "not moved" in why
    # it moved: run again
    moved, _, _ = plan_live_run(NOW, cursor, START, settings, NOW + timedelta(seconds=5))
    assert moved is not None and moved.last == "2026-11-27-12:00"


def test_plan_leaves_no_minute_out_when_runs_are_slow_or_the_watermark_jumps() -> None:
    """A busy machine: the previous live run was planned at 11:54:10, the next one only at
    12:00:40. The newest three minutes alone would never look at 11:55..11:57 live."""
    settings = LiveSettings(minutes=3, max_lag_minutes=60)
    before = NOW - timedelta(minutes=6, seconds=30)
    _, cursor, _ = plan_live_run(before, None, START, settings, before)
    run, _, _ = plan_live_run(NOW, cursor, START, settings, NOW)
    assert run is not None
    assert (run.first, run.last) == ("2026-11-27-11:52", "2026-11-27-12:00")
    # a previous run more than max_lag back: the range stops at max_lag
    long_ago = (NOW - timedelta(hours=5)).isoformat()
    capped, _, _ = plan_live_run(NOW, long_ago, START, settings, NOW)
    assert capped is not None and capped.first == "2026-11-27-11:00"


def test_plan_skips_old_or_missing_watermarks_and_clamps_to_the_partitions() -> None:
    settings = LiveSettings(minutes=3, max_lag_minutes=60)
    assert plan_live_run(None, None, START, settings, NOW)[0] is None
    old, cursor, why = plan_live_run(NOW - timedelta(hours=2), None, START, settings, NOW)
    assert old is None and "too old" in why and cursor is not None
    # a watermark ahead of the clock (a fast simulator) never asks for a future partition
    ahead, _, _ = plan_live_run(NOW + timedelta(minutes=5), None, START, settings, NOW)
    assert ahead is not None and ahead.last == partition_key(NOW)
    late_start = datetime(2026, 11, 27, 11, 59, tzinfo=UTC)
    clamped, _, _ = plan_live_run(NOW, None, late_start, settings, NOW)
    assert clamped is not None and clamped.first == "2026-11-27-11:59"


def live_settings(environ: dict[str, str]) -> LiveSettings:
    return LiveSettings.from_settings(Settings.from_environ(environ))


def test_live_settings_from_env() -> None:
    assert live_settings({"PEEBOT_LIVE_MINUTES": "4"}).minutes == 4
    with pytest.raises(ValueError, match="PEEBOT_LIVE_INTERVAL_SECONDS"):
        live_settings({"PEEBOT_LIVE_INTERVAL_SECONDS": "soon"})
    assert live_settings({}) == LiveSettings()


def _use_frame(start: datetime, hold_s: int) -> pd.DataFrame:
    """Tank at 40 %, a +3 use at 1 % / 5 s from `start`, then `hold_s` of holding; signal."""
    rows = [("NODE3000005", start - timedelta(minutes=10), 40.0, pd.NA)]
    for i in range(1, 4):
        rows.append(("NODE3000005", start + timedelta(seconds=5 * (i - 1)), 40.0 + i, pd.NA))
    end = start + timedelta(seconds=10 + hold_s)
    t = start - timedelta(minutes=10)
    while t <= end:
        rows.append(("TIME_000001", t, 1.0, 24))
        t += timedelta(seconds=1)
    rows.append(("NODE3000004", start - timedelta(minutes=20), 32.0, pd.NA))
    return pd.DataFrame(rows, columns=["item_id", "ts", "value", "status_class"])


def test_live_run_finds_a_use_seconds_after_it_and_a_later_run_confirms_it(
    db_url: str,
) -> None:
    now = datetime.now(UTC)
    use_start = now - timedelta(seconds=50)
    frame = _use_frame(use_start, hold_s=30)
    load_readings(db_url, frame)
    set_ingest_watermark(db_url, frame["ts"].max())
    partitions = minute_partitions_def(now - timedelta(days=1))
    sensor = build_live_sensor(live_detection_job, partitions, LiveSettings(minutes=3))
    resources = {"db": db_resource(db_url)}

    with dg.instance_for_test() as instance:
        ctx = dg.build_sensor_context(instance=instance, resources=resources)
        result = sensor(ctx)
        assert isinstance(result, dg.SensorResult)
        [request] = result.run_requests or []
        last = partition_key(frame["ts"].max())
        assert request.tags["dagster/asset_partition_range_end"] == last
        first = request.tags["dagster/asset_partition_range_start"]

        assets = [telemetry_reading_spec(partitions), *build_detection_assets(partitions)]
        job = dg.Definitions(
            assets=assets, jobs=[live_detection_job], resources=resources
        ).resolve_job_def("live_detection_job")
        run = job.execute_in_process(instance=instance, tags=range_tags(first, last))
        assert run.success
        [event] = [e for e in event_rows(db_url, "urine_tank") if e["event_type"] == "urination"]
        assert abs((event["detected_at"] - use_start).total_seconds()) < 1
        assert "short_hold" in event["metadata"]["flags"]  # provisional: 30 s of hold seen

        # a live run not finished yet: the sensor waits for it instead of stacking runs
        instance.create_run_for_job(
            job, status=dg.DagsterRunStatus.NOT_STARTED, tags=range_tags(first, last)
        )
        waiting = sensor(
            dg.build_sensor_context(instance=instance, resources=resources, cursor=result.cursor)
        )
        assert isinstance(waiting, dg.SkipReason) and "still going" in (waiting.skip_message or "")

    # more data arrives: the level held a full minute; a new run updates the same event
    later = _use_frame(use_start, hold_s=75)
    later = later[later["ts"] > frame["ts"].max()]
    load_readings(db_url, later)
    set_ingest_watermark(db_url, later["ts"].max())
    with dg.instance_for_test() as instance:
        run = job.execute_in_process(
            instance=instance, tags=range_tags(first, partition_key(later["ts"].max()))
        )
        assert run.success
    [confirmed] = [e for e in event_rows(db_url, "urine_tank") if e["event_type"] == "urination"]
    assert confirmed["event_key"] == event["event_key"]
    assert "short_hold" not in confirmed["metadata"]["flags"]
    assert confirmed["confidence"] >= event["confidence"]


def _live_job(db_url: str, now: datetime) -> tuple[Any, dict[str, str]]:
    """The live job over the test database, and the tags of a run over its newest minutes."""
    partitions = minute_partitions_def(now - timedelta(days=1))
    resources = {"db": db_resource(db_url)}
    assets = [telemetry_reading_spec(partitions), *build_detection_assets(partitions)]
    job = dg.Definitions(
        assets=assets, jobs=[live_detection_job], resources=resources
    ).resolve_job_def("live_detection_job")
    return job, range_tags(partition_key(now - timedelta(minutes=3)), partition_key(now))


def _post_statuses(db_url: str, event_key: str) -> list[str]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT p.status FROM social_post p JOIN detected_event e ON e.id = p.event_id "
            "WHERE e.event_key = %s",
            (event_key,),
        ).fetchall()
    return [r[0] for r in rows]


def test_a_live_run_posts_the_use_it_stored_itself_and_only_once(
    db_url: str, dry_run_posts: Path
) -> None:
    """The post leaves from the detection run (its success hook), not from a posting run
    launched later; a second run over the same minutes finds it posted and sends nothing."""
    now = datetime.now(UTC)
    frame = _use_frame(now - timedelta(seconds=90), hold_s=70)
    load_readings(db_url, frame)
    job, tags = _live_job(db_url, now)
    with dg.instance_for_test() as instance:
        first = job.execute_in_process(instance=instance, tags=tags)
        assert first.success
        hooks = [e for e in first.all_events if e.event_type == dg.DagsterEventType.HOOK_COMPLETED]
        assert [e.step_key for e in hooks] == ["urine_tank_events"]
        [event] = [e for e in event_rows(db_url, "urine_tank") if e["event_type"] == "urination"]
        assert _post_statuses(db_url, event["event_key"]) == ["posted"]
        assert len(dry_run_posts.read_text().splitlines()) == 1

        assert job.execute_in_process(instance=instance, tags=tags).success
    assert len(dry_run_posts.read_text().splitlines()) == 1


def test_a_provisional_use_posts_from_the_live_run_that_first_stores_it(
    db_url: str, dry_run_posts: Path
) -> None:
    """30 s of clean hold: the use is stored `short_hold`, above the posting floor (its own
    calibration, issue 14 point 5), and posted by that same run, once."""
    now = datetime.now(UTC)
    frame = _use_frame(now - timedelta(seconds=50), hold_s=30)
    load_readings(db_url, frame)
    set_ingest_watermark(db_url, frame["ts"].max())
    job, tags = _live_job(db_url, now)
    with dg.instance_for_test() as instance:
        assert job.execute_in_process(instance=instance, tags=tags).success
    [event] = [e for e in event_rows(db_url, "urine_tank") if e["event_type"] == "urination"]
    assert "short_hold" in event["metadata"]["flags"]
    assert event["confidence"] >= DEFAULT_POST_MIN_CONFIDENCE
    assert _post_statuses(db_url, event["event_key"]) == ["posted"]
    assert len(dry_run_posts.read_text().splitlines()) == 1
