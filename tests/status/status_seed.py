"""The data the `peebot status` tests look at: readings through the real ingest writer,
events and posts as the Dagster side writes them."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import psycopg

from peebot.status.shaping import floor_minute
from peebot_ingest import db as database
from peebot_ingest.batch import Batch
from peebot_ingest.records import ValidatedReading
from peebot_ingest.sink import DatabaseSink
from peebot_ingest.validate import Validator


def seed_overview(url: str, now: datetime) -> dict[str, int]:
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
            assert isinstance(r, ValidatedReading)
            readings.append(r)
    old = v.reading("NODE3000005", base - timedelta(minutes=15), 39)  # outside the window
    assert isinstance(old, ValidatedReading)
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
