"""Fan-out of one message stream to every WebSocket client, with a bound per client.

Each message is serialized once and put on every client's queue; one task per client
sends from its queue. A client whose queue is full (it reads slower than messages come)
is dropped: its socket is closed with 1013 "try again later", its queue freed, and the
page reconnects and starts again from the current state. So memory per client is bounded
by the queue size plus aiohttp's write buffer, whatever the client does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from aiohttp import WSCloseCode, web

log = logging.getLogger("peebot.dashboard")

CLOSE_TIMEOUT_S = 5.0


@dataclass(eq=False)
class Client:
    ws: web.WebSocketResponse
    queue: asyncio.Queue[str]
    peer: str = "?"
    transport: asyncio.BaseTransport | None = field(default=None, repr=False)
    sender: asyncio.Task[None] | None = field(default=None, repr=False)


class FanOut:
    def __init__(self, queue_size: int) -> None:
        self.queue_size = queue_size
        self.clients: set[Client] = set()
        self.dropped = 0  # slow clients dropped since start
        self.messages = 0  # messages published since start
        self._closing: set[asyncio.Task[None]] = set()

    def join(
        self,
        ws: web.WebSocketResponse,
        first: str,
        peer: str = "?",
        transport: asyncio.BaseTransport | None = None,
    ) -> Client:
        """Register a client with `first` (the current state) at the head of its queue.
        Synchronous, so no published message can fall between the state and the deltas."""
        client = Client(ws, asyncio.Queue(self.queue_size), peer, transport)
        client.queue.put_nowait(first)
        client.sender = asyncio.create_task(self._send(client))
        self.clients.add(client)
        return client

    def leave(self, client: Client) -> None:
        self.clients.discard(client)
        if client.sender is not None and client.sender is not asyncio.current_task():
            client.sender.cancel()

    def publish(self, text: str) -> None:
        self.messages += 1
        for client in list(self.clients):
            try:
                client.queue.put_nowait(text)
            except asyncio.QueueFull:
                self.drop(client, "too slow")

    def drop(self, client: Client, why: str) -> None:
        if client not in self.clients:
            return
        self.dropped += 1
        log.info(
            "dropping WebSocket client %s: %s (%d queued)", client.peer, why, client.queue.qsize()
        )
        self.leave(client)
        # free the queued messages now, not when the close handshake ends
        client.queue = asyncio.Queue(1)
        task = asyncio.create_task(self._close(client, why))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _send(self, client: Client) -> None:
        try:
            while True:
                text = await client.queue.get()
                await client.ws.send_str(text)
        except asyncio.CancelledError:
            raise
        except (ConnectionError, RuntimeError) as exc:  # the socket went away under us
            log.debug("WebSocket client %s gone: %s", client.peer, exc)
            self.leave(client)

    async def _close(self, client: Client, why: str) -> None:
        try:
            await asyncio.wait_for(
                client.ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=why.encode()),
                CLOSE_TIMEOUT_S,
            )
        except (TimeoutError, ConnectionError, RuntimeError):
            pass
        finally:
            # a client that does not read cannot take a close frame either: cut it off
            transport = client.transport
            if isinstance(transport, asyncio.WriteTransport) and not transport.is_closing():
                transport.abort()

    async def close_all(self) -> None:
        for client in list(self.clients):
            self.leave(client)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    client.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server stopping"),
                    CLOSE_TIMEOUT_S,
                )
        for task in list(self._closing):
            with contextlib.suppress(Exception):
                await task
