"""What the code location tells listeners when events or posts change (`NOTIFY`).

Sent with `pg_notify` inside the transaction that makes the change, so PostgreSQL delivers
it when, and only if, that transaction commits. Who listens is not this package's business
(the dashboard does); the contract is the channel names and the JSON shapes, in
docs/notifications.md:

    peebot_events  {"v": 1, "processor": "urine_tank", "changed": [ids], "removed": [ids],
                    "truncated": false}
    peebot_posts   {"v": 1, "post_id": 5, "event_id": 12, "backend": "x", "status": "posted"}

(`peebot_posts` is built by SQL from the row itself, so it says what the row really holds.)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import psycopg

EVENTS_CHANNEL = "peebot_events"
POSTS_CHANNEL = "peebot_posts"
MAX_IDS = 500  # per list; a long backfill says "truncated" instead (8000-byte payload limit)


def events_payload(processor: str, changed: Sequence[int], removed: Sequence[int]) -> str:
    """Pure: the `peebot_events` JSON for a window whose events changed."""
    return json.dumps(
        {
            "v": 1,
            "processor": processor,
            "changed": sorted(changed)[:MAX_IDS],
            "removed": sorted(removed)[:MAX_IDS],
            "truncated": len(changed) > MAX_IDS or len(removed) > MAX_IDS,
        },
        separators=(",", ":"),
    )


def notify(conn: psycopg.Connection[Any] | psycopg.Cursor[Any], channel: str, payload: str) -> None:
    """Queue a notification in the current transaction (sent at its COMMIT)."""
    conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))


def notify_post(conn: psycopg.Connection[Any] | psycopg.Cursor[Any], post_id: int) -> None:
    """`peebot_posts` with the outbox row's state as this transaction leaves it."""
    conn.execute(
        """
        SELECT pg_notify(%s, json_build_object('v', 1, 'post_id', id, 'event_id', event_id,
                                               'backend', backend, 'status', status)::text)
          FROM social_post WHERE id = %s
        """,
        (POSTS_CHANNEL, post_id),
    )
