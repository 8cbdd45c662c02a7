"""The NOTIFY contract, as the dashboard reads it: three channels, JSON payloads, version 1.

The producers never import the dashboard: each defines its own channel constant and sends
`pg_notify(channel, json)` inside the transaction that commits the change, so PostgreSQL
delivers the message exactly when (and only if) the change is committed. The contract is
the channel name plus the payload below (also in docs/notifications.md and the README).

`peebot_readings` (the ingest writer, in each batch's transaction; a batch with readings or
feed transitions):

    {"v": 1, "source": "feed",
     "watermark": "2026-11-30T05:00:00.2+00:00",   # ingest watermark after this commit
     "written": 12,                                 # readings the batch inserted
     "items": {"NODE3000005": [["<ISO ts>", 42.0], ...],   # the batch's readings of the
               "NODE3000004": [["<ISO ts>", 16.0]]},       # page's items, oldest first,
     "truncated": ["NODE3000005"],                  # items with more readings than listed
     "feed": [{"kind": "signal", "state": "AOS",    # feed_status rows of the batch
               "changed_at": "<ISO>", "feed_ts": "<ISO>" | null}]}

`peebot_events` (the event store, in the transaction that stores or changes a window's
events; only when something changed):

    {"v": 1, "processor": "urine_tank",
     "changed": [12, 13],        # detected_event ids inserted, updated or retracted
     "removed": [11],            # ids deleted
     "truncated": false}         # true: more ids than listed (a long backfill)

`peebot_posts` (the posting job and operator commands, when a `social_post` row changes
state):

    {"v": 1, "post_id": 5, "event_id": 12, "backend": "x", "status": "posted"}

Every field may be missing in a message from an older or newer producer: the parsers below
take what they understand and say what to reload when they cannot. A payload is at most
8000 bytes (PostgreSQL's limit); producers truncate lists, never the JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

READINGS_CHANNEL = "peebot_readings"
EVENTS_CHANNEL = "peebot_events"
POSTS_CHANNEL = "peebot_posts"
CHANNELS = (READINGS_CHANNEL, EVENTS_CHANNEL, POSTS_CHANNEL)


@dataclass(frozen=True)
class FeedChange:
    kind: str  # signal | connection
    state: str
    changed_at: datetime
    feed_ts: datetime | None


@dataclass(frozen=True)
class ReadingsNote:
    watermark: datetime | None
    written: int
    items: dict[str, list[tuple[datetime, float]]]
    truncated: frozenset[str]
    feed: list[FeedChange] = field(default_factory=list)


@dataclass(frozen=True)
class EventsNote:
    changed: frozenset[int]
    removed: frozenset[int]
    truncated: bool


@dataclass(frozen=True)
class PostsNote:
    post_id: int | None
    event_id: int | None
    status: str | None


class BadPayload(ValueError):
    """A payload the dashboard cannot read; it reloads from the database instead."""


def parse_time(text: Any) -> datetime:
    if not isinstance(text, str):
        raise BadPayload(f"time {text!r} is not a string")
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadPayload(f"time {text!r} is not ISO 8601") from exc
    if when.tzinfo is None:
        raise BadPayload(f"time {text!r} has no offset")
    return when


def _object(payload: str) -> dict[str, Any]:
    try:
        data = json.loads(payload)
    except ValueError as exc:
        raise BadPayload(f"not JSON: {payload[:80]!r}") from exc
    if not isinstance(data, dict):
        raise BadPayload("not a JSON object")
    return data


def _ids(values: Any) -> frozenset[int]:
    if values is None:
        return frozenset()
    if not isinstance(values, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in values
    ):
        raise BadPayload(f"ids {values!r} are not a list of integers")
    return frozenset(values)


def parse_readings(payload: str) -> ReadingsNote:
    data = _object(payload)
    watermark = data.get("watermark")
    items: dict[str, list[tuple[datetime, float]]] = {}
    raw_items = data.get("items", {})
    if not isinstance(raw_items, dict):
        raise BadPayload("items is not an object")
    for item, points in raw_items.items():
        if not isinstance(points, list):
            raise BadPayload(f"readings of {item} are not a list")
        parsed = []
        for point in points:
            if not (isinstance(point, list) and len(point) == 2):
                raise BadPayload(f"reading {point!r} of {item} is not [time, value]")
            value = point[1]
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise BadPayload(f"value {value!r} of {item} is not a number")
            parsed.append((parse_time(point[0]), float(value)))
        items[str(item)] = parsed
    feed = []
    changes = data.get("feed", [])
    if not isinstance(changes, list):
        raise BadPayload("feed is not a list")
    for change in changes:
        if not isinstance(change, dict):
            raise BadPayload("feed change is not an object")
        feed.append(
            FeedChange(
                kind=str(change.get("kind")),
                state=str(change.get("state")),
                changed_at=parse_time(change.get("changed_at")),
                feed_ts=None if change.get("feed_ts") is None else parse_time(change["feed_ts"]),
            )
        )
    truncated = data.get("truncated", [])
    if not isinstance(truncated, list):
        raise BadPayload("truncated is not a list")
    written = data.get("written")
    return ReadingsNote(
        watermark=None if watermark is None else parse_time(watermark),
        written=written if isinstance(written, int) else 0,
        items=items,
        truncated=frozenset(str(t) for t in truncated),
        feed=feed,
    )


def parse_events(payload: str) -> EventsNote:
    data = _object(payload)
    return EventsNote(
        changed=_ids(data.get("changed")),
        removed=_ids(data.get("removed")),
        truncated=bool(data.get("truncated")),
    )


def parse_posts(payload: str) -> PostsNote:
    data = _object(payload)

    def whole(key: str) -> int | None:
        value = data.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    status = data.get("status")
    return PostsNote(
        whole("post_id"), whole("event_id"), status if isinstance(status, str) else None
    )
