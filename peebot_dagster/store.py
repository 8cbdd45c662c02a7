"""The SQL edge of detection: read a processor's window, replace the events a window owns.

A window `[start, end)` owns the events of its processor that *start* inside it. Replacing
them inserts the new ones, updates the changed ones and deletes the vanished ones, except
those already posted (or being posted, or whose post may have gone out): those are kept and
marked `retracted_at`, because the post is out in the world and the outbox must still point
at a row. Deleting an event deletes its pending outbox rows with it (ON DELETE CASCADE).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import psycopg

from peebot_dagster.detectors.base import Event, jsonable
from peebot_dagster.notify import EVENTS_CHANNEL, events_payload, notify
from peebot_dagster.partitions import partition_key
from peebot_iss.utc import as_utc

INGEST_PROCESSOR = "ingest"

# Readings of the window's items in [lo, hi) plus each item's last reading before lo (the
# value in force when the window opens: ISS Live only sends on change).
_WINDOW_SQL = """
WITH ch AS (
    SELECT id, item_id FROM telemetry_channel WHERE item_id = ANY(%(items)s)
)
SELECT ch.item_id, a.ts, a.value, a.status_class, a.ingested_at, a.event_id
FROM ch
CROSS JOIN LATERAL (
    SELECT r.ts, r.value, r.status_class, r.ingested_at, r.event_id
    FROM telemetry_reading r
    WHERE r.channel_id = ch.id AND r.ts < %(lo)s
    ORDER BY r.ts DESC
    LIMIT 1
) a
UNION ALL
SELECT ch.item_id, r.ts, r.value, r.status_class, r.ingested_at, r.event_id
FROM telemetry_reading r
JOIN ch ON ch.id = r.channel_id
WHERE r.ts >= %(lo)s AND r.ts < %(hi)s
ORDER BY 2, 1, 5, 6
"""

_EXISTING_SQL = """
SELECT e.id, e.event_key, e.retracted_at IS NOT NULL AS retracted,
       e.posted_at IS NOT NULL
       OR EXISTS (SELECT 1 FROM social_post sp
                  WHERE sp.event_id = e.id
                    AND (sp.status IN ('posted', 'sending')
                         -- the network may have taken it: treat as posted
                         OR (sp.status = 'failed'
                             AND sp.error_kind IN ('ambiguous', 'duplicate')))) AS posted
FROM detected_event e
WHERE e.processor = %(processor)s AND e.detected_at >= %(start)s AND e.detected_at < %(end)s
ORDER BY e.detected_at
FOR UPDATE OF e
"""

# One statement for the whole window: rows that differ are updated (and un-retracted when
# they came back), identical rows are left alone and not returned.
_UPSERT_SQL = """
INSERT INTO detected_event AS d
    (event_key, event_type, processor, item_id, detected_at, ended_at, confidence,
     metadata, window_key)
SELECT x.event_key, x.event_type, x.processor, x.item_id, x.detected_at, x.ended_at,
       x.confidence, coalesce(x.metadata, '{}'::jsonb), x.window_key
FROM jsonb_to_recordset(%(rows)s::jsonb) AS x(
    event_key text, event_type text, processor text, item_id text, detected_at timestamptz,
    ended_at timestamptz, confidence real, metadata jsonb, window_key text)
ON CONFLICT (event_key) DO UPDATE SET
    event_type = EXCLUDED.event_type,
    item_id = EXCLUDED.item_id,
    detected_at = EXCLUDED.detected_at,
    ended_at = EXCLUDED.ended_at,
    confidence = EXCLUDED.confidence,
    metadata = EXCLUDED.metadata,
    window_key = EXCLUDED.window_key,
    retracted_at = NULL,
    updated_at = now()
WHERE (d.event_type, d.item_id, d.detected_at, d.ended_at, d.confidence, d.metadata,
       d.window_key, d.retracted_at IS NULL)
      IS DISTINCT FROM
      (EXCLUDED.event_type, EXCLUDED.item_id, EXCLUDED.detected_at, EXCLUDED.ended_at,
       EXCLUDED.confidence, EXCLUDED.metadata, EXCLUDED.window_key, true)
RETURNING d.id, d.event_key, (xmax = 0) AS inserted
"""


@dataclass
class ReplaceResult:
    """What replacing a window's events did (ids of detected_event rows)."""

    inserted: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    unchanged: list[int] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)
    retracted: list[int] = field(default_factory=list)
    enqueued: int = 0

    @property
    def live_ids(self) -> list[int]:
        """The window's current (not retracted) events."""
        return sorted(self.inserted + self.updated + self.unchanged)

    @property
    def changed(self) -> bool:
        return bool(self.inserted or self.updated or self.deleted or self.retracted)


def read_window(
    conn: psycopg.Connection[Any],
    items: Sequence[str],
    start: datetime,
    end: datetime,
    lookback: timedelta,
    lookahead: timedelta,
) -> pd.DataFrame:
    """The detector frame for `[start, end)`: readings of `items` in
    `[start - lookback, end + lookahead)` plus each item's as-of reading before that."""
    params = {"items": list(items), "lo": as_utc(start) - lookback, "hi": as_utc(end) + lookahead}
    with conn.cursor() as cur:
        cur.execute(_WINDOW_SQL, params)
        rows = cur.fetchall()
    frame = pd.DataFrame.from_records(
        [r[:4] for r in rows], columns=["item_id", "ts", "value", "status_class"]
    )
    if frame.empty:
        from peebot_dagster.detectors.base import empty_frame

        return empty_frame()
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    frame["value"] = frame["value"].astype("float64")
    frame["status_class"] = frame["status_class"].astype("Int64")
    return frame


def event_row(event: Event) -> dict[str, Any]:
    """The detected_event columns of an event (window_key = its start minute)."""
    return {
        "event_key": event.event_key,
        "event_type": event.event_type,
        "processor": event.processor,
        "item_id": event.item_id,
        "detected_at": event.start.isoformat(),
        "ended_at": None if event.end is None else event.end.isoformat(),
        "confidence": float(event.confidence),
        "metadata": jsonable(event.metadata),
        "window_key": partition_key(event.start),
    }


def lock_processor(conn: psycopg.Connection[Any], processor: str) -> None:
    """Serialize writers of one processor (a range run and a minute run may overlap)."""
    conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"peebot.detect.{processor}",)
    )


def replace_window_events(
    conn: psycopg.Connection[Any],
    processor: str,
    start: datetime,
    end: datetime,
    events: Iterable[Event],
) -> ReplaceResult:
    """Make the stored events of `processor` starting in `[start, end)` equal `events`.

    Runs in the caller's transaction (so the outbox rows go in with the events)."""
    start, end = as_utc(start), as_utc(end)
    rows = []
    for event in events:
        if event.processor != processor:
            raise ValueError(f"event {event.event_key} is not from processor {processor}")
        if not start <= event.start < end:
            raise ValueError(f"event {event.event_key} starts outside [{start}, {end})")
        rows.append(event_row(event))
    keys = [r["event_key"] for r in rows]
    if len(set(keys)) != len(keys):
        dupes = sorted({k for k in keys if keys.count(k) > 1})
        raise ValueError(f"detector returned the same event twice: {dupes[:3]}")

    lock_processor(conn, processor)
    result = ReplaceResult()
    existing = {
        key: (event_id, retracted, posted)
        for event_id, key, retracted, posted in conn.execute(
            _EXISTING_SQL, {"processor": processor, "start": start, "end": end}
        ).fetchall()
    }
    changed_keys: set[str] = set()
    if rows:
        with conn.cursor() as cur:
            cur.execute(_UPSERT_SQL, {"rows": json.dumps(rows)})
            for event_id, key, inserted in cur.fetchall():
                changed_keys.add(key)
                (result.inserted if inserted else result.updated).append(int(event_id))
    new_keys = set(keys)
    for key, (event_id, retracted, posted) in existing.items():
        if key in new_keys:
            if key not in changed_keys:
                result.unchanged.append(int(event_id))
        elif posted:
            if not retracted:
                conn.execute(
                    "UPDATE detected_event SET retracted_at = now(), updated_at = now() "
                    "WHERE id = %s",
                    (event_id,),
                )
                result.retracted.append(int(event_id))
        else:
            result.deleted.append(int(event_id))
    if result.deleted:
        conn.execute("DELETE FROM detected_event WHERE id = ANY(%s)", (result.deleted,))
    if result.changed:
        changed = result.inserted + result.updated + result.retracted
        notify(conn, EVENTS_CHANNEL, events_payload(processor, changed, result.deleted))
    return result


def record_processor_run(
    conn: psycopg.Connection[Any],
    processor: str,
    start: datetime,
    end: datetime,
    state: dict[str, Any],
) -> None:
    """`processor_state`: the watermark (end of the newest window done, never moved back
    by a backfill of older minutes) and the last run."""
    conn.execute(
        """
        INSERT INTO processor_state (processor_name, last_processed_at, last_run_at, state_data)
        VALUES (%(name)s, %(end)s, now(), %(state)s::jsonb)
        ON CONFLICT (processor_name) DO UPDATE SET
            last_processed_at = GREATEST(processor_state.last_processed_at,
                                         EXCLUDED.last_processed_at),
            last_run_at = EXCLUDED.last_run_at,
            state_data = processor_state.state_data || EXCLUDED.state_data
        """,
        {
            "name": processor,
            "end": as_utc(end),
            "state": json.dumps(
                jsonable(
                    {
                        "last_window": {"start": as_utc(start), "end": as_utc(end)},
                        **state,
                    }
                )
            ),
        },
    )


class RawReadingsGone(RuntimeError):
    """A run would read readings retention has already removed (message: one line)."""


def raw_readings_kept_from(conn: psycopg.Connection[Any]) -> datetime | None:
    """Raw readings older than this may have been removed by retention; None when none were
    (`peebot_raw_kept_from()`, sql/0006)."""
    row = conn.execute("SELECT peebot_raw_kept_from()").fetchone()
    return None if row is None or row[0] is None else as_utc(row[0])


def check_raw_readings(conn: psycopg.Connection[Any], what: str, reads_from: datetime) -> None:
    """Refuse to re-run `what` over readings retention removed: it would find them missing,
    not absent, and replace what it stored then (events, a summary) with nothing."""
    kept_from = raw_readings_kept_from(conn)
    if kept_from is not None and as_utc(reads_from) < kept_from:
        raise RawReadingsGone(
            f"{what} reads readings from {reads_from:%Y-%m-%d %H:%M} UTC but retention removed "
            f"the raw readings before {kept_from:%Y-%m-%d %H:%M} UTC: not re-run, what it "
            "stored before is kept as it is"
        )


def ingest_watermark(conn: psycopg.Connection[Any]) -> datetime | None:
    """Newest reading time the ingest daemon has written (ISS time), or None."""
    row = conn.execute(
        "SELECT last_processed_at FROM processor_state WHERE processor_name = %s",
        (INGEST_PROCESSOR,),
    ).fetchone()
    return None if row is None or row[0] is None else as_utc(row[0])


@dataclass(frozen=True)
class SignalState:
    state: str  # AOS | LOS | STALE | ...
    changed_at: datetime
    feed_ts: datetime | None


def latest_signal(conn: psycopg.Connection[Any]) -> SignalState | None:
    """The newest signal transition ingest recorded in `feed_status`."""
    row = conn.execute(
        "SELECT state, changed_at, feed_ts FROM feed_status WHERE kind = 'signal' "
        "ORDER BY changed_at DESC, id DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    return SignalState(str(row[0]), as_utc(row[1]), None if row[2] is None else as_utc(row[2]))
