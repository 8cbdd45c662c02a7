"""The figures of one UTC day: uses, volume, processor cycles and signal coverage (pure
`summarize`), and the queries that gather them (`load_day`). The `daily_summary` asset
(defs/summary/assets.py) adds the chart and the digest text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg

from peebot_dagster.detectors.base import AOS_STATUS_CLASS
from peebot_dagster.detectors.signal import SIGNAL_ITEM
from peebot_dagster.detectors.urine import ML_PER_PCT, TANK_ITEM
from peebot_dagster.posting.render import EventView


@dataclass(frozen=True)
class DaySummary:
    day: date
    uses: int
    volume_ml: float
    bulk_transfers: int
    upa_cycles: int
    signal_coverage: float  # share of the day's elapsed minutes with signal (0..1)
    los_events: int
    level_min: float | None
    level_max: float | None
    readings: int


def summarize(
    day: date,
    events: Sequence[EventView],
    aos_minutes: int,
    elapsed_minutes: int,
    levels: Sequence[float],
) -> DaySummary:
    """Pure: the day's figures from its events, signal minutes and tank levels."""
    uses = [e for e in events if e.event_type == "urination"]
    volume = sum(_volume(e) for e in uses)
    return DaySummary(
        day=day,
        uses=len(uses),
        volume_ml=round(volume, 1),
        bulk_transfers=sum(e.event_type == "bulk_transfer" for e in events),
        upa_cycles=sum(e.event_type == "upa_cycle_start" for e in events),
        signal_coverage=round(aos_minutes / elapsed_minutes, 4) if elapsed_minutes else 0.0,
        los_events=sum(e.event_type == "los" for e in events),
        level_min=min(levels) if levels else None,
        level_max=max(levels) if levels else None,
        readings=len(levels),
    )


def _volume(event: EventView) -> float:
    meta = event.metadata or {}
    if meta.get("volume_ml") is not None:
        return float(meta["volume_ml"])
    delta = meta.get("delta")
    return float(delta) * ML_PER_PCT if delta is not None else 0.0


def load_day(
    conn: psycopg.Connection[Any], start: datetime, end: datetime
) -> tuple[list[EventView], int, list[tuple[datetime, float]]]:
    """The day's live events, its minutes with signal, and the tank levels in `[start, end)`
    (with the last level before `start`, the one in force when the day opens)."""
    events = [
        EventView(event_key=r[0], event_type=r[1], detected_at=r[2], metadata=r[3] or {}, id=r[4])
        for r in conn.execute(
            """
            SELECT event_key, event_type, detected_at, metadata, id FROM detected_event
            WHERE detected_at >= %s AND detected_at < %s AND retracted_at IS NULL
            ORDER BY detected_at
            """,
            (start, end),
        )
    ]
    row = conn.execute(
        """
        SELECT count(DISTINCT date_trunc('minute', r.ts))
        FROM telemetry_reading r JOIN telemetry_channel c ON c.id = r.channel_id
        WHERE c.item_id = %s AND r.status_class = %s AND r.ts >= %s AND r.ts < %s
        """,
        (SIGNAL_ITEM, AOS_STATUS_CLASS, start, end),
    ).fetchone()
    aos_minutes = int(row[0]) if row else 0
    levels = conn.execute(
        """
        (SELECT r.ts, r.value FROM telemetry_reading r JOIN telemetry_channel c ON c.id = r.channel_id
         WHERE c.item_id = %(item)s AND r.ts < %(start)s ORDER BY r.ts DESC LIMIT 1)
        UNION ALL
        (SELECT r.ts, r.value FROM telemetry_reading r JOIN telemetry_channel c ON c.id = r.channel_id
         WHERE c.item_id = %(item)s AND r.ts >= %(start)s AND r.ts < %(end)s)
        ORDER BY 1
        """,
        {"item": TANK_ITEM, "start": start, "end": end},
    ).fetchall()
    return events, aos_minutes, [(ts, float(v)) for ts, v in levels]
