"""The feed client: Lightstreamer (`lightstreamer-client-lib`) subscribed to every item.

The client calls its listeners on its own thread; they only put what they saw on a bounded
queue, so a slow database never stalls the client's socket (docs/ARCHITECTURE.md, "Ingest").
"""

from __future__ import annotations

import queue
import time
from typing import Any

from peebot_iss.catalog import FIELDS


class FeedSource:
    """The Lightstreamer client with one MERGE subscription; listeners only enqueue.

    Each message put on `out` is a tuple whose first element says what it is:
    ("u", item, fields, received_at, snapshot) an update, ("s", status, wall) a connection
    status change, ("e", text, wall) an error the client or server reported."""

    def __init__(
        self,
        feed_url: str,
        adapter_set: str,
        items: list[str],
        out: queue.Queue[Any],
        *,
        fast_reconnect: bool = False,
        transport: str | None = None,
    ) -> None:
        from lightstreamer.client import (
            ClientListener,
            LightstreamerClient,
            Subscription,
            SubscriptionListener,
        )

        self.items = items
        self.out = out
        self.received = 0
        self.status = "DISCONNECTED"
        client = LightstreamerClient(feed_url, adapter_set)
        opts = client.connectionOptions
        if fast_reconnect:
            opts.setKeepaliveInterval(1000)
            opts.setStalledTimeout(500)
            opts.setReconnectTimeout(1000)
            opts.setRetryDelay(1000)
            opts.setFirstRetryMaxDelay(100)
            opts.setSessionRecoveryTimeout(0)
        if transport:
            opts.setForcedTransport(transport)
        source = self

        class _Updates(SubscriptionListener):  # type: ignore[misc]
            def onItemUpdate(self, update: Any) -> None:
                source.received += 1
                out.put(
                    (
                        "u",
                        update.getItemName(),
                        update.getFields(),
                        time.time(),
                        update.isSnapshot(),
                    )
                )

            def onSubscriptionError(self, code: int, message: str) -> None:
                out.put(("e", f"subscription error {code}: {message}", time.time()))

            def onItemLostUpdates(self, item: str, pos: int, lost: int) -> None:
                out.put(("e", f"server reports {lost} lost updates for {item}", time.time()))

        class _Status(ClientListener):  # type: ignore[misc]
            def onStatusChange(self, status: str) -> None:
                source.status = status
                out.put(("s", status, time.time()))

            def onServerError(self, code: int, message: str) -> None:
                out.put(("e", f"server error {code}: {message}", time.time()))

        sub = Subscription("MERGE", items, list(FIELDS))
        sub.setRequestedSnapshot("yes")
        sub.addListener(_Updates())
        client.addListener(_Status())
        client.subscribe(sub)
        self.client = client
        self.subscription = sub

    def connect(self) -> None:
        self.client.connect()

    def disconnect(self) -> None:
        self.client.disconnect()
