"""Signal tracking: AOS / LOS / STALE transitions and connection changes."""

from __future__ import annotations

from datetime import UTC, datetime

from peebot_ingest.feedstate import AOS, LOS, STALE, FeedState, SignalConfig

WALL = datetime(2026, 4, 1, 12, tzinfo=UTC).timestamp()


def _ts(wall: float) -> datetime:
    return datetime.fromtimestamp(wall, UTC)


def test_aos_los_and_staleness_by_wall_time() -> None:
    st = FeedState(SignalConfig(stale_after_seconds=10, max_lag_seconds=5, clock_check=True))
    (t,) = st.on_time_update(_ts(WALL - 1), 24, WALL)
    assert (t.kind, t.state, t.feed_ts) == ("signal", AOS, _ts(WALL - 1))
    assert st.on_time_update(_ts(WALL), 24, WALL + 1) == []  # no change, no row
    (los,) = st.on_time_update(_ts(WALL + 1), 0, WALL + 2)
    assert los.state == LOS and los.detail["from"] == AOS
    st.on_time_update(_ts(WALL + 3), 24, WALL + 3.5)
    assert st.signal == AOS
    assert st.tick(WALL + 8) == []  # quiet but within both limits
    (stale,) = st.tick(WALL + 14)  # 10.5 s without TIME_000001
    assert stale.state == STALE and "no TIME_000001 update" in stale.detail["why"]
    assert st.tick(WALL + 20) == []
    (back,) = st.on_time_update(_ts(WALL + 30), 24, WALL + 30.5)
    assert back.state == AOS


def test_timestamp_lag_makes_it_stale_unless_the_clock_check_is_off() -> None:
    strict = FeedState(SignalConfig(max_lag_seconds=5, clock_check=True))
    (t,) = strict.on_time_update(_ts(WALL - 60), 24, WALL)  # a frozen feed, class still 24
    assert t.state == STALE and "lags the clock" in t.detail["why"]
    sim = FeedState(SignalConfig(max_lag_seconds=5, clock_check=False))
    (t,) = sim.on_time_update(_ts(WALL + 86400 * 3), 24, WALL)  # a fast simulation
    assert t.state == AOS
    assert sim.tick(WALL + 5) == []
    assert sim.tick(WALL + 11)[0].state == STALE  # wall-time rule still applies


def test_connection_changes_are_recorded_once() -> None:
    st = FeedState()
    (c,) = st.on_connection("CONNECTED:WS-STREAMING", WALL)
    assert (c.kind, c.state, c.feed_ts) == ("connection", "CONNECTED:WS-STREAMING", None)
    assert st.on_connection("CONNECTED:WS-STREAMING", WALL + 1) == []
    assert st.on_connection("DISCONNECTED:WILL-RETRY", WALL + 2)[0].state.startswith("DISC")
