"""The JSON API: bad parameters, the injection endpoint's token rules, and clients that
cannot keep up or send what they should not."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import psycopg
import pytest

from peebot.settings import Settings
from tests.dashboard.conftest import DEADLINE, Client, Dashboard, of_type
from tests.dashboard.seeding import TANK, demo_history, store_events, write_readings


async def get(base: str, path: str, **kwargs: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.get(base + path, **kwargs) as r:
        return r.status, await r.json(content_type=None)


async def post(base: str, path: str, **kwargs: Any) -> tuple[int, Any, dict[str, str]]:
    async with aiohttp.ClientSession() as http, http.post(base + path, **kwargs) as r:
        return r.status, await r.json(content_type=None), dict(r.headers)


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/api/level", "item is required"),
        ("/api/level?item=NODE3000005", "from is required"),
        ("/api/level?item=NODE3000005&from=yesterday", "from: 'yesterday' is not an ISO 8601 time"),
        ("/api/level?item=DROP%20TABLE&from=2026-01-01", "is not an ISS Live item id"),
        (
            "/api/level?item=NOPE0000001&from=2026-01-01T00:00:00Z&to=2026-01-02T00:00:00Z",
            "item: NOPE0000001 is not a known item",
        ),
        ("/api/level?item=NODE3000005&from=2026-01-02&to=2026-01-01", "from must be before to"),
        ("/api/level?item=NODE3000005&from=2025-01-01&to=2026-01-01", "spans more than 31 days"),
        ("/api/level?item=NODE3000005&from=" + "9" * 5000, "is not an ISO 8601 time"),
        ("/api/events?since=", "since is required"),
        ("/api/events?since=2026-13-01T00:00:00Z", "since: '2026-13-01T00:00:00Z' is not"),
        ("/api/events?since=%00%ff", "is not an ISO 8601 time"),
    ],
)
def test_bad_parameters_get_400_with_one_line(db_url: str, path: str, message: str) -> None:
    async def scenario() -> None:
        dash = await Dashboard(db_url).start()
        try:
            status, body = await get(dash.base, path)
            assert status == 400, body
            assert message in body["error"] and "\n" not in body["error"]
            assert len(body["error"]) < 200
            status, _ = await get(dash.base, "/api/health")
            assert status == 200
        finally:
            await dash.stop()

    asyncio.run(scenario())


def test_level_and_events_answer_from_the_database(db_url: str) -> None:
    end = datetime.now(UTC).replace(microsecond=0)
    events = demo_history(db_url, end)
    store_events(db_url, end - timedelta(hours=7), end + timedelta(minutes=1), events)

    async def scenario() -> None:
        dash = await Dashboard(db_url).start()
        try:
            start = (end - timedelta(hours=1)).isoformat()
            status, raw = await get(dash.base, "/api/level", params={"item": TANK, "from": start})
            assert status == 200 and raw["resolution"] == "raw"
            assert raw["points"][0][0] < datetime.fromisoformat(start).timestamp()  # as-of
            assert all(a[0] < b[0] for a, b in zip(raw["points"], raw["points"][1:], strict=False))
            day = (end - timedelta(days=2)).isoformat()
            status, minutes = await get(dash.base, "/api/level", params={"item": TANK, "from": day})
            assert status == 200 and minutes["resolution"] == "minute"
            assert minutes["columns"] == ["t", "min", "max", "last"]
            assert len(minutes["points"]) <= 6 * 60 + 1
            # the bucketed maximum is the raw maximum
            status, whole = await get(
                dash.base,
                "/api/level",
                params={"item": TANK, "from": (end - timedelta(hours=7)).isoformat()},
            )
            assert max(p[2] for p in minutes["points"]) == max(p[1] for p in whole["points"])
            status, got = await get(
                dash.base, "/api/events", params={"since": (end - timedelta(hours=3)).isoformat()}
            )
            assert status == 200 and not got["truncated"]
            cut = end - timedelta(hours=3)
            assert sorted(e["start"] for e in got["events"]) == sorted(
                e.start.isoformat().replace("+00:00", "Z") for e in events if e.start >= cut
            )
        finally:
            await dash.stop()

    asyncio.run(scenario())


def test_inject_is_off_without_a_token(db_url: str) -> None:
    async def scenario() -> None:
        dash = await Dashboard(db_url, Settings(dashboard_token="")).start()
        try:
            status, body, _ = await post(
                dash.base,
                "/api/inject",
                json={"item": TANK, "value": 50},
                headers={"Authorization": "Bearer anything"},
            )
            assert status == 403 and "PEEBOT_DASHBOARD_TOKEN" in body["error"]
        finally:
            await dash.stop()

    asyncio.run(scenario())
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM telemetry_reading").fetchone() == (0,)


def test_inject_needs_the_bearer_token_and_goes_through_the_ingest_path(db_url: str) -> None:
    token = base64.urlsafe_b64encode(os.urandom(24)).decode()

    async def scenario() -> None:
        dash = await Dashboard(db_url, Settings(dashboard_token=token)).start()
        client = await Client.connect(dash.base)
        try:
            await client.next(of_type("state"), "the state")
            body = {"item": TANK, "value": 52, "at": "2026-11-30T05:00:00Z"}
            for headers in (
                {},
                {"Authorization": f"Bearer {token[:-1]}"},
                {"Authorization": f"Bearer {token}x"},
                {"Authorization": f"Basic {token}"},
                {"Authorization": token},
                {"Authorization": "Bearer "},
            ):
                status, answer, got = await post(
                    dash.base, "/api/inject", json=body, headers=headers
                )
                assert status == 401, headers
                assert answer == {"error": "missing or wrong bearer token"}
                assert got.get("WWW-Authenticate") == "Bearer"
            auth = {"Authorization": f"Bearer {token}"}
            for bad, message in (
                ({"item": TANK}, "value must be a number"),
                ({"item": TANK, "value": True}, "value must be a number"),
                ({"value": 3}, "item is required"),
                ([1, 2], "the body must be a JSON object"),
                ({"item": TANK, "value": 3, "at": "noon"}, "at: 'noon' is not an ISO 8601 time"),
                ({"item": TANK, "value": "abc"}, "rejected (recorded in rejected_update)"),
            ):
                status, answer, _ = await post(dash.base, "/api/inject", json=bad, headers=auth)
                assert status == 400 and message in answer["error"], (bad, answer)
            status, answer, _ = await post(
                dash.base, "/api/inject", data=b"{not json", headers=auth
            )
            assert status == 400 and answer["error"] == "the body is not JSON"
            status, answer, _ = await post(
                dash.base, "/api/inject", data=b"x" * (1 << 20), headers=auth
            )
            assert status == 413
            status, answer, _ = await post(dash.base, "/api/inject", json=body, headers=auth)
            assert status == 200 and answer["written"] is True and answer["value"] == 52.0
            msg = await client.next(
                lambda m: m["type"] == "reading" and TANK in m["points"], "the injected reading"
            )
            assert msg["now"][TANK]["value"] == 52.0
            status, answer, _ = await post(dash.base, "/api/inject", json=body, headers=auth)
            assert status == 200 and answer["written"] is False  # the same reading: no-op
        finally:
            await client.close()
            await dash.stop()

    asyncio.run(scenario())
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT value, metadata->>'via' FROM telemetry_reading r "
            "JOIN telemetry_channel c ON c.id = r.channel_id WHERE c.item_id = %s",
            (TANK,),
        ).fetchall()
        rejected = conn.execute("SELECT source, reason FROM rejected_update ORDER BY id").fetchall()
    assert rows == [(52.0, "dashboard")]
    assert rejected == [("inject", "Value 'abc' is not a number")]


def raw_websocket(port: int) -> socket.socket:
    """A WebSocket that completes the handshake and then never reads, with a tiny receive
    buffer: the slowest possible client."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(DEADLINE)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)
        assert chunk, "server closed during the handshake"
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head[:80]
    return sock


def test_a_client_that_does_not_read_is_dropped_and_the_others_get_everything(
    db_url: str,
) -> None:
    write_readings(db_url, [(TANK, datetime.now(UTC) - timedelta(minutes=1), 40.0, None)])

    async def scenario() -> None:
        dash = await Dashboard(db_url, Settings(dashboard_client_queue=8)).start()
        good = await Client.connect(dash.base)
        slow = await asyncio.to_thread(raw_websocket, dash.port)
        try:
            await good.next(of_type("state"), "the state")
            loop = asyncio.get_running_loop()
            deadline = loop.time() + DEADLINE
            pad = "x" * 65536
            sent = 0
            while dash.live.fanout.dropped == 0:
                assert loop.time() < deadline, "the slow client was never dropped"
                dash.live.publish({"type": "test", "n": sent, "pad": pad})
                # the good client keeps up: its queue never fills
                await good.next(lambda m, n=sent: m.get("n") == n, f"message {sent}")  # type: ignore[misc]
                sent += 1
            dash.live.publish({"type": "test", "n": sent, "pad": ""})
            last = await good.next(lambda m: m.get("n") == sent, "the last message")
            got = [m["n"] for m in good.messages if m["type"] == "test"]
            assert got == list(range(sent + 1)), "the good client missed or reordered messages"
            assert last["pad"] == ""
            health = dash.live.health()
            assert health["clients"] == 1 and health["dropped_clients"] == 1
            # the slow client's socket is closed by the server
            slow.settimeout(DEADLINE)

            def drained_to_eof() -> bool:
                while True:
                    chunk = slow.recv(1 << 16)
                    if not chunk:
                        return True

            assert await asyncio.to_thread(drained_to_eof)
        finally:
            slow.close()
            await good.close()
            await dash.stop()

    asyncio.run(scenario())


def test_nothing_a_websocket_client_sends_stops_the_server(db_url: str) -> None:
    async def scenario() -> None:
        dash = await Dashboard(db_url).start()
        try:
            client = await Client.connect(dash.base)
            await client.next(of_type("state"), "the state")
            await client.ws.send_str("x" * 100_000)  # over the message limit: closed
            closed = await client.ws.receive(timeout=DEADLINE)
            assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            await client.close()
            client = await Client.connect(dash.base)
            await client.ws.send_bytes(b"\x00\xff" * 100)
            await client.ws.send_str('{"type": "state"}')
            await client.next(of_type("state"), "the state again")
            await client.close()
            status, health = await get(dash.base, "/api/health")
            assert status == 200 and health["database"] == "ok"
        finally:
            await dash.stop()

    asyncio.run(scenario())
