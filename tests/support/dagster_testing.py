"""Helpers for the Dagster tests: the 2023 recording in the database, stored events."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg

from peebot_dagster.resources import PostgresResource
from peebot_ingest.recordings import read_recording, to_frame

READING_NS = uuid.UUID("6f1c1b9e-8a2b-4c55-9b1e-2c7d3f4a5b60")
# The recording runs 2023-09-18 22:42 .. 2023-09-19 11:22 (UTC).
TEST_START = datetime(2023, 9, 18, 20, 0, tzinfo=UTC)


def recording_frame(shared_data: Path) -> pd.DataFrame:
    """The 2023 recording (`shared_data`: the `shared_data` fixture's folder)."""
    readings = []
    for path in sorted((shared_data / "issp-2023" / "public" / "data").glob("*.txt")):
        readings.extend(read_recording(path).readings)
    return to_frame(readings)


def load_readings(url: str, frame: pd.DataFrame) -> int:
    """COPY the frame's rows into telemetry_reading (event_id = uuid5 of item, ts, value)."""
    with psycopg.connect(url) as conn:
        channels = dict(conn.execute("SELECT item_id, id FROM telemetry_channel").fetchall())
        buf = io.StringIO()
        for row in frame.itertuples(index=False):
            ts = pd.Timestamp(row.ts).isoformat()
            sc = "" if pd.isna(row.status_class) else str(int(row.status_class))
            event_id = uuid.uuid5(READING_NS, f"{row.item_id}|{ts}|{row.value!r}")
            buf.write(
                f"{channels[row.item_id]}\t{ts}\t{row.value!r}\t{sc or chr(92) + 'N'}\t{event_id}\n"
            )
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY telemetry_reading (channel_id, ts, value, status_class, event_id) FROM STDIN"
            ) as copy,
        ):
            copy.write(buf.getvalue())
    return len(frame)


def set_ingest_watermark(url: str, when: datetime) -> None:
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO processor_state (processor_name, last_processed_at) VALUES ('ingest', %s) "
            "ON CONFLICT (processor_name) DO UPDATE SET last_processed_at = EXCLUDED.last_processed_at",
            (when,),
        )


def event_rows(url: str, processor: str | None = None) -> list[dict[str, Any]]:
    """Stored events, comparable across runs (no ids or bookkeeping times)."""
    with psycopg.connect(url) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(
            "SELECT event_key, event_type, processor, item_id, detected_at, ended_at, confidence, "
            "metadata, window_key, retracted_at IS NOT NULL AS retracted FROM detected_event "
            "WHERE %(p)s::text IS NULL OR processor = %(p)s ORDER BY detected_at, event_key",
            {"p": processor},
        )
        return list(cur.fetchall())


def db_resource(url: str) -> PostgresResource:
    return PostgresResource(dsn=url)
