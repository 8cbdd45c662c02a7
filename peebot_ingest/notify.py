"""What the writer tells listeners after each commit: `NOTIFY peebot_readings`.

The payload is built here and sent with `pg_notify` inside the batch's transaction, so
PostgreSQL delivers it when, and only if, the batch commits (a rolled-back batch says
nothing). Who listens is not this package's business (the dashboard does); the contract is
the channel name and the JSON shape, in docs/notifications.md:

    {"v": 1, "source": "feed", "watermark": "<ISO>", "written": 12,
     "items": {"NODE3000005": [["<ISO ts>", 42.0], ...], ...},   # oldest first
     "truncated": ["NODE3000005"],   # items (or "feed") with more than listed
     "feed": [{"kind": "signal", "state": "AOS", "changed_at": "<ISO>", "feed_ts": ...}]}
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import compress
from operator import attrgetter
from typing import Any, Protocol, TypeVar

from peebot_iss.catalog import UPA_STATE, URINE_TANK

READINGS_CHANNEL = "peebot_readings"
# The few items a live view shows; everything else stays in the database.
NOTIFY_ITEMS = frozenset({URINE_TANK, UPA_STATE})
MAX_PER_ITEM = 20  # newest readings listed per item and commit
MAX_FEED = 20  # newest feed transitions listed per commit
MAX_PAYLOAD = 7900  # PostgreSQL refuses payloads of 8000 bytes and more


class _Reading(Protocol):
    @property
    def item_id(self) -> str: ...
    @property
    def ts(self) -> datetime: ...
    @property
    def value(self) -> float: ...


_ReadingT = TypeVar("_ReadingT", bound=_Reading)


class _Transition(Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def changed_at(self) -> float: ...
    @property
    def feed_ts(self) -> datetime | None: ...


def _iso(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(UTC).isoformat()


_ITEM_ID = attrgetter("item_id")


def shown(readings: Sequence[_ReadingT]) -> list[_ReadingT]:
    """The readings of `NOTIFY_ITEMS`, in order: all a payload lists of a batch. A commit
    holds up to 50,000 readings and few of them are shown: picked in C."""
    return list(compress(readings, map(NOTIFY_ITEMS.__contains__, map(_ITEM_ID, readings))))


def readings_payload(
    readings: Sequence[_Reading],
    transitions: Sequence[_Transition],
    watermark: datetime | None,
    written: int,
    source: str,
) -> str | None:
    """The JSON to NOTIFY for one committed batch, or None when it has nothing a listener
    would show (no new reading, no shown item, no feed transition). `readings`: the batch's,
    or only those `shown` picks from them (the same payload). Pure."""
    items: dict[str, list[tuple[datetime, float]]] = {}
    for r in shown(readings):
        items.setdefault(r.item_id, []).append((r.ts, r.value))
    if not (written or items or transitions):
        return None
    truncated: list[str] = []
    listed: dict[str, list[list[Any]]] = {}
    for item, points in sorted(items.items()):
        points.sort()
        if len(points) > MAX_PER_ITEM:
            truncated.append(item)
        listed[item] = [[_iso(ts), value] for ts, value in points[-MAX_PER_ITEM:]]
    if len(transitions) > MAX_FEED:
        truncated.append("feed")
    feed = [
        {
            "kind": t.kind,
            "state": t.state,
            "changed_at": _iso(datetime.fromtimestamp(t.changed_at, UTC)),
            "feed_ts": _iso(t.feed_ts),
        }
        for t in list(transitions)[-MAX_FEED:]
    ]
    payload: dict[str, Any] = {
        "v": 1,
        "source": source,
        "watermark": _iso(watermark),
        "written": written,
        "items": listed,
        "truncated": truncated,
        "feed": feed,
    }
    text = json.dumps(payload, separators=(",", ":"))
    if len(text.encode()) > MAX_PAYLOAD:
        # never cut the JSON: list nothing and say everything was cut
        payload.update(items={}, feed=[], truncated=[*sorted(items), "feed"])
        text = json.dumps(payload, separators=(",", ":"))
    return text
