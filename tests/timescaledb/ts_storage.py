"""Helpers for the storage tests (plain and TimescaleDB): readings at chosen times, what the
database holds (raw rows, minutes, chunks), the CLI in-process."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from click.testing import CliRunner, Result

from peebot.cli import cli

ITEM = "NODE3000005"
NS = uuid.UUID("0b6f8d8e-3f0e-4a57-9a43-0d0e5c1f2a11")


def utcnow_minute() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0)


def insert_readings(url: str, times: Sequence[datetime], item: str = ITEM) -> int:
    """One reading per time (value = its index), as a writer would store it."""
    with psycopg.connect(url) as conn:
        channel = conn.execute(
            "SELECT id FROM telemetry_channel WHERE item_id = %s", (item,)
        ).fetchone()
        assert channel, item
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO telemetry_reading (channel_id, ts, value, event_id) "
                "VALUES (%s, %s, %s, %s)",
                [
                    (channel[0], ts, float(i), uuid.uuid5(NS, f"{item}|{ts.isoformat()}|{i}"))
                    for i, ts in enumerate(times)
                ],
            )
    return len(times)


def burst(start: datetime, n: int, step: timedelta = timedelta(seconds=10)) -> list[datetime]:
    return [start + i * step for i in range(n)]


def raw_count(url: str, lo: datetime | None = None, hi: datetime | None = None) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM telemetry_reading "
            "WHERE (%(lo)s::timestamptz IS NULL OR ts >= %(lo)s) "
            "AND (%(hi)s::timestamptz IS NULL OR ts < %(hi)s)",
            {"lo": lo, "hi": hi},
        ).fetchone()
    return int(row[0]) if row else 0


def minute_counts(
    url: str, lo: datetime | None = None, hi: datetime | None = None
) -> dict[datetime, int]:
    """telemetry_minute's readings per minute (all channels) in [lo, hi)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT bucket, sum(n)::bigint FROM telemetry_minute "
            "WHERE (%(lo)s::timestamptz IS NULL OR bucket >= %(lo)s) "
            "AND (%(hi)s::timestamptz IS NULL OR bucket < %(hi)s) GROUP BY bucket",
            {"lo": lo, "hi": hi},
        ).fetchall()
    return {bucket: int(n) for bucket, n in rows}


def expected_minutes(times: Sequence[datetime]) -> dict[datetime, int]:
    out: dict[datetime, int] = {}
    for ts in times:
        minute = ts.astimezone(UTC).replace(second=0, microsecond=0)
        out[minute] = out.get(minute, 0) + 1
    return out


def chunks(url: str) -> list[tuple[datetime, datetime, bool]]:
    """telemetry_reading's chunks: (range_start, range_end, is_compressed)."""
    with psycopg.connect(url) as conn:
        return [
            (a, b, bool(c))
            for a, b, c in conn.execute(
                "SELECT range_start, range_end, is_compressed FROM timescaledb_information.chunks "
                "WHERE hypertable_name = 'telemetry_reading' ORDER BY range_start"
            ).fetchall()
        ]


def mode_of(url: str) -> str:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT value #>> '{}' FROM peebot_setting WHERE key = 'storage_mode'"
        ).fetchone()
    assert row
    return str(row[0])


def setting(url: str, key: str) -> Any:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT value FROM peebot_setting WHERE key = %s", (key,)).fetchone()
    return row[0] if row else None


def peebot(*args: str) -> Result:
    """`peebot ARGS` in-process (PEEBOT_DATABASE_URL from the test's environment)."""
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)
