from __future__ import annotations

import base64
import json
import re
import uuid
from datetime import UTC, datetime, timedelta

import dagster as dg
import psycopg

from peebot_dagster.defs.summary.assets import daily_summary
from peebot_dagster.posting.render import EventView
from peebot_dagster.resources import PostgresResource
from peebot_dagster.summary import summarize

# a recent day, inside the daily partitions (which start 60 days back)
DAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=5)
DAY_KEY = DAY.strftime("%Y-%m-%d")


def _reading(
    conn: psycopg.Connection, item: str, ts: datetime, value: float, status: int | None = None
) -> None:
    conn.execute(
        """
        INSERT INTO telemetry_reading (channel_id, ts, value, status_class, event_id)
        SELECT id, %s, %s, %s, %s FROM telemetry_channel WHERE item_id = %s
        """,
        (ts, value, status, uuid.uuid4(), item),
    )


def _event(
    conn: psycopg.Connection, etype: str, at: datetime, meta: dict, retracted: bool = False
) -> None:
    conn.execute(
        """
        INSERT INTO detected_event (event_key, event_type, processor, item_id, detected_at,
                                    metadata, window_key, retracted_at)
        VALUES (%s, %s, 'test', 'NODE3000005', %s, %s::jsonb, %s, %s)
        """,
        (
            f"test:{etype}:{at.isoformat()}",
            etype,
            at,
            json.dumps(meta),
            at.strftime("%Y-%m-%d-%H:%M"),
            at if retracted else None,
        ),
    )


def test_daily_summary_counts_the_day_and_charts_it(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        _reading(conn, "NODE3000005", DAY - timedelta(hours=1), 40)  # as-of value before the day
        for i, level in enumerate([40, 43, 42, 45, 44]):
            _reading(conn, "NODE3000005", DAY + timedelta(hours=2 * i + 1), level)
        _reading(conn, "NODE3000005", DAY + timedelta(days=1, hours=1), 99)  # next day: not counted
        for minute in range(720):  # signal for half the day, several readings a minute
            for second in (0, 30):
                _reading(
                    conn, "TIME_000001", DAY + timedelta(minutes=minute, seconds=second), 1.0, 24
                )
        _reading(conn, "TIME_000001", DAY + timedelta(hours=13), 1.0, 0)  # LOS: not coverage
        _event(conn, "urination", DAY + timedelta(hours=3), {"delta": 3, "volume_ml": 240})
        _event(conn, "urination", DAY + timedelta(hours=7), {"delta": 3, "volume_ml": 240})
        _event(
            conn,
            "urination",
            DAY + timedelta(hours=8),
            {"delta": 2, "volume_ml": 160},
            retracted=True,
        )
        _event(conn, "upa_cycle_start", DAY + timedelta(hours=9), {})
        _event(conn, "urination", DAY + timedelta(days=1, hours=2), {"delta": 4, "volume_ml": 320})

    result = dg.materialize(
        [daily_summary], partition_key=DAY_KEY, resources={"db": PostgresResource(dsn=db_url)}
    )
    assert result.success
    meta = result.asset_materializations_for_node("daily_summary")[0].metadata
    assert meta["uses"].value == 2
    assert meta["volume_ml"].value == 480.0
    assert meta["upa_cycles"].value == 1
    assert meta["bulk_transfers"].value == 0
    assert meta["signal_coverage"].value == 0.5
    assert meta["level_min"].value == 40 and meta["level_max"].value == 45
    assert meta["digest"].value.startswith(
        f"PeeBot daily digest for {DAY_KEY} (UTC): 2 toilet visits, about 480 mL in total"
    )
    png = re.search(r"base64,([A-Za-z0-9+/=]+)\)", meta["chart"].value)
    assert png is not None and base64.b64decode(png.group(1))[:4] == b"\x89PNG"


def test_summarize_is_pure_and_handles_an_empty_day() -> None:
    empty = summarize(DAY.date(), [], 0, 0, [])
    assert (empty.uses, empty.volume_ml, empty.signal_coverage, empty.level_min) == (
        0,
        0,
        0.0,
        None,
    )
    events = [
        EventView("a", "urination", DAY, {"delta": 3}),  # volume from the delta when missing
        EventView("b", "bulk_transfer", DAY, {"delta": 40, "volume_ml": 3200}),
        EventView("c", "los", DAY, {}),
    ]
    s = summarize(DAY.date(), events, 360, 1440, [10, 12])
    assert (s.uses, s.volume_ml, s.bulk_transfers, s.los_events, s.signal_coverage) == (
        1,
        240,
        1,
        1,
        0.25,
    )
