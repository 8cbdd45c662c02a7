"""What `peebot status` shows beyond ingest health, as plain data: the database (mode, size,
schema version), readings per minute, the latest events, the posting outbox, and the pure
helpers that summarise the Dagster instance's heartbeats and sensor states.

SQL reads only; the Dagster instance itself is opened by the command (the composition root).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

RECENT_ROWS = 5
RATE_MINUTES = 10
EVENT_COUNT_HOURS = 24
# The daemon writes a heartbeat every 30 s; Dagster itself calls it unhealthy after 1800 s,
# which is far too late for an operator's glance.
HEARTBEAT_STALE_S = 120.0


# --------------------------------------------------------------------------- pure helpers


def floor_minute(ts: datetime) -> datetime:
    return ts.replace(second=0, microsecond=0)


def fill_minutes(
    counts: dict[datetime, int], end: datetime, minutes: int = RATE_MINUTES
) -> list[dict[str, Any]]:
    """`minutes` one-minute buckets ending (exclusive) at `end`, oldest first, zeros filled."""
    start = end - timedelta(minutes=minutes)
    return [
        {"minute": m, "readings": int(counts.get(m, 0))}
        for m in (start + timedelta(minutes=i) for i in range(minutes))
    ]


def sparkline(values: list[int]) -> str:
    """One character a value, scaled to the largest; an all-zero series is a flat line."""
    bars = "▁▂▃▄▅▆▇█"
    top = max(values, default=0)
    if top <= 0:
        return bars[0] * len(values)
    return "".join(bars[min(len(bars) - 1, round(v / top * (len(bars) - 1)))] for v in values)


def event_detail(event_type: str, metadata: dict[str, Any] | None) -> str:
    """The one number worth seeing per event: level change and volume, a state change, or a
    signal gap."""
    meta = metadata or {}
    parts: list[str] = []
    delta = meta.get("delta")
    if isinstance(delta, int | float):
        parts.append(f"{delta:+g} %")
    volume = meta.get("volume_ml")
    if isinstance(volume, int | float):
        parts.append(f"≈{volume:,.0f} mL")
    before, after = meta.get("state_before_name"), meta.get("state_after_name")
    if before and after:
        parts.append(f"{before}→{after}")
    for key in ("los_duration_s", "duration_s"):
        value = meta.get(key)
        if not parts and isinstance(value, int | float):
            parts.append(f"{value:,.0f} s")
    return ", ".join(parts) or "-"


@dataclass(frozen=True)
class HeartbeatView:
    daemon_type: str
    timestamp: float
    errors: int


def summarize_heartbeats(
    heartbeats: list[HeartbeatView], now: datetime, stale_s: float = HEARTBEAT_STALE_S
) -> dict[str, Any]:
    """State of the daemon from its heartbeats: `running` when the newest is fresh."""
    if not heartbeats:
        return {"state": "no heartbeat", "last_heartbeat": None, "age_s": None, "daemons": []}
    newest = max(h.timestamp for h in heartbeats)
    age = now.timestamp() - newest
    daemons = [
        {
            "daemon": h.daemon_type,
            "last_heartbeat": datetime.fromtimestamp(h.timestamp, UTC),
            "age_s": round(now.timestamp() - h.timestamp, 1),
            "errors": h.errors,
        }
        for h in sorted(heartbeats, key=lambda h: h.daemon_type)
    ]
    return {
        "state": "running" if age <= stale_s else "stale",
        "last_heartbeat": datetime.fromtimestamp(newest, UTC),
        "age_s": round(age, 1),
        "daemons": daemons,
    }


# --------------------------------------------------------------------------- SQL reads


def database_info(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Storage mode, size and schema version (the migrations applied)."""
    size = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    server = conn.execute("SHOW server_version").fetchone()
    mode = conn.execute("SELECT value #>> '{}' FROM peebot_setting WHERE key = 'storage_mode'")
    mode_row = mode.fetchone()
    version = conn.execute(
        "SELECT coalesce(max(version), 0), count(*) FROM schema_migrations"
    ).fetchone()
    return {
        "mode": mode_row[0] if mode_row else None,
        "size_bytes": int(size[0]) if size else None,
        "schema_version": int(version[0]) if version else 0,
        "migrations_applied": int(version[1]) if version else 0,
        "server_version": str(server[0]) if server else None,
    }


def readings_per_minute(
    conn: psycopg.Connection[Any], now: datetime, minutes: int = RATE_MINUTES
) -> dict[str, Any]:
    """Readings per minute of ISS time (`telemetry_reading.ts`, the indexed column) over the
    last `minutes` complete minutes, plus the minute in progress."""
    end = floor_minute(now)
    start = end - timedelta(minutes=minutes)
    rows = conn.execute(
        """
        SELECT date_trunc('minute', ts) AS minute, count(*)
        FROM telemetry_reading
        WHERE ts >= %(start)s AND ts < %(stop)s
        GROUP BY 1
        """,
        {"start": start, "stop": end + timedelta(minutes=1)},
    ).fetchall()
    counts = {r[0].astimezone(UTC): int(r[1]) for r in rows}
    buckets = fill_minutes(counts, end, minutes)
    total = sum(b["readings"] for b in buckets)
    return {
        "basis": "ISS time (telemetry_reading.ts)",
        "minutes": minutes,
        "per_minute": buckets,
        "average": round(total / minutes, 1),
        "total": total,
        "current_minute": counts.get(end, 0),
    }


def latest_events(conn: psycopg.Connection[Any], limit: int = RECENT_ROWS) -> list[dict[str, Any]]:
    rows = conn.execute(
        """
        SELECT id, event_type, processor, item_id, detected_at, confidence, metadata, posted_at
        FROM detected_event
        WHERE retracted_at IS NULL
        ORDER BY detected_at DESC, id DESC
        LIMIT %s
        """,
        (limit,),
    ).fetchall()
    out = []
    for r in rows:
        meta = r[6] or {}
        out.append(
            {
                "id": int(r[0]),
                "event_type": r[1],
                "processor": r[2],
                "item_id": r[3],
                "start": r[4],
                "confidence": round(float(r[5]), 3),
                "delta": meta.get("delta"),
                "volume_ml": meta.get("volume_ml"),
                "detail": event_detail(r[1], meta),
                "posted_at": r[7],
            }
        )
    return out


def event_counts(
    conn: psycopg.Connection[Any], now: datetime, hours: int = EVENT_COUNT_HOURS
) -> dict[str, int]:
    """Non-retracted events by type whose start lies in the last `hours`."""
    rows = conn.execute(
        """
        SELECT event_type, count(*) FROM detected_event
        WHERE retracted_at IS NULL AND detected_at >= %s AND detected_at <= %s
        GROUP BY event_type ORDER BY count(*) DESC, event_type
        """,
        (now - timedelta(hours=hours), now),
    ).fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


def post_overview(conn: psycopg.Connection[Any], limit: int = RECENT_ROWS) -> dict[str, Any]:
    pending = conn.execute(
        "SELECT backend, count(*) FROM social_post WHERE status = 'pending' "
        "GROUP BY backend ORDER BY backend"
    ).fetchall()
    rows = conn.execute(
        """
        SELECT p.id, p.event_id, e.event_type, p.backend, p.status, p.external_id,
               p.skip_reason, p.error_kind, p.attempts, p.updated_at, p.posted_at
        FROM social_post p JOIN detected_event e ON e.id = p.event_id
        ORDER BY p.updated_at DESC, p.id DESC
        LIMIT %s
        """,
        (limit,),
    ).fetchall()
    recent = [
        {
            "id": int(r[0]),
            "event_id": int(r[1]),
            "event_type": r[2],
            "backend": r[3],
            "status": r[4],
            "external_id": r[5],
            "skip_reason": r[6],
            "error_kind": r[7],
            "attempts": int(r[8]),
            "updated_at": r[9],
            "posted_at": r[10],
        }
        for r in rows
    ]
    return {"pending_by_backend": {str(r[0]): int(r[1]) for r in pending}, "recent": recent}


def app_overview(conn: psycopg.Connection[Any], now: datetime) -> dict[str, Any]:
    """Everything from the application database beyond ingest health."""
    return {
        "database": database_info(conn),
        "readings_per_minute": readings_per_minute(conn, now),
        "latest_events": latest_events(conn),
        "events_by_type_24h": event_counts(conn, now),
        "posts_overview": post_overview(conn),
    }
