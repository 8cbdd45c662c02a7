"""`peebot status`: one screen of health, read from the database (so it works from any
machine, whether or not the daemon runs here)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click

from peebot_ingest.commands import one_line_errors

KEY_ITEMS = (
    "TIME_000001",
    "TIME_000002",
    "NODE3000005",
    "NODE3000004",
    "NODE3000008",
    "NODE3000009",
)


def ingest_health(url: str, now: datetime | None = None) -> dict[str, Any]:
    """Everything `peebot status` shows about ingest, as plain data."""
    from peebot_ingest.db import connect

    now = now or datetime.now(UTC)
    with connect(url, autocommit=True) as conn:
        items = []
        for item_id in KEY_ITEMS:
            # one index probe per item: (channel_id, ts desc)
            row = conn.execute(
                """
                SELECT r.ts, r.value, r.status_class, r.ingested_at
                FROM telemetry_channel c
                JOIN LATERAL (SELECT ts, value, status_class, ingested_at
                              FROM telemetry_reading WHERE channel_id = c.id
                              ORDER BY ts DESC LIMIT 1) r ON true
                WHERE c.item_id = %s
                """,
                (item_id,),
            ).fetchone()
            items.append(
                {
                    "item": item_id,
                    "ts": row[0] if row else None,
                    "value": row[1] if row else None,
                    "status_class": row[2] if row else None,
                    "ingested_at": row[3] if row else None,
                    "age_s": (now - row[0]).total_seconds() if row else None,
                }
            )
        counts: Any = conn.execute(
            """
            SELECT count(*) FILTER (WHERE ts >= %(now)s - interval '1 minute'),
                   count(*)
            FROM telemetry_reading WHERE ts >= %(now)s - interval '1 hour'
            """,
            {"now": now},
        ).fetchone()
        rejected: Any = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE received_at >= %s - interval '1 hour') "
            "FROM rejected_update",
            (now,),
        ).fetchone()
        watermark = conn.execute(
            "SELECT last_processed_at, last_run_at, state_data FROM processor_state "
            "WHERE processor_name = 'ingest'"
        ).fetchone()
        latest: dict[str, Any] = {}
        for kind in ("signal", "connection"):
            row = conn.execute(
                "SELECT state, changed_at, feed_ts, detail FROM feed_status WHERE kind = %s "
                "ORDER BY changed_at DESC, id DESC LIMIT 1",
                (kind,),
            ).fetchone()
            latest[kind] = (
                {"state": row[0], "since": row[1], "feed_ts": row[2], "detail": row[3]}
                if row
                else None
            )
        events: Any = conn.execute(
            "SELECT count(*) FILTER (WHERE detected_at >= %s - interval '1 day'), count(*) "
            "FROM detected_event WHERE retracted_at IS NULL",
            (now,),
        ).fetchone()
        posts = dict(
            conn.execute("SELECT status, count(*) FROM social_post GROUP BY status").fetchall()
        )
    time_row = items[0]
    return {
        "now": now,
        "items": items,
        "lag_s": time_row["age_s"],
        "rows_last_minute": int(counts[0]),
        "rows_last_hour": int(counts[1]),
        "rejected_total": int(rejected[0]),
        "rejected_last_hour": int(rejected[1]),
        "watermark": watermark[0] if watermark else None,
        "last_write": watermark[1] if watermark else None,
        "write_age_s": (now - watermark[1]).total_seconds() if watermark and watermark[1] else None,
        "counters": watermark[2] if watermark else {},
        "signal": latest["signal"],
        "connection": latest["connection"],
        "events_last_day": int(events[0]),
        "events_total": int(events[1]),
        "posts": {str(k): int(v) for k, v in posts.items()},
    }


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = abs(seconds)
    sign = "-" if seconds < 0 else ""
    if s < 120:
        return f"{sign}{s:.1f} s"
    if s < 7200:
        return f"{sign}{s / 60:.1f} min"
    if s < 172800:
        return f"{sign}{s / 3600:.1f} h"
    return f"{sign}{s / 86400:.1f} d"


def _when(ts: datetime | None) -> str:
    return "-" if ts is None else ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def render(health: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    now = health["now"]
    sig = health["signal"]
    conn = health["connection"]
    summary = Table(title="Ingest", show_header=False, box=None, pad_edge=False)
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row(
        "signal",
        f"{sig['state']} since {_when(sig['since'])} ({_age((now - sig['since']).total_seconds())})"
        if sig
        else "never recorded",
    )
    summary.add_row(
        "connection",
        f"{conn['state']} since {_when(conn['since'])}" if conn else "never recorded",
    )
    summary.add_row("lag (TIME_000001 vs clock)", _age(health["lag_s"]))
    summary.add_row(
        "watermark",
        f"{_when(health['watermark'])} (last write {_age(health['write_age_s'])} ago)",
    )
    summary.add_row(
        "readings (by ISS time)",
        f"{health['rows_last_minute']:,} in the last minute, "
        f"{health['rows_last_hour']:,} in the last hour",
    )
    summary.add_row(
        "rejected updates",
        f"{health['rejected_total']:,} total, {health['rejected_last_hour']:,} in the last hour",
    )
    for source, counters in sorted((health["counters"] or {}).items()):
        if isinstance(counters, dict):
            summary.add_row(
                f"  {source}",
                ", ".join(f"{k} {v:,}" for k, v in counters.items() if isinstance(v, int)),
            )
    posts = health["posts"]
    summary.add_row(
        "events / posts",
        f"{health['events_last_day']} events in the last day ({health['events_total']} total); "
        + (", ".join(f"{k} {v}" for k, v in sorted(posts.items())) or "no posts"),
    )
    console.print(summary)

    table = Table(title="Last update per key item")
    for col in ("item", "ISS time", "value", "class", "age"):
        table.add_column(col, justify="right" if col in ("value", "class", "age") else "left")
    for it in health["items"]:
        table.add_row(
            it["item"],
            _when(it["ts"]),
            "-" if it["value"] is None else f"{it['value']:g}",
            "-" if it["status_class"] is None else str(it["status_class"]),
            _age(it["age_s"]),
        )
    console.print(table)


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@one_line_errors
def status(as_json: bool) -> None:
    """One-screen health: ingest (last update per key item, lag, rows, rejected, signal,
    connection), events and posts, read from the database."""
    from peebot_ingest import db as database

    health = ingest_health(database.resolve_database_url())
    if as_json:
        click.echo(json.dumps(health, default=str, indent=2))
        return
    render(health)
