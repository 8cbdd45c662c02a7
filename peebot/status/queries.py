"""The application database's side of `peebot status`: read-only SQL, one function a section,
each returning plain data. The connection is the caller's (one for the whole screen)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from peebot.status.shaping import event_detail, fill_minutes, floor_minute, posting_state

KEY_ITEMS = (
    "TIME_000001",
    "TIME_000002",
    "NODE3000005",
    "NODE3000004",
    "NODE3000008",
    "NODE3000009",
)
RECENT_ROWS = 5
RATE_MINUTES = 10
EVENT_COUNT_HOURS = 24


def ingest_health(conn: psycopg.Connection[Any], now: datetime) -> dict[str, Any]:
    """Ingest as the database sees it: the key items' last readings, lag, row and rejection
    counts, the ingest watermark and counters, the latest signal and connection states."""
    items = [_last_reading(conn, item_id, now) for item_id in KEY_ITEMS]
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
    events: Any = conn.execute(
        "SELECT count(*) FILTER (WHERE detected_at >= %s - interval '1 day'), count(*) "
        "FROM detected_event WHERE retracted_at IS NULL",
        (now,),
    ).fetchone()
    posts = conn.execute("SELECT status, count(*) FROM social_post GROUP BY status").fetchall()
    return {
        "now": now,
        "items": items,
        "lag_s": items[0]["age_s"],  # TIME_000001 against the clock
        "rows_last_minute": int(counts[0]),
        "rows_last_hour": int(counts[1]),
        "rejected_total": int(rejected[0]),
        "rejected_last_hour": int(rejected[1]),
        "watermark": watermark[0] if watermark else None,
        "last_write": watermark[1] if watermark else None,
        "write_age_s": (now - watermark[1]).total_seconds() if watermark and watermark[1] else None,
        "counters": watermark[2] if watermark else {},
        "signal": _latest_feed_status(conn, "signal"),
        "connection": _latest_feed_status(conn, "connection"),
        "events_last_day": int(events[0]),
        "events_total": int(events[1]),
        "posts": {str(k): int(v) for k, v in posts},
    }


def _last_reading(conn: psycopg.Connection[Any], item_id: str, now: datetime) -> dict[str, Any]:
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
    return {
        "item": item_id,
        "ts": row[0] if row else None,
        "value": row[1] if row else None,
        "status_class": row[2] if row else None,
        "ingested_at": row[3] if row else None,
        "age_s": (now - row[0]).total_seconds() if row else None,
    }


def _latest_feed_status(conn: psycopg.Connection[Any], kind: str) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT state, changed_at, feed_ts, detail FROM feed_status WHERE kind = %s "
        "ORDER BY changed_at DESC, id DESC LIMIT 1",
        (kind,),
    ).fetchone()
    return {"state": row[0], "since": row[1], "feed_ts": row[2], "detail": row[3]} if row else None


def database_info(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """The store itself: storage mode (plain or timescaledb), size, server and schema version.
    What the storage mode implies (retention, compression, aggregates in force) belongs here
    too, next to `mode`, so the screen's database line can show it."""
    size = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    server = conn.execute("SHOW server_version").fetchone()
    mode_row = conn.execute(
        "SELECT value #>> '{}' FROM peebot_setting WHERE key = 'storage_mode'"
    ).fetchone()
    version = conn.execute(
        "SELECT coalesce(max(version), 0), count(*) FROM schema_migrations"
    ).fetchone()
    return {
        "mode": mode_row[0] if mode_row else None,
        "size_bytes": int(size[0]) if size else None,
        "schema_version": int(version[0]) if version else 0,
        "migrations_applied": int(version[1]) if version else 0,
        "server_version": str(server[0]) if server else None,
        "policy": reading_policy(conn),
    }


def reading_policy(conn: psycopg.Connection[Any]) -> dict[str, Any] | None:
    """The retention and compression in force, what retention last did and TimescaleDB's
    jobs that carry them out (None before the migration that records a policy)."""
    from peebot_ingest.reading_policy import reading_policy as read_policy

    policy = read_policy(conn)
    if policy is None:
        return None
    return {
        "retention_days": policy.retention_days,
        "compress_after_days": policy.compress_after_days,
        "raw_kept_from": policy.raw_kept_from,
        "last_retention_at": policy.last_retention_at,
        "last_removed": policy.last_removed,
        "removed_unit": policy.removed_unit,
        "held_back": policy.held_back,
        "failed_jobs": [job.name for job in policy.jobs if job.last_status == "Failed"],
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
    """The newest events, each with where it stands in the outbox. Posting is read from the
    outbox (`social_post`), not from `detected_event.posted_at`: the posting job stamps the
    latter only for real networks, so a dry-run post (the demo's) would look unposted."""
    rows = conn.execute(
        """
        SELECT e.id, e.event_type, e.processor, e.item_id, e.detected_at, e.confidence,
               e.metadata, coalesce(p.first_posted_at, e.posted_at), p.statuses
        FROM (SELECT * FROM detected_event
              WHERE retracted_at IS NULL
              ORDER BY detected_at DESC, id DESC
              LIMIT %s) e
        LEFT JOIN LATERAL (
            SELECT min(posted_at) FILTER (WHERE status = 'posted') AS first_posted_at,
                   jsonb_object_agg(backend, status) AS statuses
            FROM social_post WHERE event_id = e.id
        ) p ON true
        ORDER BY e.detected_at DESC, e.id DESC
        """,
        (limit,),
    ).fetchall()
    out = []
    for r in rows:
        meta = r[6] or {}
        outbox = posting_state(r[8] or {})
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
                "posted_to": outbox["posted_to"],
                "post_state": outbox["state"],
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
    """Pending posts by backend, and the most recently changed outbox rows."""
    pending = conn.execute(
        "SELECT backend, count(*) FROM social_post WHERE status = 'pending' "
        "GROUP BY backend ORDER BY backend"
    ).fetchall()
    rows = conn.execute(
        """
        SELECT p.id, p.event_id, e.event_type, p.backend, p.status, p.external_id,
               p.skip_reason, p.error_kind, p.attempts, p.updated_at, p.posted_at, p.not_before
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
            "not_before": r[11],
        }
        for r in rows
    ]
    return {"pending_by_backend": {str(r[0]): int(r[1]) for r in pending}, "recent": recent}
