"""`daily_summary`: one UTC day's figures, a chart of the tank level and the digest post text."""

# No `from __future__ import annotations`: Dagster reads the asset's annotations at runtime.

import base64
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from peebot_dagster.charts import day_chart_png
from peebot_dagster.defs.telemetry import TELEMETRY_READING_KEY
from peebot_dagster.posting.render import render_digest
from peebot_dagster.resources import PostgresResource
from peebot_dagster.settings import get_settings
from peebot_dagster.store import RawReadingsGone, check_raw_readings
from peebot_dagster.summary import load_day, summarize

DEFAULT_DAILY_DAYS = 60


def daily_start_date(explicit: date | None, today: date) -> str:
    """First daily partition: `PEEBOT_DAILY_PARTITIONS_START`, else 60 days before today."""
    return (explicit or today - timedelta(days=DEFAULT_DAILY_DAYS)).isoformat()


daily_partitions = dg.DailyPartitionsDefinition(
    start_date=daily_start_date(get_settings().daily_partitions_start, datetime.now(UTC).date()),
    timezone="UTC",
)


@dg.asset(
    partitions_def=daily_partitions,
    deps=[TELEMETRY_READING_KEY],
    group_name="summary",
    description="Uses, volume, processor cycles and signal coverage of one UTC day, with a "
    "chart of the tank level and the digest post text.",
)
def daily_summary(context: dg.AssetExecutionContext, db: PostgresResource) -> dg.MaterializeResult:
    window = context.partition_time_window
    start, end = window.start.astimezone(UTC), window.end.astimezone(UTC)
    elapsed = int((min(end, datetime.now(UTC)) - start).total_seconds() // 60)
    with db.connect() as conn:
        try:
            check_raw_readings(conn, f"daily_summary {start:%Y-%m-%d}", start)
        except RawReadingsGone as exc:
            raise dg.Failure(str(exc)) from exc
        events, aos_minutes, levels = load_day(conn, start, end)
    day_levels = [v for ts, v in levels if ts >= start]
    summary = summarize(start.date(), events, aos_minutes, max(elapsed, 0), day_levels)
    digest = render_digest(start.date(), events)
    png = day_chart_png(start, end, levels, events)
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
