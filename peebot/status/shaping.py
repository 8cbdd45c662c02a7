"""Pure helpers of `peebot status`: plain data in, plain data out, no I/O (tested without a
database or a Dagster instance)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

# The daemon writes a heartbeat every 30 s; Dagster itself calls it unhealthy after 1800 s,
# which is far too late for an operator's glance.
HEARTBEAT_STALE_S = 120.0


def floor_minute(ts: datetime) -> datetime:
    return ts.replace(second=0, microsecond=0)


def fill_minutes(counts: dict[datetime, int], end: datetime, minutes: int) -> list[dict[str, Any]]:
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


# Most advanced first: what an event's outbox rows say when none of them is `posted`.
_WAITING_ORDER = ("sending", "failed", "pending", "skipped")


def posting_state(posts: Mapping[str, str]) -> dict[str, Any]:
    """Where an event stands in the outbox, from its rows' `{backend: status}`: the backends it
    was posted to (the dry run counts: it is the demo's network), else the most advanced
    state of the rest (`None` when the event has no outbox row)."""
    posted = sorted(b for b, s in posts.items() if s == "posted")
    waiting = next((s for s in _WAITING_ORDER if s in posts.values()), None)
    return {"posted_to": posted, "state": "posted" if posted else waiting}


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
