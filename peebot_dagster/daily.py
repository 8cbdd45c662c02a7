"""The daily summary: uses, volume, processor cycles and signal coverage of one UTC day, with
a chart of the day's urine tank level, and the digest post text."""

import base64
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg
import psycopg

from peebot_dagster.detectors.base import AOS_STATUS_CLASS
from peebot_dagster.detectors.signal import SIGNAL_ITEM
from peebot_dagster.detectors.urine import ML_PER_PCT, TANK_ITEM
from peebot_dagster.posting.render import EventView, render_digest
from peebot_dagster.resources import PostgresResource


def daily_start_date() -> str:
    """First daily partition: PEEBOT_DAILY_PARTITIONS_START, else 60 days ago."""
    explicit = os.environ.get("PEEBOT_DAILY_PARTITIONS_START", "").strip()
    if explicit:
        return explicit
    return (datetime.now(UTC).date() - timedelta(days=60)).isoformat()


daily_partitions = dg.DailyPartitionsDefinition(start_date=daily_start_date(), timezone="UTC")


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


def _load_day(
    conn: psycopg.Connection[Any], start: datetime, end: datetime
) -> tuple[list[EventView], int, list[tuple[datetime, float]]]:
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


def level_chart_png(
    day_start: datetime,
    day_end: datetime,
    levels: Sequence[tuple[datetime, float]],
    events: Sequence[EventView],
) -> bytes:
    """A small step chart of the tank level over the day, uses and transfers marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    def num(when: datetime) -> float:
        return float(mdates.date2num(when))

    fig, ax = plt.subplots(figsize=(7, 2.4), dpi=80)
    if levels:
        xs = [num(max(ts, day_start)) for ts, _ in levels] + [num(min(day_end, datetime.now(UTC)))]
        ys = [v for _, v in levels] + [levels[-1][1]]
        ax.step(xs, ys, where="post", color="#c9a400", linewidth=1.2)
    colours = {"urination": "#1f77b4", "bulk_transfer": "#d62728"}
    for e in events:
        if e.event_type in colours:
            ax.axvline(num(e.detected_at), color=colours[e.event_type], linewidth=0.8, alpha=0.7)
    ax.set_xlim(num(day_start), num(day_end))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    ax.set_ylabel("urine tank %")
    ax.set_title(f"{day_start:%Y-%m-%d} UTC", fontsize=9)
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


@dg.asset(
    partitions_def=daily_partitions,
    deps=[dg.AssetKey("telemetry_reading")],
    group_name="summary",
    description="Uses, volume, processor cycles and signal coverage of one UTC day, with a "
    "chart of the tank level and the digest post text.",
)
def daily_summary(context: dg.AssetExecutionContext, db: PostgresResource) -> dg.MaterializeResult:
    window = context.partition_time_window
    start, end = window.start.astimezone(UTC), window.end.astimezone(UTC)
    elapsed = int((min(end, datetime.now(UTC)) - start).total_seconds() // 60)
    with db.connect() as conn:
        events, aos_minutes, levels = _load_day(conn, start, end)
    day_levels = [v for ts, v in levels if ts >= start]
    summary = summarize(start.date(), events, aos_minutes, max(elapsed, 0), day_levels)
    digest = render_digest(start.date(), events)
    png = level_chart_png(start, end, levels, events)
    chart = base64.b64encode(png).decode("ascii")
    return dg.MaterializeResult(
        metadata={
            "uses": summary.uses,
            "volume_ml": summary.volume_ml,
            "bulk_transfers": summary.bulk_transfers,
            "upa_cycles": summary.upa_cycles,
            "los_events": summary.los_events,
            "signal_coverage": summary.signal_coverage,
            "tank_readings": summary.readings,
            "level_min": dg.MetadataValue.float(summary.level_min)
            if summary.level_min is not None
            else dg.MetadataValue.null(),
            "level_max": dg.MetadataValue.float(summary.level_max)
            if summary.level_max is not None
            else dg.MetadataValue.null(),
            "digest": dg.MetadataValue.text(digest),
            "chart": dg.MetadataValue.md(f"![tank level](data:image/png;base64,{chart})"),
        }
    )


daily_summary_job = dg.define_asset_job("daily_summary_job", selection=[daily_summary])

daily_summary_schedule = dg.build_schedule_from_partitioned_job(
    daily_summary_job,
    hour_of_day=0,
    minute_of_hour=20,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

defs = dg.Definitions(
    assets=[daily_summary], jobs=[daily_summary_job], schedules=[daily_summary_schedule]
)
