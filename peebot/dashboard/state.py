"""What the page shows, held in memory: plain data and pure functions.

The server keeps one `LiveState`, loads it from the database at start (and after the
database comes back), and then moves it forward with each notification. A client that
connects gets `snapshot()` at once; each change becomes one delta message for everybody.
So the database sees the same queries whether one client watches or two hundred.

Times in messages are ISO 8601 UTC strings, except chart points: `[epoch seconds, value]`.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from peebot.dashboard.notifications import FeedChange, ReadingsNote
from peebot_iss.catalog import UPA_STATE, URINE_TANK, catalog_by_id

CHART_ITEMS = (URINE_TANK, UPA_STATE)
LATEST_EVENTS = 20
# A use counts as "happening now" for this long after its last step (ISS time, measured to
# the newest reading). The live pass stores a use about 35 s after its first step, and a
# Dagster run on a busy box takes tens of seconds more, so this leaves the page about a
# minute or two of "right now". A `short_hold` flag does not extend it: the flag stays on a
# use whose hold was cut by LOS or the end of the data, long after anybody left.
IN_USE_AFTER_END = timedelta(minutes=3)
SIGNAL_OK = "AOS"
FEED_OK = "CONNECTED"  # CONNECTED:WS-STREAMING, CONNECTED:HTTP-POLLING, ...


def iso(when: datetime | None) -> str | None:
    if when is None:
        return None
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch(when: datetime) -> float:
    """Epoch seconds in whole milliseconds, cut the way the browser's `Date.parse` cuts an
    ISO time with microseconds (truncated, not rounded), in exact integer arithmetic: a
    reading at .6738 s is .673 on the chart and in the watermark alike, never .674 past
    the chart's end (the issue-15 flake)."""
    return ((when - EPOCH) // timedelta(milliseconds=1)) / 1000


@dataclass
class Series:
    """One item's readings in the chart window, oldest first (epoch s, value). The first
    point may lie before the window: the value in force when it opens (ISS Live sends only
    on change)."""

    points: list[tuple[float, float]] = field(default_factory=list)
    max_points: int = 20_000

    def add(self, ts: float, value: float) -> bool:
        """Add a reading; False when it was already there (a re-sent snapshot)."""
        if not self.points or ts > self.points[-1][0]:
            self.points.append((ts, value))
        else:
            at = bisect.bisect_left(self.points, (ts, float("-inf")))
            if at < len(self.points) and self.points[at][0] == ts:
                return False
            self.points.insert(at, (ts, value))
        if len(self.points) > self.max_points:
            del self.points[: len(self.points) - self.max_points]
        return True

    def trim(self, start: float) -> None:
        """Drop readings before `start`, keeping the last one of them (the as-of value)."""
        at = bisect.bisect_left(self.points, (start, float("-inf")))
        if at > 1:
            del self.points[: at - 1]

    def latest(self) -> tuple[float, float] | None:
        return self.points[-1] if self.points else None


def feed_time(change: FeedChange) -> datetime:
    """Where a transition sits on the chart's (ISS) time axis: the feed time of the reading
    that caused it, else the wall clock (the same thing for the live feed)."""
    return change.feed_ts or change.changed_at


def signal_gaps(transitions: list[FeedChange], start: datetime) -> list[list[float | None]]:
    """Intervals without signal (any state but AOS) from the signal transitions, oldest
    first, as `[start, end]` epoch seconds (`end` None: still without signal)."""
    gaps: list[list[float | None]] = []
    open_at: datetime | None = None
    for change in sorted((t for t in transitions if t.kind == "signal"), key=feed_time):
        if change.state != SIGNAL_OK and open_at is None:
            open_at = feed_time(change)
        elif change.state == SIGNAL_OK and open_at is not None:
            if feed_time(change) > start:
                gaps.append([epoch(max(open_at, start)), epoch(feed_time(change))])
            open_at = None
    if open_at is not None:
        gaps.append([epoch(max(open_at, start)), None])
    return gaps


def toilet_in_use(
    events: list[dict[str, Any]],
    watermark: datetime | None,
    signal: str | None = None,
    connection: str | None = None,
) -> dict[str, Any]:
    """ "Someone is using the toilet right now": the newest use the live pass stored ended
    at most IN_USE_AFTER_END before the newest reading.

    Nobody can tell while the tank cannot be seen: the station out of signal (LOS, or a
    STALE feed) or the daemon's feed not connected. The newest reading then stays where it
    was, so a use just before would read as "now" for the whole outage; instead `unknown`
    says why (`signal` | `feed`) and `active` is False. No feed state recorded at all (a
    replayed recording) is not an outage."""
    idle: dict[str, Any] = {"active": False, "event_id": None, "since": None, "unknown": None}
    if connection is not None and not connection.startswith(FEED_OK):
        return {**idle, "unknown": "feed"}
    if signal is not None and signal != SIGNAL_OK:
        return {**idle, "unknown": "signal"}
    if watermark is None:
        return idle
    for event in events:  # newest first
        if event["type"] != "urination" or event["retracted"]:
            continue
        ended = datetime.fromisoformat((event["end"] or event["start"]).replace("Z", "+00:00"))
        if watermark - ended <= IN_USE_AFTER_END:
            return {**idle, "active": True, "event_id": event["id"], "since": event["start"]}
        break
    return idle


UPA_LABELS = catalog_by_id()[UPA_STATE].enum_codes if UPA_STATE in catalog_by_id() else {}


def item_now(item: str, point: tuple[float, float] | None) -> dict[str, Any] | None:
    if point is None:
        return None
    ts, value = point
    out: dict[str, Any] = {"ts": iso(datetime.fromtimestamp(ts, UTC)), "value": value}
    if item == UPA_STATE:
        out["label"] = UPA_LABELS.get(int(value), str(int(value)))
    return out


@dataclass
class LiveState:
    history: timedelta = timedelta(hours=6)
    watermark: datetime | None = None
    series: dict[str, Series] = field(default_factory=lambda: {i: Series() for i in CHART_ITEMS})
    transitions: list[FeedChange] = field(default_factory=list)  # in the window + one before
    signal: FeedChange | None = None
    connection: FeedChange | None = None
    events: list[dict[str, Any]] = field(default_factory=list)  # newest first
    chart_events: list[dict[str, Any]] = field(default_factory=list)  # in the window, oldest first
    today: dict[str, Any] = field(default_factory=dict)
    daily: list[dict[str, Any]] = field(default_factory=list)
    levels: list[list[float | None]] = field(default_factory=list)  # hourly, 30 days
    database: str = "connecting"  # connecting | ok | reconnecting
    seq: int = 0

    # -- moving forward ---------------------------------------------------------------------

    def window_start(self, now: datetime) -> datetime:
        """The chart's left edge: `history` before the newest reading (or now without one),
        so a replayed or simulated feed still shows its last hours."""
        return (self.watermark or now) - self.history

    def apply_readings(self, note: ReadingsNote, now: datetime) -> dict[str, Any]:
        """Take a readings notification; returns the delta message for the clients."""
        before = self.in_use()
        if note.watermark is not None and (
            self.watermark is None or note.watermark > self.watermark
        ):
            self.watermark = note.watermark
        added: dict[str, list[tuple[float, float]]] = {}
        for item, points in note.items.items():
            series = self.series.get(item)
            if series is None:
                continue
            for ts, value in points:
                if series.add(epoch(ts), value):
                    added.setdefault(item, []).append((epoch(ts), value))
        for change in note.feed:
            self.take_feed_change(change)
        self.trim(now)
        self.seq += 1
        message: dict[str, Any] = {
            "type": "reading",
            "seq": self.seq,
            "watermark": iso(self.watermark),
            "points": {item: [list(p) for p in pts] for item, pts in added.items()},
            "now": self.items_now(),
        }
        if note.feed:
            message["feed"] = self.feed_view()
            message["gaps"] = signal_gaps(self.transitions, self.window_start(now))
        after = self.in_use()
        if after != before:
            message["in_use"] = after
        return message

    def trim(self, now: datetime) -> None:
        """Forget what left the chart window (keeping the values in force at its start)."""
        start = self.window_start(now)
        for series in self.series.values():
            series.trim(epoch(start))
        older = [t for t in self.transitions if feed_time(t) < start]
        self.transitions = older[-1:] + [t for t in self.transitions if feed_time(t) >= start]

    def take_feed_change(self, change: FeedChange) -> None:
        if change.kind == "signal":
            if self.signal is None or change.changed_at >= self.signal.changed_at:
                self.signal = change
            self.transitions.append(change)
            self.transitions.sort(key=feed_time)
        elif change.kind == "connection" and (
            self.connection is None or change.changed_at >= self.connection.changed_at
        ):
            self.connection = change

    def set_events(
        self,
        events: list[dict[str, Any]],
        today: dict[str, Any],
        chart_events: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        self.events = events[:LATEST_EVENTS]
        self.today = today
        if chart_events is not None:
            self.chart_events = chart_events
        if self.daily and self.daily[-1].get("date") == today.get("date"):
            self.daily[-1] = {**self.daily[-1], **today}
        self.seq += 1
        return {
            "type": "events",
            "seq": self.seq,
            "events": self.events,
            "chart_events": self.chart_events,
            "today": self.today,
            "in_use": self.in_use(),
            "daily": self.daily,
        }

    def set_database(self, status: str) -> dict[str, Any]:
        self.database = status
        self.seq += 1
        return {"type": "server", "seq": self.seq, "database": status}

    # -- views ------------------------------------------------------------------------------

    def in_use(self) -> dict[str, Any]:
        return toilet_in_use(
            self.events,
            self.watermark,
            self.signal.state if self.signal else None,
            self.connection.state if self.connection else None,
        )

    def items_now(self) -> dict[str, Any]:
        return {item: item_now(item, s.latest()) for item, s in self.series.items()}

    def feed_view(self) -> dict[str, Any]:
        def view(change: FeedChange | None) -> dict[str, Any] | None:
            if change is None:
                return None
            return {
                "state": change.state,
                "since": iso(change.changed_at),
                "feed_ts": iso(change.feed_ts),
            }

        return {"signal": view(self.signal), "connection": view(self.connection)}

    def snapshot(self, now: datetime) -> dict[str, Any]:
        start = self.window_start(now)
        return {
            "type": "state",
            "seq": self.seq,
            "server_time": iso(now),
            "database": self.database,
            "watermark": iso(self.watermark),
            "now": self.items_now(),
            "feed": self.feed_view(),
            "in_use": self.in_use(),
            "today": self.today,
            "events": self.events,
            "chart": {
                "from": epoch(start),
                "hours": self.history.total_seconds() / 3600,
                "series": {item: [list(p) for p in s.points] for item, s in self.series.items()},
                "gaps": signal_gaps(self.transitions, start),
                "events": self.chart_events,
            },
            "daily": self.daily,
            "levels": self.levels,
        }
