"""The live side of the dashboard: LISTEN on one connection, keep `LiveState`, fan out.

Three tasks:
- the listener: one connection LISTENs on the three channels (notifications.py). It
  registers first and loads the full state second, so nothing committed in between is
  missed; readings notifications move the state forward right there, without a query.
  When the connection drops it says so to every client, reconnects with back-off and loads
  the state again (whatever was committed meanwhile is in it).
- the worker: events, posts and truncated readings need a query; their notifications are
  coalesced (ten at once cost one round of queries), so a backfill cannot flood the
  database and the number of queries never depends on the number of clients.
- the refresher: the 30-day numbers and the hourly tank level every few minutes and when
  the UTC day changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg

from peebot.dashboard import queries
from peebot.dashboard.fanout import FanOut
from peebot.dashboard.notifications import (
    CHANNELS,
    EVENTS_CHANNEL,
    POSTS_CHANNEL,
    READINGS_CHANNEL,
    BadPayload,
    parse_events,
    parse_posts,
    parse_readings,
)
from peebot.dashboard.state import CHART_ITEMS, LATEST_EVENTS, LiveState, Series
from peebot.settings import Settings

log = logging.getLogger("peebot.dashboard")

DAYS = 30
REFRESH_DAILY_S = 300.0
RECONNECT_MAX_S = 10.0
RELOAD_SPACING_S = 1.0  # at most one full chart reload a second (catch-up after an outage)


def utcnow() -> datetime:
    return datetime.now(UTC)


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), default=str)


class LiveDashboard:
    def __init__(
        self, url: str, settings: Settings, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.url = url
        self.clock = clock
        self.db = queries.Database(url, settings.mastodon_base_url)
        self.state = LiveState(history=timedelta(hours=settings.dashboard_history_hours))
        self.fanout = FanOut(settings.dashboard_client_queue)
        self.notifications = 0
        self.bad_notifications = 0
        self.listen_statements = 0
        self._work: asyncio.Queue[str] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._listen_conn: psycopg.AsyncConnection[Any] | None = None
        self._day: date | None = None
        self.loaded = asyncio.Event()  # the first full state is in

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._listen_forever(), name="dashboard-listen"),
            asyncio.create_task(self._work_forever(), name="dashboard-work"),
            asyncio.create_task(self._refresh_forever(), name="dashboard-refresh"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await self.fanout.close_all()
        if self._listen_conn is not None:
            with contextlib.suppress(Exception):
                await self._listen_conn.close()
        await self.db.close()

    # -- what clients get --------------------------------------------------------------------

    def snapshot_text(self) -> str:
        return dumps(self.state.snapshot(self.clock()))

    def publish(self, message: dict[str, Any]) -> None:
        self.fanout.publish(dumps(message))

    def health(self) -> dict[str, Any]:
        return {
            "database": self.state.database,
            "clients": len(self.fanout.clients),
            "dropped_clients": self.fanout.dropped,
            "messages": self.fanout.messages,
            "notifications": self.notifications,
            "bad_notifications": self.bad_notifications,
            "queries": self.db.queries,
            "listen_statements": self.listen_statements,
            "seq": self.state.seq,
        }

    # -- the listener ------------------------------------------------------------------------

    async def _listen_forever(self) -> None:
        delay = 0.5
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self.url,
                    autocommit=True,
                    connect_timeout=5,
                    application_name=queries.APPLICATION_NAME,
                    keepalives=1,
                    keepalives_idle=5,
                    keepalives_interval=2,
                    keepalives_count=3,
                )
                self._listen_conn = conn
                for channel in CHANNELS:
                    await conn.execute(f"LISTEN {channel}")
                    self.listen_statements += 1
                await self.reload()
                delay = 0.5
                log.info("listening on %s", ", ".join(CHANNELS))
                async for note in conn.notifies():
                    self.take(note.channel, note.payload)
            except (psycopg.OperationalError, psycopg.InterfaceError, queries.DatabaseDown) as exc:
                text = str(exc).strip().splitlines()
                log.warning(
                    "database unavailable (%s); retrying in %.1f s",
                    text[-1] if text else exc,
                    delay,
                )
            except Exception:  # e.g. no schema yet: say why, keep trying, never go quiet
                log.exception("live updates stopped; retrying in %.1f s", delay)
            if self._listen_conn is not None:
                with contextlib.suppress(Exception):
                    await self._listen_conn.close()
                self._listen_conn = None
            if self.state.database != "reconnecting":
                self.publish(self.state.set_database("reconnecting"))
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX_S)

    def take(self, channel: str, payload: str) -> None:
        """One notification: readings move the state now; the rest go to the worker."""
        self.notifications += 1
        try:
            if channel == READINGS_CHANNEL:
                note = parse_readings(payload)
                self.publish(self.state.apply_readings(note, self.clock()))
                if "feed" in note.truncated:
                    self._work.put_nowait("reload")
                elif note.truncated:
                    self._work.put_nowait("series")
            elif channel == EVENTS_CHANNEL:
                parse_events(payload)
                self._work.put_nowait("events")
            elif channel == POSTS_CHANNEL:
                parse_posts(payload)
                self._work.put_nowait("events")
        except BadPayload as exc:
            self.bad_notifications += 1
            log.warning("unreadable %s notification (%s); reloading", channel, exc)
            self._work.put_nowait("reload")

    # -- loading from the database ------------------------------------------------------------

    async def reload(self) -> None:
        """The whole state from the database, then a `state` message to every client."""
        now = self.clock()
        self.state.watermark = await queries.watermark(self.db)
        await self._reload_series(now)
        self.state.transitions, self.state.signal, self.state.connection = [], None, None
        for change in await queries.feed_changes(self.db, self.state.window_start(now)):
            self.state.take_feed_change(change)
        today = now.date()
        self.state.events = await queries.latest_events(self.db, LATEST_EVENTS)
        self.state.chart_events = await queries.chart_events(self.db, self.state.window_start(now))
        self.state.today = await queries.today_numbers(self.db, today)
        await self._reload_daily(today)
        self.state.database = "ok"
        self.state.seq += 1
        self.publish(self.state.snapshot(now))
        self.loaded.set()

    async def _reload_series(self, now: datetime) -> None:
        start = self.state.window_start(now)
        for item in CHART_ITEMS:
            fresh = Series(points=await queries.series(self.db, item, start))
            # readings applied while the query ran are not lost
            for ts, value in self.state.series[item].points:
                fresh.add(ts, value)
            self.state.series[item] = fresh
        self.state.trim(now)

    async def _reload_daily(self, today: date) -> None:
        self.state.daily = await queries.daily(self.db, today, DAYS)
        self.state.levels = await queries.tank_levels(self.db, today, DAYS)
        self._day = today

    # -- the worker and the refresher --------------------------------------------------------

    async def _work_forever(self) -> None:
        while True:
            kinds = {await self._work.get()}
            while not self._work.empty():
                kinds.add(self._work.get_nowait())
            try:
                await self.loaded.wait()
                if "reload" in kinds:
                    await self.reload()
                    continue
                if "series" in kinds:
                    now = self.clock()
                    await self._reload_series(now)
                    self.state.seq += 1
                    self.publish(self.state.snapshot(now))
                if "events" in kinds:
                    now = self.clock()
                    events = await queries.latest_events(self.db, LATEST_EVENTS)
                    marks = await queries.chart_events(self.db, self.state.window_start(now))
                    today = await queries.today_numbers(self.db, now.date())
                    self.publish(self.state.set_events(events, today, marks))
            except queries.DatabaseDown as exc:
                # the listener sees the outage too and reloads everything when it is back
                log.warning("query failed (%s); the next state load catches up", exc)
            except Exception:
                log.exception("could not apply %s; the next state load catches up", sorted(kinds))
            if "series" in kinds:
                await asyncio.sleep(RELOAD_SPACING_S)

    async def _refresh_forever(self) -> None:
        await self.loaded.wait()
        while True:
            await asyncio.sleep(min(REFRESH_DAILY_S, self._seconds_to_midnight() + 1))
            try:
                await self._reload_daily(self.clock().date())
                self.state.today = await queries.today_numbers(self.db, self.clock().date())
            except queries.DatabaseDown as exc:
                log.warning("daily refresh failed (%s)", exc)
                continue
            self.state.seq += 1
            self.publish(
                {
                    "type": "daily",
                    "seq": self.state.seq,
                    "daily": self.state.daily,
                    "levels": self.state.levels,
                    "today": self.state.today,
                }
            )

    def _seconds_to_midnight(self) -> float:
        now = self.clock()
        tomorrow = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
        return max((tomorrow - now).total_seconds(), 0.0)
