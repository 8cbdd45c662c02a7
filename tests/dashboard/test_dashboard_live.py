"""The dashboard against the real database: state on connect, commits pushed to clients,
events stored and retracted, restarts of the server and of the database connection."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import psycopg

from tests.dashboard.conftest import DEADLINE, Client, Dashboard, of_type
from tests.dashboard.seeding import (
    TANK,
    demo_history,
    mark_posted,
    signal,
    store_events,
    use_event,
    write_readings,
)


def now_s() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def test_a_client_gets_the_current_state_on_connect(db_url: str) -> None:
    end = now_s()
    events = demo_history(db_url, end)
    ids = store_events(db_url, end - timedelta(hours=7), end + timedelta(minutes=1), events)
    with psycopg.connect(db_url) as conn:
        newest_tank = conn.execute(
            "SELECT r.value, r.ts FROM telemetry_reading r JOIN telemetry_channel c "
            "ON c.id = r.channel_id WHERE c.item_id = %s ORDER BY r.ts DESC LIMIT 1",
            (TANK,),
        ).fetchone()
    assert newest_tank is not None

    async def scenario() -> None:
        dash = await Dashboard(db_url).start()
        client = await Client.connect(dash.base)
        try:
            state = await client.next(lambda m: True, "the first message")
            assert state["type"] == "state"
            assert state["now"][TANK]["value"] == newest_tank[0]
            assert state["now"][TANK]["ts"] == newest_tank[1].isoformat().replace("+00:00", "Z")
            assert state["database"] == "ok"
            assert state["feed"]["signal"]["state"] == "AOS"
            assert state["feed"]["connection"]["state"] == "CONNECTED:WS-STREAMING"
            # newest first, every stored event, with its dry-run post
            newest_first = sorted(events, key=lambda e: e.start, reverse=True)
            assert [e["id"] for e in state["events"]] == [ids[e.event_key] for e in newest_first]
            assert all(e["posts"][0]["backend"] == "dry_run" for e in state["events"])
            assert state["today"]["uses"] + state["today"]["bulk_transfers"] >= 1
            # the newest use ended under 3 minutes before the newest reading
            newest_use = max(
                (e for e in events if e.event_type == "urination"), key=lambda e: e.start
            )
            assert state["in_use"] == {
                "active": True,
                "event_id": ids[newest_use.event_key],
                "since": newest_use.start.isoformat().replace("+00:00", "Z"),
                "unknown": None,
            }
            # the chart: six hours of the tank, the LOS as one closed gap
            series = state["chart"]["series"][TANK]
            assert series[-1][1] == newest_tank[0]
            assert len(state["chart"]["gaps"]) == 1 and state["chart"]["gaps"][0][1] is not None
            # every use and transfer in the window is marked on it, oldest first
            oldest_first = sorted(events, key=lambda e: e.start)
            marks = state["chart"]["events"]
            assert [m["id"] for m in marks] == [ids[e.event_key] for e in oldest_first]
            assert [m["type"] for m in marks] == [e.event_type for e in oldest_first]
            assert len(state["daily"]) == 30
            # the HTTP API serves the same state
            async with aiohttp.ClientSession() as http, http.get(dash.base + "/api/state") as r:
                assert r.status == 200
                api = await r.json()
            assert api["events"] == state["events"] and api["now"] == state["now"]
        finally:
            await client.close()
            await dash.stop()

    asyncio.run(scenario())


def test_a_committed_reading_reaches_every_connected_client(db_url: str) -> None:
    end = now_s()
    write_readings(db_url, [(TANK, end - timedelta(minutes=5), 40.0, None)])

    async def scenario() -> None:
        dash = await Dashboard(db_url).start()
        clients = [await Client.connect(dash.base) for _ in range(3)]
        try:
            for c in clients:
                await c.next(of_type("state"), "the state")
            at = end - timedelta(seconds=10)
            await asyncio.to_thread(write_readings, db_url, [(TANK, at, 61.0, None)])
            for c in clients:
                msg = await c.next(
                    lambda m: m["type"] == "reading" and TANK in m["points"], "the new reading"
                )
                assert msg["points"][TANK] == [[at.timestamp(), 61.0]]
                assert msg["now"][TANK]["value"] == 61.0
                assert msg["watermark"] == at.isoformat().replace("+00:00", "Z")
            # a signal transition in a batch moves the feed state and opens a gap
            los_at = end - timedelta(seconds=5)
            await asyncio.to_thread(write_readings, db_url, [], [signal("LOS", los_at)])
            msg = await clients[0].next(
                lambda m: m["type"] == "reading" and "feed" in m, "the signal change"
            )
            assert msg["feed"]["signal"]["state"] == "LOS"
            assert msg["gaps"][-1] == [los_at.timestamp(), None]
        finally:
            for c in clients:
                await c.close()
            await dash.stop()

    asyncio.run(scenario())


def test_an_event_stored_then_retracted_or_deleted_reaches_the_client(db_url: str) -> None:
    end = now_s()
    window = (end - timedelta(minutes=10), end + timedelta(minutes=1))
    posted = use_event(end - timedelta(minutes=6), 40.0, 43.0)
    unposted = use_event(end - timedelta(minutes=3), 43.0, 46.0)

    def ids_of(msg: dict[str, Any]) -> dict[int, dict[str, Any]]:
        return {e["id"]: e for e in msg["events"]}

    async def scenario() -> None:
        dash = await Dashboard(db_url).start()
        client = await Client.connect(dash.base)
        try:
            await client.next(of_type("state"), "the state")
            ids = await asyncio.to_thread(
                store_events, db_url, *window, [posted, unposted], "urine_tank", ("dry_run", "x")
            )
            a, b = ids[posted.event_key], ids[unposted.event_key]
            msg = await client.next(
                lambda m: m["type"] == "events" and {a, b} <= set(ids_of(m)), "both events"
            )
            assert ids_of(msg)[b]["delta"] == 3.0 and ids_of(msg)[b]["volume_ml"] == 240
            assert msg["today"]["uses"] == 2
            await asyncio.to_thread(mark_posted, db_url, a, "x", "1860000000000000001")
            # the posting job's state changes are pushed too (sending, then posted)
            await client.next(
                lambda m: (
                    m["type"] == "events"
                    and any(
                        p["backend"] == "x" and p["status"] == "posted"
                        for p in ids_of(m).get(a, {}).get("posts", [])
                    )
                ),
                "the post's new state",
            )
            # the window re-run finds neither: the posted one is retracted, the other deleted
            await asyncio.to_thread(store_events, db_url, *window, [])
            msg = await client.next(
                lambda m: m["type"] == "events" and b not in ids_of(m), "the deletion"
            )
            event = ids_of(msg)[a]
            assert event["retracted"] is True
            (x_post,) = [p for p in event["posts"] if p["backend"] == "x"]
            assert x_post["status"] == "posted"
            assert x_post["url"] == "https://x.com/i/web/status/1860000000000000001"
            assert msg["today"]["uses"] == 0  # retracted uses do not count
        finally:
            await client.close()
            await dash.stop()

    asyncio.run(scenario())


async def reconnect(base: str, timeout: float = DEADLINE) -> Client:
    """What the page does: try again with back-off until the server answers."""
    deadline = asyncio.get_running_loop().time() + timeout
    delay = 0.1
    while True:
        try:
            return await Client.connect(base)
        except aiohttp.ClientError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


def test_a_client_reconnects_after_the_server_restarts(db_url: str) -> None:
    end = now_s()
    write_readings(db_url, [(TANK, end - timedelta(minutes=5), 40.0, None)])

    async def scenario() -> None:
        dash = await Dashboard(db_url).start()
        client = await Client.connect(dash.base)
        try:
            await client.next(of_type("state"), "the first state")
            await dash.stop()
            closed = await client.ws.receive(timeout=DEADLINE)
            assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            await client.close()
            # committed while no server ran: the next state has it
            await asyncio.to_thread(
                write_readings, db_url, [(TANK, end - timedelta(minutes=1), 44.0, None)]
            )
            restart = asyncio.create_task(Dashboard(db_url, port=dash.port).start())
            client = await reconnect(dash.base)
            dash = await restart
            state = await client.next(of_type("state"), "the state after the restart")
            assert state["now"][TANK]["value"] == 44.0
            await asyncio.to_thread(write_readings, db_url, [(TANK, end, 45.0, None)])
            msg = await client.next(
                lambda m: m["type"] == "reading" and TANK in m["points"], "a delta"
            )
            assert msg["now"][TANK]["value"] == 45.0
        finally:
            await client.close()
            await dash.stop()

    asyncio.run(scenario())


def test_a_lost_database_connection_is_shown_and_the_state_reloaded(db_url: str) -> None:
    end = now_s()
    write_readings(db_url, [(TANK, end - timedelta(minutes=5), 40.0, None)])

    async def scenario() -> None:
        dash = await Dashboard(db_url).start()
        client = await Client.connect(dash.base)
        try:
            await client.next(of_type("state"), "the first state")
            with psycopg.connect(db_url, autocommit=True) as conn:
                killed = conn.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = 'peebot-dashboard' AND datname = current_database()"
                ).fetchone()
            assert killed is not None and killed[0] >= 1
            msg = await client.next(of_type("server"), "the outage")
            assert msg["database"] == "reconnecting"
            await asyncio.to_thread(
                write_readings, db_url, [(TANK, end - timedelta(minutes=1), 47.0, None)]
            )
            # the write may land before the reload (in the state) or after it (a delta)
            reloaded = False
            while not (reloaded and client.messages[-1]["now"][TANK]["value"] == 47.0):
                msg = await client.next(
                    lambda m: m["type"] in ("state", "reading"), "the reload and the reading"
                )
                if msg["type"] == "state":
                    assert msg["database"] == "ok"
                    reloaded = True
        finally:
            await client.close()
            await dash.stop()

    asyncio.run(scenario())
