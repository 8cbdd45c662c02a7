"""The watermark sensor, evaluated with build_sensor_context against the real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from peebot_dagster.defs.detection.checks import build_detection_checks
from peebot_dagster.defs.detection.jobs import detection_job
from peebot_dagster.defs.detection.sensors import (
    MAX_LOOKAHEAD,
    SensorSettings,
    build_watermark_sensor,
    last_complete_minute,
    plan_runs,
    telemetry_watermark_sensor,
)
from peebot_dagster.defs.tags import RANGE_END_TAG, RANGE_START_TAG, range_tags
from peebot_dagster.detectors.registry import PROCESSORS
from peebot_dagster.settings import Settings
from tests.support.dagster_testing import TEST_START, db_resource, set_ingest_watermark

SETTINGS = SensorSettings(
    interval_seconds=15, initial_minutes=3, max_single_runs=5, range_minutes=120, max_range_runs=3
)
LOOKAHEAD = timedelta(minutes=30)
T0 = datetime(2023, 9, 19, 1, 0, 30, tzinfo=UTC)


@pytest.fixture
def sensor(test_partitions):
    return build_watermark_sensor(detection_job, test_partitions, LOOKAHEAD, SETTINGS)


def sensor_defs(url, test_assets, sensor) -> dg.Definitions:
    return dg.Definitions(
        assets=test_assets,
        asset_checks=build_detection_checks(partitions_def=test_assets[0].partitions_def),
        jobs=[detection_job],
        sensors=[sensor],
        resources={"db": db_resource(url)},
    )


def tick(sensor, url, instance, cursor, test_assets):
    ctx = dg.build_sensor_context(
        cursor=cursor,
        resources={"db": db_resource(url)},
        instance=instance,
        definitions=sensor_defs(url, test_assets, sensor),
    )
    result = sensor.evaluate_tick(ctx)
    return result.run_requests or [], result.cursor, result.skip_message


def test_complete_minute_is_watermark_minus_lookahead():
    # 01:00:30 - 30 min = 00:30:30: minute 00:29 (ends 00:30) is complete, 00:30 is not
    assert last_complete_minute(T0, LOOKAHEAD) == datetime(2023, 9, 19, 0, 29, tzinfo=UTC)
    exact = datetime(2023, 9, 19, 1, 0, tzinfo=UTC)
    assert last_complete_minute(exact, LOOKAHEAD) == datetime(2023, 9, 19, 0, 29, tzinfo=UTC)
    # never a minute the wall clock has not finished
    now = datetime(2023, 9, 19, 0, 10, 5, tzinfo=UTC)
    assert last_complete_minute(T0, LOOKAHEAD, now) == datetime(2023, 9, 19, 0, 9, tzinfo=UTC)


def test_no_watermark_skips(db_url, sensor, instance, test_assets):
    requests, cursor, skip = tick(sensor, db_url, instance, None, test_assets)
    assert requests == [] and cursor is None and "no ingest watermark" in skip


def test_requests_exactly_the_complete_minutes_and_respects_cursor(
    db_url, sensor, instance, test_assets
):
    set_ingest_watermark(db_url, T0)
    # first tick: the recent past (3 minutes), not the partitions' start in 2023-09-18
    requests, cursor, _ = tick(sensor, db_url, instance, None, test_assets)
    keys = [r.partition_key for r in requests]
    assert keys == ["2023-09-19-00:27", "2023-09-19-00:28", "2023-09-19-00:29"]
    assert [r.run_key for r in requests] == keys
    assert cursor == "2023-09-19-00:29"
    # same watermark: nothing new, cursor kept
    requests, cursor2, skip = tick(sensor, db_url, instance, cursor, test_assets)
    assert requests == [] and cursor2 == cursor and "no new complete minute" in skip
    # 50 s later: one more minute is complete (00:30), 00:31 is not yet
    set_ingest_watermark(db_url, T0 + timedelta(seconds=50))
    requests, cursor3, _ = tick(sensor, db_url, instance, cursor, test_assets)
    assert [r.partition_key for r in requests] == ["2023-09-19-00:30"]
    assert cursor3 == "2023-09-19-00:30"


def test_dedupes_by_run_key_after_cursor_moves_back(loaded_db, sensor, instance, test_assets):
    set_ingest_watermark(loaded_db, T0)
    requests, cursor, _ = tick(sensor, loaded_db, instance, None, test_assets)
    # the daemon launches detection_job runs tagged with the run key; run two for real
    job = sensor_defs(loaded_db, test_assets, sensor).resolve_job_def("detection_job")
    for request in requests[:2]:
        result = job.execute_in_process(
            instance=instance,
            partition_key=request.partition_key,
            tags={"dagster/run_key": request.run_key},
        )
        assert result.success
        # every detection asset and its checks ran in that one run
        assert len(result.get_asset_materialization_events()) == 4
        assert {e.check_name for e in result.get_asset_check_evaluations()} == {
            "no_duplicate_events",
            "plausible_event_rate",
            "feed_freshness",
        }
    # the cursor is reset: the two minutes already run are not requested again
    again, cursor2, _ = tick(sensor, loaded_db, instance, None, test_assets)
    assert [r.run_key for r in again] == [requests[2].run_key]
    assert cursor2 == cursor


def test_catches_up_in_bounded_ranges(db_url, sensor, instance, test_assets):
    set_ingest_watermark(db_url, T0)
    _, cursor, _ = tick(sensor, db_url, instance, None, test_assets)
    # ingest comes back 10 hours later: 600 pending minutes
    set_ingest_watermark(db_url, T0 + timedelta(hours=10))
    requests, cursor2, _ = tick(sensor, db_url, instance, cursor, test_assets)
    assert len(requests) == SETTINGS.max_range_runs  # bounded per tick
    spans = [(r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG]) for r in requests]
    assert spans == [
        ("2023-09-19-00:30", "2023-09-19-02:29"),
        ("2023-09-19-02:30", "2023-09-19-04:29"),
        ("2023-09-19-04:30", "2023-09-19-06:29"),
    ]
    assert [r.run_key for r in requests] == [f"{a}...{b}" for a, b in spans]
    assert all(r.partition_key is None for r in requests)
    assert cursor2 == "2023-09-19-06:29"
    # the next tick continues where this one stopped, up to the last complete minute
    requests, cursor3, _ = tick(sensor, db_url, instance, cursor2, test_assets)
    spans = [(r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG]) for r in requests]
    assert spans == [
        ("2023-09-19-06:30", "2023-09-19-08:29"),
        ("2023-09-19-08:30", "2023-09-19-10:29"),
    ]
    assert cursor3 == "2023-09-19-10:29"


def test_plan_never_starts_before_the_partitions():
    runs, cursor = plan_runs(
        TEST_START + timedelta(minutes=33),
        None,
        LOOKAHEAD,
        TEST_START,
        SensorSettings(initial_minutes=10),
    )
    # 20:33 - 30 min look-ahead: 20:02 is the last complete minute; 10 recent minutes
    # would reach back before the first partition (20:00)
    assert [r.first for r in runs] == ["2023-09-18-20:00", "2023-09-18-20:01", "2023-09-18-20:02"]
    assert cursor == "2023-09-18-20:02"


def test_range_tags_shape():
    assert range_tags("a", "b") == {RANGE_START_TAG: "a", RANGE_END_TAG: "b"}


def test_deployed_sensor_defaults():
    assert telemetry_watermark_sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert telemetry_watermark_sensor.minimum_interval_seconds <= 30
    assert max(p.lookahead for p in PROCESSORS) == MAX_LOOKAHEAD


def sensor_settings(environ: dict[str, str]) -> SensorSettings:
    return SensorSettings.from_settings(Settings.from_environ(environ))


def test_settings_from_env_reject_bad_values():
    with pytest.raises(ValueError, match="PEEBOT_SENSOR_INTERVAL_SECONDS"):
        sensor_settings({"PEEBOT_SENSOR_INTERVAL_SECONDS": "60"})
    with pytest.raises(ValueError, match="PEEBOT_SENSOR_RANGE_MINUTES"):
        sensor_settings({"PEEBOT_SENSOR_RANGE_MINUTES": "lots"})
    assert sensor_settings({}) == SensorSettings()
