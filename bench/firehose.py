"""A TLCP server that sends as fast as it can, for bench/ingest.py part (2).

    python bench/firehose.py --port P [--count 60000] [--items 50] [--burst 500]

The project's simulator (`peebot simulate --script counter`) paces its counter and builds
each update's fields on its own; on the shared 2-core box it tops out near 2,200 updates/s
to a bare Lightstreamer listener, below what the daemon should take. This server is the
simulator's own TLCP server (`peebot_sim.tlcp.TlcpServer`, the same protocol and frames)
with a feed that publishes the counter in bursts of `--burst` updates (one TimeStamp per
burst) with no pacing, so each WebSocket frame carries hundreds of updates. The sequence is
the counter's: update `seq` goes to item `seq % items` with Value `str(seq)`. It starts once
a client has subscribed (or after 10 s), so a daemon started first sees the whole sequence.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from peebot_iss.catalog import load_catalog
from peebot_sim.model import make_fields
from peebot_sim.tlcp import TlcpServer, run_server


class FirehoseFeed:
    def __init__(self, n_items: int, count: int, burst: int) -> None:
        items = [c.item_id for c in load_catalog() if not c.item_id.startswith("TIME_")]
        self.counter_items = items[:n_items]
        self.count = count
        self.burst = burst
        self.server: TlcpServer | None = None

    def item_names(self) -> Collection[str]:
        return {c.item_id for c in load_catalog()}

    def initial_state(self) -> Mapping[str, Mapping[str, Any]]:
        return {}

    async def run(self, publish: Any) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not self._subscribed():
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # the subscription's snapshot goes out first
        n = len(self.counter_items)
        seq = 0
        while seq < self.count:
            base = make_fields(datetime.now(UTC), "0")
            for seq in range(seq, min(seq + self.burst, self.count)):  # noqa: B020
                fields = dict(base)
                fields["Value"] = fields["CalibratedData"] = str(seq)
                publish(self.counter_items[seq % n], fields)
            seq += 1
            await asyncio.sleep(0)  # let the sessions write
        print(f"firehose: all {self.count} updates sent", flush=True)
        # a feed runs until the server stops it (else the server ends with FeedStopped);
        # the bench stops this process once it has counted what arrived
        await asyncio.Event().wait()

    def _subscribed(self) -> bool:
        server = self.server
        return server is not None and any(s.subs for s in server.hub.sessions.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=60_000)
    ap.add_argument("--items", type=int, default=50)
    ap.add_argument("--burst", type=int, default=500)
    args = ap.parse_args()
    feed = FirehoseFeed(args.items, args.count, args.burst)

    def ready(server: TlcpServer) -> None:
        feed.server = server

    run_server(feed, host=args.host, port=args.port, keepalive_ms=1000, on_ready=ready)


if __name__ == "__main__":
    main()
