"""The dashboard served in-process on a free port, and a WebSocket client for it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web

from peebot.dashboard.live import LiveDashboard
from peebot.dashboard.server import LIVE, create_app
from peebot.settings import Settings
from peebot.supervisor import free_port

DEADLINE = 30.0  # seconds: generous, the machine is shared


class Dashboard:
    """`create_app` behind a real TCP site, startable again on the same port."""

    def __init__(self, url: str, settings: Settings | None = None, port: int | None = None):
        self.url = url
        self.settings = settings or Settings()
        self.port = port or free_port()
        self.runner: web.AppRunner | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def live(self) -> LiveDashboard:
        assert self.runner is not None
        return self.runner.app[LIVE]

    async def start(self) -> Dashboard:
        self.runner = web.AppRunner(create_app(self.url, self.settings), access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        await asyncio.wait_for(self.live.loaded.wait(), DEADLINE)
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None


class Client:
    """A WebSocket client that keeps every message it got."""

    def __init__(self, session: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse):
        self.session = session
        self.ws = ws
        self.messages: list[dict[str, Any]] = []

    @classmethod
    async def connect(cls, base: str) -> Client:
        session = aiohttp.ClientSession()
        try:
            ws = await session.ws_connect(base.replace("http", "ws") + "/ws", max_msg_size=0)
        except BaseException:
            await session.close()
            raise
        return cls(session, ws)

    async def next(
        self, match: Callable[[dict[str, Any]], Any], what: str, timeout: float = DEADLINE
    ) -> dict[str, Any]:
        """The first message (from now on) for which `match` is truthy."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
            try:
                msg = await self.ws.receive(timeout=left)
            except TimeoutError:
                continue
            if msg.type != aiohttp.WSMsgType.TEXT:
                raise AssertionError(f"socket ended ({msg.type.name}) while waiting for {what}")
            data = json.loads(msg.data)
            self.messages.append(data)
            if match(data):
                return data

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()


def of_type(kind: str) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m.get("type") == kind
