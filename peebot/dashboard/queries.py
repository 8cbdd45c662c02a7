"""The dashboard's SQL: one connection, one query at a time, each one counted.

Every read the dashboard makes goes through `Database.fetch`, so the server can say how many
queries it issued (`GET /api/health`, and the bench compares 1 client with 200). The queries
read the schema of `sql/` only; rows come back as the plain dicts the page and the API send.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import dict_row

from peebot.dashboard.notifications import FeedChange
from peebot.dashboard.state import epoch, iso
from peebot_iss.catalog import URINE_TANK

APPLICATION_NAME = "peebot-dashboard"
INGEST_WATERMARK = "ingest"
ML_PER_PCT = 80.0  # 1 % of the tank ~ 80 mL (secondhand; the detectors' figure)
# Signal transitions (LOS/AOS) are the chart's gaps and the signal badge, not list items.
UNLISTED_PROCESSORS = ("signal",)
MAX_EVENTS = 500  # per /api/events answer
MAX_RAW_POINTS = 20_000  # per series read


class DatabaseDown(RuntimeError):
    """The database cannot be reached right now (one line)."""


class Database:
    """One autocommit connection, opened on demand, serialized by a lock."""

    def __init__(self, url: str, mastodon_base: str = "") -> None:
        self.url = url
        self.mastodon_base = mastodon_base  # for links to Mastodon posts
        self.conn: psycopg.AsyncConnection[Any] | None = None
        self.lock = asyncio.Lock()
        self.queries = 0
        self._channels: dict[str, int] = {}

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        if self.conn is None or self.conn.closed:
            try:
                self.conn = await psycopg.AsyncConnection.connect(
                    self.url,
                    autocommit=True,
                    connect_timeout=5,
                    application_name=APPLICATION_NAME,
                    row_factory=dict_row,  # type: ignore[arg-type]
                )
            except psycopg.OperationalError as exc:
                raise DatabaseDown(_one_line(exc)) from exc
        return self.conn

    async def fetch(
        self, query: str, params: Sequence[Any] | dict[str, Any] = ()
    ) -> list[dict[str, Any]]:
        async with self.lock:
            conn = await self._connection()
            self.queries += 1
            try:
                cur = await conn.execute(query, params)  # type: ignore[arg-type]
                return list(await cur.fetchall()) if cur.description else []
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                await self.close()
                raise DatabaseDown(_one_line(exc)) from exc

    async def close(self) -> None:
        if self.conn is not None:
            conn, self.conn = self.conn, None
            await conn.close()

    async def channel_id(self, item: str) -> int | None:
        if item not in self._channels:
            rows = await self.fetch("SELECT id FROM telemetry_channel WHERE item_id = %s", (item,))
            if not rows:
                return None
            self._channels[item] = int(rows[0]["id"])
        return self._channels[item]


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[-1] if text else type(exc).__name__


# --------------------------------------------------------------------------- the live state


async def watermark(db: Database) -> datetime | None:
    rows = await db.fetch(
        "SELECT last_processed_at FROM processor_state WHERE processor_name = %s",
        (INGEST_WATERMARK,),
    )
    return rows[0]["last_processed_at"] if rows else None


async def series(db: Database, item: str, start: datetime) -> list[tuple[float, float]]:
    """Readings of `item` since `start` (the newest MAX_RAW_POINTS) and the one in force at
    `start`, oldest first."""
    channel = await db.channel_id(item)
    if channel is None:
        return []
    rows = await db.fetch(
        """
        (SELECT ts, value FROM telemetry_reading
          WHERE channel_id = %(ch)s AND ts < %(start)s ORDER BY ts DESC LIMIT 1)
        UNION ALL
        (SELECT ts, value FROM telemetry_reading
          WHERE channel_id = %(ch)s AND ts >= %(start)s ORDER BY ts DESC LIMIT %(cap)s)
        ORDER BY 1
        """,
        {"ch": channel, "start": start, "cap": MAX_RAW_POINTS},
    )
    return [(epoch(r["ts"]), float(r["value"])) for r in rows]


async def feed_changes(db: Database, start: datetime) -> list[FeedChange]:
    """Signal transitions since `start` (and the one in force then), and the newest
    connection status."""
    rows = await db.fetch(
        """
        (SELECT kind, state, changed_at, feed_ts FROM feed_status
          WHERE kind = 'signal' AND coalesce(feed_ts, changed_at) < %(start)s
          ORDER BY coalesce(feed_ts, changed_at) DESC, id DESC LIMIT 1)
        UNION ALL
        (SELECT kind, state, changed_at, feed_ts FROM feed_status
          WHERE kind = 'signal' AND coalesce(feed_ts, changed_at) >= %(start)s
          ORDER BY coalesce(feed_ts, changed_at) DESC, id DESC LIMIT 5000)
        UNION ALL
        (SELECT kind, state, changed_at, feed_ts FROM feed_status
          WHERE kind = 'connection' ORDER BY changed_at DESC, id DESC LIMIT 1)
        """,
        {"start": start},
    )
    return [
        FeedChange(r["kind"], r["state"], r["changed_at"], r["feed_ts"])
        for r in sorted(rows, key=lambda r: r["feed_ts"] or r["changed_at"])
    ]


_EVENT_COLUMNS = """
    e.id, e.event_type, e.processor, e.item_id, e.detected_at, e.ended_at, e.confidence,
    e.metadata, e.retracted_at, e.updated_at,
    (SELECT coalesce(json_agg(json_build_object(
                'backend', p.backend, 'status', p.status, 'external_id', p.external_id,
                'posted_at', p.posted_at, 'reason', coalesce(p.skip_reason, p.error_kind))
             ORDER BY p.backend), '[]'::json)
       FROM social_post p WHERE p.event_id = e.id) AS posts
"""


async def latest_events(db: Database, limit: int) -> list[dict[str, Any]]:
    rows = await db.fetch(
        f"SELECT {_EVENT_COLUMNS} FROM detected_event e "
        "WHERE e.processor <> ALL(%(unlisted)s) "
        "ORDER BY e.detected_at DESC, e.id DESC LIMIT %(limit)s",
        {"unlisted": list(UNLISTED_PROCESSORS), "limit": limit},
    )
    return [event_view(r, db.mastodon_base) for r in rows]


CHART_EVENT_TYPES = ("urination", "bulk_transfer")  # the marks on the 6-hour chart
MAX_CHART_EVENTS = 500


async def chart_events(db: Database, start: datetime) -> list[dict[str, Any]]:
    """The uses and transfers starting in the chart window, oldest first: the chart marks
    all of them, not only those among the latest 20 events (UPA cycles and water draws
    push older uses out of that list)."""
    rows = await db.fetch(
        "SELECT id, event_type, detected_at, retracted_at FROM detected_event "
        "WHERE detected_at >= %(start)s AND event_type = ANY(%(types)s) "
        "ORDER BY detected_at DESC, id DESC LIMIT %(cap)s",
        {"start": start, "types": list(CHART_EVENT_TYPES), "cap": MAX_CHART_EVENTS},
    )
    return [
        {
            "id": int(r["id"]),
            "type": r["event_type"],
            "start": iso(r["detected_at"]),
            "retracted": r["retracted_at"] is not None,
        }
        for r in reversed(rows)
    ]


async def events_since(db: Database, since: datetime) -> tuple[list[dict[str, Any]], bool]:
    """Events detected at or after `since`, oldest first; True when cut at MAX_EVENTS."""
    rows = await db.fetch(
        f"SELECT {_EVENT_COLUMNS} FROM detected_event e WHERE e.detected_at >= %(since)s "
        "ORDER BY e.detected_at, e.id LIMIT %(limit)s",
        {"since": since, "limit": MAX_EVENTS + 1},
    )
    events = [event_view(r, db.mastodon_base) for r in rows[:MAX_EVENTS]]
    return events, len(rows) > MAX_EVENTS


def post_url(backend: str, external_id: str | None, mastodon_base: str = "") -> str | None:
    """A link to the post where the backend has one."""
    if not external_id:
        return None
    if backend == "x":
        return f"https://x.com/i/web/status/{external_id}"
    if backend == "bluesky" and external_id.startswith("at://"):
        parts = external_id[len("at://") :].split("/")
        if len(parts) == 3 and parts[1] == "app.bsky.feed.post":
            return f"https://bsky.app/profile/{parts[0]}/post/{parts[2]}"
        return None
    if backend == "mastodon" and mastodon_base:
        return f"{mastodon_base.rstrip('/')}/web/statuses/{external_id}"
    return None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def event_view(row: dict[str, Any], mastodon_base: str = "") -> dict[str, Any]:
    meta = row["metadata"] or {}
    delta = _number(meta.get("delta"))
    volume = _number(meta.get("volume_ml"))
    if volume is None and delta is not None and row["event_type"] == "urination":
        volume = round(delta * ML_PER_PCT)
    raw_flags = meta.get("flags")
    flags: list[Any] = raw_flags if isinstance(raw_flags, list) else []
    return {
        "id": int(row["id"]),
        "type": row["event_type"],
        "processor": row["processor"],
        "item": row["item_id"],
        "start": iso(row["detected_at"]),
        "end": iso(row["ended_at"]),
        "confidence": round(float(row["confidence"]), 3),
        "level_before": _number(meta.get("level_before")),
        "level_after": _number(meta.get("level_after")),
        "delta": delta,
        "volume_ml": volume,
        "flags": [str(f) for f in flags],
        "retracted": row["retracted_at"] is not None,
        "updated_at": iso(row["updated_at"]),
        "posts": [
            {
                "backend": p["backend"],
                "status": p["status"],
                "url": post_url(p["backend"], p["external_id"], mastodon_base),
                "posted_at": p["posted_at"],
                "reason": p["reason"],
            }
            for p in (row["posts"] or [])
        ],
    }


_DAY_SQL = """
SELECT (e.detected_at AT TIME ZONE 'UTC')::date AS day,
       count(*) FILTER (WHERE e.event_type = 'urination') AS uses,
       coalesce(sum(coalesce((e.metadata ->> 'volume_ml')::float8,
                             (e.metadata ->> 'delta')::float8 * %(ml)s))
                FILTER (WHERE e.event_type = 'urination'), 0) AS volume_ml,
       count(*) FILTER (WHERE e.event_type = 'bulk_transfer') AS bulk_transfers,
       count(*) FILTER (WHERE e.event_type = 'upa_cycle_start') AS upa_cycles
  FROM detected_event e
 WHERE e.retracted_at IS NULL AND e.detected_at >= %(start)s AND e.detected_at < %(end)s
 GROUP BY 1
"""


def day_numbers(day: date, row: dict[str, Any] | None) -> dict[str, Any]:
    row = row or {}
    return {
        "date": day.isoformat(),
        "uses": int(row.get("uses") or 0),
        "volume_ml": round(float(row.get("volume_ml") or 0.0)),
        "bulk_transfers": int(row.get("bulk_transfers") or 0),
        "upa_cycles": int(row.get("upa_cycles") or 0),
    }


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


async def daily(db: Database, today: date, days: int) -> list[dict[str, Any]]:
    """Uses, estimated volume, transfers and UPA cycles per UTC day, `days` days up to
    `today`, oldest first, days without events as zeros."""
    first = today - timedelta(days=days - 1)
    rows = await db.fetch(
        _DAY_SQL,
        {"ml": ML_PER_PCT, "start": day_start(first), "end": day_start(today + timedelta(days=1))},
    )
    by_day = {r["day"]: r for r in rows}
    return [day_numbers(d, by_day.get(d)) for d in (first + timedelta(days=i) for i in range(days))]


async def today_numbers(db: Database, today: date) -> dict[str, Any]:
    rows = await db.fetch(
        _DAY_SQL,
        {"ml": ML_PER_PCT, "start": day_start(today), "end": day_start(today + timedelta(days=1))},
    )
    return day_numbers(today, rows[0] if rows else None)


async def level_buckets(
    db: Database, item: str, start: datetime, end: datetime, bucket: str
) -> list[list[float | None]]:
    """`[epoch, min, max, last]` per `bucket` ('minute' or 'hour') from `telemetry_minute`."""
    channel = await db.channel_id(item)
    if channel is None:
        return []
    trunc = {"minute": "minute", "hour": "hour"}[bucket]
    rows = await db.fetch(
        f"""
        SELECT date_trunc('{trunc}', bucket) AS at, min(min_value) AS lo, max(max_value) AS hi,
               (array_agg(last_value ORDER BY bucket DESC))[1] AS last
          FROM telemetry_minute
         WHERE channel_id = %(ch)s AND bucket >= %(start)s AND bucket < %(end)s
         GROUP BY 1 ORDER BY 1
        """,
        {"ch": channel, "start": start, "end": end},
    )
    return [[epoch(r["at"]), float(r["lo"]), float(r["hi"]), float(r["last"])] for r in rows]


async def tank_levels(db: Database, today: date, days: int) -> list[list[float | None]]:
    """The urine tank hour by hour over `days` days (the 30-day chart), quiet hours filled."""
    start = day_start(today - timedelta(days=days - 1))
    hours = await level_buckets(db, URINE_TANK, start, day_start(today + timedelta(days=1)), "hour")
    return fill_quiet_hours(hours)


def fill_quiet_hours(buckets: list[list[float | None]]) -> list[list[float | None]]:
    """Hourly `[epoch, min, max, last]` buckets with the hours between them that have no
    reading filled with the level in force (the previous `last`). ISS Live sends a value
    only when it changes, so an hour without a reading is an hour the tank held still, not
    a gap: drawn as one, a steady night looked like missing data."""
    filled: list[list[float | None]] = []
    for bucket in buckets:
        at, held = (filled[-1][0], filled[-1][3]) if filled else (None, None)
        while at is not None and bucket[0] is not None and bucket[0] - at > 3600:
            at += 3600
            filled.append([at, held, held, held])
        filled.append(bucket)
    return filled


@dataclass(frozen=True)
class Level:
    item: str
    resolution: str  # raw | minute | hour
    points: list[list[float | None]]
    truncated: bool


async def level(db: Database, item: str, start: datetime, end: datetime) -> Level | None:
    """Readings of `item` in `[start, end)`: raw (with the value in force at `start`) up to
    RAW_SPAN, minute buckets up to MINUTE_SPAN, hourly beyond. None: unknown item."""
    channel = await db.channel_id(item)
    if channel is None:
        return None
    span = end - start
    if span > MINUTE_SPAN:
        return Level(item, "hour", await level_buckets(db, item, start, end, "hour"), False)
    if span > RAW_SPAN:
        return Level(item, "minute", await level_buckets(db, item, start, end, "minute"), False)
    rows = await db.fetch(
        """
        (SELECT ts, value FROM telemetry_reading
          WHERE channel_id = %(ch)s AND ts < %(start)s ORDER BY ts DESC LIMIT 1)
        UNION ALL
        (SELECT ts, value FROM telemetry_reading
          WHERE channel_id = %(ch)s AND ts >= %(start)s AND ts < %(end)s
          ORDER BY ts LIMIT %(cap)s)
        ORDER BY 1
        """,
        {"ch": channel, "start": start, "end": end, "cap": MAX_RAW_POINTS + 1},
    )
    before: list[list[float | None]] = [
        [epoch(r["ts"]), float(r["value"])] for r in rows if r["ts"] < start
    ]
    inside: list[list[float | None]] = [
        [epoch(r["ts"]), float(r["value"])] for r in rows if r["ts"] >= start
    ]
    points: list[list[float | None]] = [*before, *inside[:MAX_RAW_POINTS]]
    return Level(item, "raw", points, len(inside) > MAX_RAW_POINTS)


RAW_SPAN = timedelta(hours=12)
MINUTE_SPAN = timedelta(days=3)
MAX_SPAN = timedelta(days=31)
