"""What the code location tells listeners when events or posts change (`NOTIFY`).

Sent with `pg_notify` inside the transaction that makes the change, so PostgreSQL delivers
it when, and only if, that transaction commits. Who listens is not this package's business
(the dashboard does); the contract is the channel names and the JSON shapes, in
docs/notifications.md:

    peebot_events  {"v": 1, "processor": "urine_tank", "changed": [ids], "removed": [ids],
                    "truncated": false}
    peebot_posts   {"v": 1, "post_id": 5, "event_id": 12, "backend": "x", "status": "posted"}
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


def post_payload(post_id: int, event_id: int, backend: str, status: str) -> str:
    """Pure: the `peebot_posts` JSON for one outbox row's new state."""
    return json.dumps(
        {"v": 1, "post_id": post_id, "event_id": event_id, "backend": backend, "status": status},
        separators=(",", ":"),
    )


def notify(conn: psycopg.Connection[Any] | psycopg.Cursor[Any], channel: str, payload: str) -> None:
    """Queue a notification in the current transaction (sent at its COMMIT)."""
    conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))
