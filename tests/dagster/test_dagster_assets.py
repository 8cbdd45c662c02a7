"""Detection assets against the real test database, materialized by Dagster."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pytest

from peebot_dagster.defs.tags import range_tags
from peebot_dagster.detectors.registry import get_processor
from peebot_dagster.partitions import MINUTE, partition_key
from peebot_dagster.windows import run_window
from tests.support.dagster_testing import db_resource, event_rows, recording_frame

URINE = get_processor("urine_tank")


def materialize(
    assets: list[Any],
    url: str,
    instance: dg.DagsterInstance,
    name: str,
    *,
    key: str | None = None,
    first: str | None = None,
    last: str | None = None,
    params: dict[str, float] | None = None,
) -> dg.ExecuteInProcessResult:
    run_config = {"ops": {name: {"config": {"params": params}}}} if params else None
    return dg.materialize(
        assets,
        selection=[name],
        partition_key=key,
        tags=range_tags(first, last) if first and last else None,
        resources={"db": db_resource(url)},
        instance=instance,
        run_config=run_config,
    )


def metadata(result: dg.ExecuteInProcessResult, name: str) -> dict[str, Any]:
    mats = result.asset_materializations_for_node(name)
    return {k: v.value for k, v in mats[0].metadata.items()}


def detector_events(shared_data: Path, start: datetime, end: datetime) -> list[tuple[str, str]]:
    """What the detector finds on the whole recording, for events starting in the range."""
    events = URINE.detect(recording_frame(shared_data))
    return [(e.event_key, e.event_type) for e in events if start <= e.start < end]


def test_recording_materialized_yields_detector_events(
    loaded_db, test_assets, instance, shared_data
):
    start = datetime(2023, 9, 18, 22, 0, tzinfo=UTC)
    end = datetime(2023, 9, 19, 11, 0, tzinfo=UTC)
    result = materialize(
        test_assets,
        loaded_db,
        instance,
        "urine_tank_events",
        first=partition_key(start),
        last=partition_key(end - MINUTE),
    )
    assert result.success
    mats = result.asset_materializations_for_node("urine_tank_events")
    assert len(mats) == int((end - start) / MINUTE)  # one per minute of the range
    stored = [(r["event_key"], r["event_type"]) for r in event_rows(loaded_db)]
    expected = detector_events(shared_data, start, end)
    assert stored == expected
    assert {t for _, t in stored} == {"urination", "bulk_transfer"}
    for row in event_rows(loaded_db):
        assert row["window_key"] == partition_key(row["detected_at"])
    meta = metadata(result, "urine_tank_events")
    assert meta["range_events"] == len(expected) == meta["inserted"]
    # per-minute numbers, and a chart only where an event starts
    by_key = {m.partition: m.metadata for m in mats}
    event_minute = partition_key(event_rows(loaded_db)[0]["detected_at"])
    assert by_key[event_minute]["events"].value >= 1
    assert "chart" in by_key[event_minute]
    assert by_key[event_minute]["chart"].value.startswith("![level](data:image/png;base64,")
    quiet = "2023-09-18-23:00"
    assert by_key[quiet]["events"].value == 0 and "chart" not in by_key[quiet]
    with psycopg.connect(loaded_db) as conn:
        wm, state = conn.execute(
            "SELECT last_processed_at, state_data FROM processor_state "
            "WHERE processor_name = 'urine_tank'"
        ).fetchone()
    assert wm == end and state["events"] == len(expected)


def test_same_window_twice_changes_nothing(loaded_db, test_assets, instance):
    first, last = "2023-09-18-23:00", "2023-09-19-00:59"
    materialize(test_assets, loaded_db, instance, "urine_tank_events", first=first, last=last)
    with psycopg.connect(loaded_db) as conn:
        before = conn.execute(
            "SELECT id, event_key, updated_at FROM detected_event ORDER BY id"
        ).fetchall()
        posts_before = conn.execute("SELECT count(*) FROM social_post").fetchone()
    result = materialize(
        test_assets, loaded_db, instance, "urine_tank_events", first=first, last=last
    )
    meta = metadata(result, "urine_tank_events")
    assert (meta["inserted"], meta["updated"], meta["deleted"], meta["retracted"]) == (0, 0, 0, 0)
    assert meta["unchanged"] == len(before) > 0
    with psycopg.connect(loaded_db) as conn:
        after = conn.execute(
            "SELECT id, event_key, updated_at FROM detected_event ORDER BY id"
        ).fetchall()
        posts_after = conn.execute("SELECT count(*) FROM social_post").fetchone()
    assert after == before
    assert posts_after == posts_before


def test_changed_parameter_replaces_events_and_keeps_posted(loaded_db, test_assets, instance):
    first, last = "2023-09-18-23:00", "2023-09-19-01:59"
    materialize(test_assets, loaded_db, instance, "urine_tank_events", first=first, last=last)
    rows = event_rows(loaded_db)
    uses = [r for r in rows if r["event_type"] == "urination"]
    assert len(uses) >= 3
    posted_key, deleted_keys = uses[0]["event_key"], [r["event_key"] for r in uses[1:]]
    with psycopg.connect(loaded_db) as conn:
        conn.execute(
            "UPDATE detected_event SET posted_at = now(), tweet_id = 't1' WHERE event_key = %s",
            (posted_key,),
        )
    # a settled rise of 8 % is above every toilet use: only the bulk transfer remains
    result = materialize(
        test_assets,
        loaded_db,
        instance,
        "urine_tank_events",
        first=first,
        last=last,
        params={"min_settled_rise_pct": 8.0},
    )
    meta = metadata(result, "urine_tank_events")
    assert meta["retracted"] == 1 and meta["deleted"] == len(deleted_keys)
    after = {r["event_key"]: r for r in event_rows(loaded_db)}
    assert after[posted_key]["retracted"] is True
    assert not set(deleted_keys) & set(after)
    assert [r["event_type"] for r in after.values() if not r["retracted"]] == ["bulk_transfer"]
    # back to the defaults: the retracted event is live again, the others come back
    materialize(test_assets, loaded_db, instance, "urine_tank_events", first=first, last=last)
    restored = {r["event_key"]: r for r in event_rows(loaded_db)}
    assert set(restored) == {r["event_key"] for r in rows}
    assert not any(r["retracted"] for r in restored.values())


def test_unknown_parameter_fails_clearly(loaded_db, test_assets, instance):
    with pytest.raises(dg.Failure, match="unknown parameter"):
        materialize(
            test_assets,
            loaded_db,
            instance,
            "urine_tank_events",
            key="2023-09-18-23:00",
            params={"no_such_threshold": 1.0},
        )


def test_three_hour_range_equals_180_minute_runs(loaded_db, test_assets, instance):
    start = datetime(2023, 9, 18, 23, 0, tzinfo=UTC)
    minutes = [start + i * MINUTE for i in range(180)]
    materialize(
        test_assets,
        loaded_db,
        instance,
        "urine_tank_events",
        first=partition_key(minutes[0]),
        last=partition_key(minutes[-1]),
    )
    ranged = event_rows(loaded_db, "urine_tank")
    assert len(ranged) >= 4
    with psycopg.connect(loaded_db) as conn:
        conn.execute("DELETE FROM detected_event")
    # a few minutes through Dagster (the event minutes among them), the rest through the
    # same window function the asset calls
    event_minutes = {r["window_key"] for r in ranged}
    real = sorted(event_minutes | {partition_key(minutes[0]), partition_key(minutes[-1])})
    for key in real:
        assert materialize(test_assets, loaded_db, instance, "urine_tank_events", key=key).success
    with psycopg.connect(loaded_db, autocommit=True) as conn:
        for minute in minutes:
            if partition_key(minute) not in real:
                run_window(conn, URINE, minute, minute + MINUTE)
    assert event_rows(loaded_db, "urine_tank") == ranged


def test_event_across_partition_boundary_is_stored_once(loaded_db, test_assets, instance):
    # the slow 2023 use climbs from 02:10:16 to 02:11:45
    for key in ("2023-09-19-02:10", "2023-09-19-02:11", "2023-09-19-02:10", "2023-09-19-02:11"):
        materialize(test_assets, loaded_db, instance, "urine_tank_events", key=key)
    rows = event_rows(loaded_db)
    assert len(rows) == 1
    event = rows[0]
    # a single minute carries its own numbers: events starting in it and the level
    result = materialize(test_assets, loaded_db, instance, "urine_tank_events", key=key)
    meta = metadata(result, "urine_tank_events")
    assert meta["events"] == 0 and meta["level"] == 8.0  # 02:11 holds no start; tank at 8 %
    assert "chart" not in meta
    assert event["window_key"] == "2023-09-19-02:10"
    assert partition_key(event["ended_at"]) == "2023-09-19-02:11"
    # a range covering both minutes finds the same single event
    materialize(
        test_assets,
        loaded_db,
        instance,
        "urine_tank_events",
        first="2023-09-19-02:00",
        last="2023-09-19-02:29",
    )
    assert event_rows(loaded_db) == rows


def test_all_detection_assets_run_in_one_range(loaded_db, test_assets, instance):
    names = ["urine_tank_events", "upa_cycles", "signal_events", "clean_water_events"]
    result = dg.materialize(
        test_assets,
        selection=names,
        tags=range_tags("2023-09-18-23:00", "2023-09-19-00:59"),
        resources={"db": db_resource(loaded_db)},
        instance=instance,
    )
    assert result.success
    for name in names:
        assert len(result.asset_materializations_for_node(name)) == 120
    with psycopg.connect(loaded_db) as conn:
        processors = dict(
            conn.execute("SELECT processor_name, last_processed_at FROM processor_state").fetchall()
        )
    end = datetime(2023, 9, 19, 1, 0, tzinfo=UTC)
    assert {processors[p] for p in ("urine_tank", "upa_cycle", "signal", "clean_water")} == {end}


def test_incomplete_window_uses_ingest_watermark(loaded_db):
    from tests.support.dagster_testing import set_ingest_watermark

    minute = datetime(2023, 9, 19, 2, 10, tzinfo=UTC)
    set_ingest_watermark(loaded_db, minute + timedelta(minutes=2))
    with psycopg.connect(loaded_db, autocommit=True) as conn:
        outcome = run_window(conn, URINE, minute, minute + MINUTE)
    assert not outcome.complete
    assert outcome.horizon == minute + timedelta(minutes=2)
