"""The feed client: Lightstreamer (`lightstreamer-client-lib`) subscribed to every item.

The client calls its listeners on its own thread; they only put what they saw on a bounded
queue (docs/ARCHITECTURE.md, "Ingest").

The subscription names its items as an item group, the very `LS_group` text the client sends
for an item list (the names joined by spaces), so the server sees the same request. The
difference is the client's: for an item list it copies the whole list into a map for every
update it delivers (to answer `getItemName`), which with the 339 ISS Live items was a fifth
of its time; with a group the listener finds the name by the update's position.

The daemon runs it in a process of its own (`feed_process`), or on its own threads with
`InProcessFeed` (PEEBOT_FEED_PROCESS=off).
"""

from __future__ import annotations

import logging
import queue
import time
from typing import Any

from peebot_ingest import haxe_iterator
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

        self.items = list(items)
        bad = [i for i in self.items if not i or " " in i or i.isdigit()]
        if not self.items or bad:  # what the client refuses in an item list
            raise ValueError(f"not a valid item list for a subscription: {bad[:5]}")
        self.out = out
        self.received = 0
        self.stalls = 0  # times the listener waited for room on `out` (the writer is behind)
        self._said_full = -float("inf")
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
        haxe_iterator.install()
        source = self
        names = self.items
        n_names = len(names)

        class _Updates(SubscriptionListener):  # type: ignore[misc]
            def onItemUpdate(self, update: Any) -> None:
                source.received += 1
                msg = (
                    "u",
                    # a position the subscription does not have (the server's error)
                    # gives no name, which validation records as a rejection
                    names[pos - 1] if 0 < (pos := update.getItemPos()) <= n_names else None,
                    update.getFields(),
                    time.time(),
                    update.isSnapshot(),
                )
                try:
                    out.put_nowait(msg)
                except queue.Full:  # wait: the server keeps what we do not read meanwhile
                    source.stalls += 1
                    now = time.monotonic()
                    if now - source._said_full >= 60.0:  # once a minute at most
                        source._said_full = now
                        logging.getLogger("peebot.ingest.feed").warning(
                            "feed channel full (%d updates): the writer is behind; the client "
                            "waits, the server keeps the rest",
                            out.maxsize,
                        )
                    out.put(msg)

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

        sub = Subscription("MERGE", None, None)
        sub.setItemGroup(" ".join(self.items))
        sub.setFields(list(FIELDS))
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


class InProcessFeed:
    """`FeedSource` on this process's threads, with `feed_process.FeedProcess`'s interface."""

    def __init__(self, source: FeedSource, out: queue.Queue[Any], reconnect_seconds: float) -> None:
        self.source = source
        self.out = out
        self.reconnect_seconds = reconnect_seconds
        self.restarts = 0
        self._down_since: float | None = None
        self._stopped = False

    @property
    def received(self) -> int:
        return self.source.received

    @property
    def stalls(self) -> int:
        return self.source.stalls

    @property
    def status(self) -> str:
        return self.source.status

    @property
    def queued(self) -> int:
        return self.out.qsize()

    def start(self) -> None:
        self.source.connect()

    def watch(self) -> None:
        """The client retries by itself, except after a terminal error: then reconnect."""
        if self.source.status != "DISCONNECTED":  # retrying by itself, or connected
            self._down_since = None
            return
        now = time.monotonic()
        if self._down_since is None:
            self._down_since = now
        elif now - self._down_since > self.reconnect_seconds:
            logging.getLogger("peebot.ingest.feed").warning("feed client gave up; connecting again")
            self._down_since = now
            self.source.connect()

    def stop(self) -> None:
        self.source.disconnect()
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and self.source.status != "DISCONNECTED":
            time.sleep(0.05)
        time.sleep(0.2)  # callbacks already handed to the client's user thread
        self._stopped = True

    @property
    def finished(self) -> bool:
        return self._stopped and self.out.empty()

    def more_waiting(self) -> bool:
        return not self.out.empty()

    def receive(self, timeout: float, limit: int = 1000) -> list[tuple[Any, ...]]:
        try:
            msgs = [self.out.get(timeout=timeout)]
        except queue.Empty:
            return []
        for _ in range(limit):
            try:
                msgs.append(self.out.get_nowait())
            except queue.Empty:
                break
        return msgs

    def kill(self) -> None:
        self.source.disconnect()
