"""Signal (AOS / LOS / STALE) and connection state of the feed, as transitions.

`TIME_000001` with `Status.Class == 24` is acquisition of signal (AOS), any other class is
loss of signal (LOS) (docs/ARCHITECTURE.md, "Ingest"). Status.Class alone is not reliable, so
the feed is also STALE when

* no `TIME_000001` update has arrived for `stale_after_seconds` of wall time
  (`PEEBOT_STALE_AFTER_SECONDS`, default 10), or
* the clock check is on and `TIME_000001`'s TimeStamp lags the wall clock by more than
  `max_lag_seconds` (`PEEBOT_STALE_LAG_SECONDS`, default 5).

Simulated feeds may run faster (or slower) than real time, so their TimeStamps do not track
the wall clock: turn the clock check off (`PEEBOT_CLOCK_CHECK=off`, `peebot ingest
--no-clock-check`); the wall-time rule still applies.

Only changes are emitted, as `FeedTransition`s (written to `feed_status`). Pure logic: the
caller passes the wall time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from peebot_ingest.records import FeedTransition
from peebot_iss.catalog import AOS_CLASS

AOS, LOS, STALE, UNKNOWN = "AOS", "LOS", "STALE", "UNKNOWN"


@dataclass
class SignalConfig:
    stale_after_seconds: float = 10.0
    max_lag_seconds: float = 5.0
    clock_check: bool = True


class FeedState:
    def __init__(self, config: SignalConfig | None = None) -> None:
        self.config = config or SignalConfig()
        self.signal = UNKNOWN
        self.connection = "DISCONNECTED"
        self.last_time_ts: datetime | None = None  # TIME_000001's TimeStamp, decoded
        self.last_time_wall: float | None = None  # when it arrived
        self.last_class: int | None = None

    # -- inputs -----------------------------------------------------------------------------

    def on_time_update(
        self, ts: datetime, status_class: int | None, wall: float
    ) -> list[FeedTransition]:
        """A `TIME_000001` update (decoded TimeStamp and Status.Class) arrived at `wall`."""
        self.last_time_ts = ts
        self.last_time_wall = wall
        self.last_class = status_class
        return self._judge(wall, ts, reason="TIME_000001")

    def on_connection(
        self, status: str, wall: float, detail: dict[str, Any] | None = None
    ) -> list[FeedTransition]:
        if status == self.connection:
            return []
        self.connection = status
        out = [FeedTransition("connection", status, wall, None, detail or {})]
        return out

    def tick(self, wall: float) -> list[FeedTransition]:
        """Time passes: the feed may have gone stale."""
        if self.last_time_wall is None:
            return []
        return self._judge(wall, None, reason="timer")

    # -- the rule ---------------------------------------------------------------------------

    def lag_seconds(self, wall: float) -> float | None:
        """How far `TIME_000001`'s TimeStamp is behind the wall clock now."""
        if self.last_time_ts is None:
            return None
        return wall - self.last_time_ts.timestamp()

    def classify(self, wall: float) -> tuple[str, str]:
        """(state, why) for the current inputs."""
        if self.last_time_wall is None:
            return UNKNOWN, "no TIME_000001 yet"
        silent = wall - self.last_time_wall
        if silent > self.config.stale_after_seconds:
            return STALE, f"no TIME_000001 update for {silent:.1f} s"
        if self.config.clock_check:
            lag = self.lag_seconds(wall)
            if lag is not None and lag > self.config.max_lag_seconds:
                return STALE, f"TIME_000001 lags the clock by {lag:.1f} s"
        if self.last_class == AOS_CLASS:
            return AOS, "Status.Class 24"
        return LOS, f"Status.Class {self.last_class}"

    def _judge(self, wall: float, feed_ts: datetime | None, reason: str) -> list[FeedTransition]:
        state, why = self.classify(wall)
        if state == self.signal:
            return []
        previous, self.signal = self.signal, state
        return [
            FeedTransition(
                "signal",
                state,
                wall,
                feed_ts,
                {"from": previous, "why": why, "by": reason},
            )
        ]
