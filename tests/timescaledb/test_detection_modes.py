"""The Dagster side in both storage modes: detection assets reading their windows, the daily
summary, and neither re-run over readings retention removed (the stored events and the
earlier summary stay as they are)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pytest

from peebot_dagster.defs.detection.assets import build_detection_assets
from peebot_dagster.defs.detection.partitions import minute_partitions_def
from peebot_dagster.defs.summary.assets import daily_summary
from peebot_dagster.defs.tags import range_tags
from peebot_dagster.defs.telemetry import telemetry_reading_spec
from peebot_dagster.detectors.registry import get_processor
from peebot_dagster.partitions import MINUTE, partition_key
from peebot_dagster.resources import PostgresResource
from peebot_ingest import reading_policy as policies
from tests.support.dagster_testing import TEST_START, event_rows, load_readings, recording_frame

URINE = get_processor("urine_tank")
START = datetime(2023, 9, 18, 22, 0, tzinfo=UTC)
END = datetime(2023, 9, 19, 11, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def assets() -> list[Any]:
    partitions = minute_partitions_def(TEST_START)
    return [telemetry_reading_spec(partitions), *build_detection_assets(partitions)]


@pytest.fixture
def recording_db(storage_db_url: str, shared_data: Path) -> str:
    """A database of each mode holding the 2023 recording."""
    load_readings(storage_db_url, recording_frame(shared_data))
    return storage_db_url


def _materialize(assets: list[Any], url: str, first: datetime, end: datetime) -> Any:
    with dg.DagsterInstance.ephemeral() as instance:
        return dg.materialize(
            assets,
            selection=["urine_tank_events"],
            tags=range_tags(partition_key(first), partition_key(end - MINUTE)),
            resources={"db": PostgresResource(dsn=url)},
            instance=instance,
            raise_on_error=False,
        )


def _failure(result: Any) -> str:
    (event,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    return str(event.step_failure_data.user_failure_data.description)


def test_detection_assets_read_their_windows(
    recording_db: str, assets: list[Any], shared_data: Path
) -> None:
    result = _materialize(assets, recording_db, START, END)
    assert result.success
    expected = [
        (e.event_key, e.event_type)
        for e in URINE.detect(recording_frame(shared_data))
        if START <= e.start < END
    ]
    assert [(r["event_key"], r["event_type"]) for r in event_rows(recording_db)] == expected
    assert {t for _, t in expected} == {"urination", "bulk_transfer"}


def test_windows_whose_readings_retention_removed_are_not_re_detected(
    recording_db: str, assets: list[Any]
) -> None:
    assert _materialize(assets, recording_db, START, END).success
    with psycopg.connect(recording_db) as conn:
        posted = conn.execute(
            "UPDATE social_post SET status = 'posted', posted_at = now() WHERE event_id = "
            "(SELECT id FROM detected_event ORDER BY detected_at LIMIT 1) RETURNING event_id"
        ).fetchone()
    assert posted, "the run enqueued its events' posts"
    stored = event_rows(recording_db)
    maintained = policies.maintain(recording_db)  # 2023 is past the 30-day retention
    assert maintained.failures == [] and maintained.policy is not None
    assert maintained.policy.raw_kept_from is not None and maintained.policy.raw_kept_from > END
    again = _materialize(assets, recording_db, START, END)
    assert not again.success
    message = _failure(again)
    assert "\n" not in message
    assert message.startswith("urine_tank window [2023-09-18 22:00, 2023-09-19 11:00) reads ")
    assert "retention removed the raw readings before" in message
    assert "what it stored before is kept as it is" in message
    assert event_rows(recording_db) == stored  # nothing deleted, nothing retracted
    with psycopg.connect(recording_db) as conn:
        status = conn.execute("SELECT status FROM social_post WHERE event_id = %s", posted)
        assert status.fetchone() == ("posted",)


# a recent day, inside the daily partitions (which start 60 days back)
DAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=5)


def _day_readings(url: str) -> None:
    with psycopg.connect(url) as conn:
        ids = dict(conn.execute("SELECT item_id, id FROM telemetry_channel").fetchall())
        rows = [(ids["NODE3000005"], DAY - timedelta(hours=1), 40.0, None)]
        rows += [
            (ids["NODE3000005"], DAY + timedelta(hours=2 * i + 1), level, None)
            for i, level in enumerate([40.0, 43.0, 42.0, 45.0, 44.0])
        ]
        rows += [
            (ids["TIME_000001"], DAY + timedelta(minutes=m, seconds=s), 1.0, 24)
            for m in range(360)
            for s in (0, 30)
        ]
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO telemetry_reading (channel_id, ts, value, status_class, event_id) "
                "VALUES (%s, %s, %s, %s, %s)",
                [(*row, uuid.uuid4()) for row in rows],
            )
        conn.execute(
            "INSERT INTO detected_event (event_key, event_type, processor, item_id, detected_at, "
            "metadata, window_key) VALUES ('t:1', 'urination', 'urine_tank', 'NODE3000005', %s, "
            "'{\"delta\": 3, \"volume_ml\": 240}', 'k')",
            (DAY + timedelta(hours=3),),
        )


def _summary(url: str) -> Any:
    return dg.materialize(
        [daily_summary],
        partition_key=DAY.strftime("%Y-%m-%d"),
        resources={"db": PostgresResource(dsn=url)},
        raise_on_error=False,
    )


def test_daily_summary_and_its_guard(storage_db_url: str) -> None:
    _day_readings(storage_db_url)
    result = _summary(storage_db_url)
    assert result.success
    meta = {
        k: v.value
        for k, v in result.asset_materializations_for_node("daily_summary")[0].metadata.items()
    }
    assert (meta["uses"], meta["volume_ml"], meta["signal_coverage"]) == (1, 240.0, 0.25)
    assert (meta["level_min"], meta["level_max"], meta["tank_readings"]) == (40, 45, 5)
    policies.set_reading_policy(storage_db_url, retention_days=2)
    assert policies.maintain(storage_db_url).failures == []
    again = _summary(storage_db_url)
    assert not again.success
    message = _failure(again)
    assert message.startswith(f"daily_summary {DAY:%Y-%m-%d} reads readings from ")
    assert "retention removed the raw readings before" in message
