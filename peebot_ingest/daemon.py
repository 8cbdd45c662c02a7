"""`peebot ingest`: the ISS Live ingest daemon.

Processes and threads: the Lightstreamer client runs in a child process of its own
(`feed_process`; PEEBOT_FEED_PROCESS=off keeps it on this process's threads), whose listener
only hands the update (or the status change) to a bounded, loss-free channel. One writer
thread here does the rest: validate, enrich, track the signal, batch, write
(`buffered_writer.BufferedWriter`). The main thread waits for SIGTERM / Ctrl-C, then stops
the client, lets the writer drain the channel and flush, and exits.

The daemon does not die when the database or the feed goes away: the writer buffers (memory,
then the journal) and retries; the client reconnects by itself (and is told to reconnect if
it ever gives up). Each outage is logged once when it starts and once when it ends.

Configuration: `DaemonConfig`, from the settings (`settings.Settings`, `PEEBOT_*`) with the
command line's overrides.
"""

from __future__ import annotations

import contextlib
import queue
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import structlog

from peebot_ingest import speedups
from peebot_ingest.batch import Batch, BatchResult
from peebot_ingest.buffered_writer import BufferedWriter, WriterConfig
from peebot_ingest.db import DatabaseError, peebot_home
from peebot_ingest.feed_process import FeedOptions, FeedProcess
from peebot_ingest.feed_source import FeedSource, InProcessFeed
from peebot_ingest.feedstate import FeedState, SignalConfig
from peebot_ingest.journal import Journal
from peebot_ingest.latency import LatencyHistogram
from peebot_ingest.records import FeedTransition, Rejection, ValidatedReading
from peebot_ingest.settings import Settings, get_settings
from peebot_ingest.sink import DatabaseSink, DatabaseUnavailable
from peebot_ingest.validate import Validator
from peebot_iss.catalog import TIME_ITEM, YEAR_ITEM, load_catalog


@dataclass
class DaemonConfig:
    database_url: str
    feed_url: str = "https://push.lightstreamer.com"
    adapter_set: str = "ISSLIVE"
    transport: str | None = None
    fast_reconnect: bool = False
    clock_check: bool = True
    queue_size: int = 50_000
    journal_dir: Path = field(default_factory=lambda: peebot_home() / "journal")
    summary_seconds: float = 60.0
    writer: WriterConfig = field(default_factory=WriterConfig)
    signal: SignalConfig = field(default_factory=SignalConfig)
    reconnect_seconds: float = 10.0
    feed_process: bool = True  # the client in a child process (else on this one's threads)

    @classmethod
    def from_settings(
        cls, database_url: str, settings: Settings | None = None, **overrides: Any
    ) -> DaemonConfig:
        """The configuration the settings give, with `overrides` (command-line options;
        None: not given) on top."""
        s = settings or get_settings()
        config = cls(
            database_url=database_url,
            feed_url=s.feed_url,
            adapter_set=s.feed_adapter_set,
            transport=s.feed_transport,
            fast_reconnect=s.feed_fast_reconnect,
            clock_check=s.clock_check,
            queue_size=s.ingest_queue_size,
            journal_dir=s.journal_dir or peebot_home() / "journal",
            summary_seconds=s.summary_seconds,
            reconnect_seconds=s.feed_reconnect_seconds,
            feed_process=s.feed_process,
            writer=WriterConfig(
                batch_rows=s.ingest_batch_rows,
                batch_seconds=s.ingest_batch_seconds,
                idle_commit_seconds=s.ingest_idle_commit_seconds,
                backlog_seconds=s.ingest_backlog_seconds,
                memory_rows=s.ingest_memory_rows,
            ),
            signal=SignalConfig(
                stale_after_seconds=s.stale_after_seconds,
                max_lag_seconds=s.stale_lag_seconds,
                clock_check=s.clock_check,
            ),
        )
        for key, value in overrides.items():
            if value is not None:
                setattr(config, key, value)
        config.signal.clock_check = config.clock_check
        return config


class IngestDaemon:
    def __init__(self, config: DaemonConfig) -> None:
        self.config = config
        config.signal.clock_check = config.clock_check
        self.log = structlog.get_logger("peebot.ingest")
        self.validator = Validator(source="feed", clock_check=config.clock_check)
        self.state = FeedState(config.signal)
        self.sink = DatabaseSink(config.database_url, source="feed")
        self.writer = BufferedWriter(
            self.sink, Journal(config.journal_dir), config.writer, on_commit=self._committed
        )
        self.latency = LatencyHistogram()
        self.validated = 0
        self.rejected = 0
        self.feed: FeedProcess | InProcessFeed | None = None
        self._stop = threading.Event()
        self._drain = threading.Event()
        self._finished = threading.Event()
        self._feed_down_since: float | None = None
        self._ever_connected = False
        self._last_feed_error = ""
        self._last_summary = time.monotonic()
        self.exit_clean = False

    # -- life cycle -------------------------------------------------------------------------

    def subscription_items(self) -> list[str]:
        """Active channels from the database (the catalogue if it is away) + the time items."""
        items: list[str] = []
        try:
            rows = self.sink.query(
                "SELECT item_id FROM telemetry_channel WHERE is_active ORDER BY id"
            )
            items = [row[0] for row in rows]
        except (DatabaseUnavailable, DatabaseError) as exc:
            self.log.warning(
                "database unavailable at start; subscribing to the catalogue", reason=str(exc)
            )
        if not items:
            items = [c.item_id for c in load_catalog()]
        # the year first: the snapshot arrives in this order, and TIME_000002 tells the year
        # every other TimeStamp belongs to
        rest = [i for i in items if i not in (YEAR_ITEM, TIME_ITEM)]
        return [YEAR_ITEM, TIME_ITEM, *rest]

    def run(self, install_signals: bool = True) -> int:
        """Run until SIGTERM/SIGINT (or `stop()`); returns the exit status."""
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, self._on_signal)
        items = self.subscription_items()
        self.feed = self._make_feed(items)
        writer_thread = threading.Thread(target=self._writer_loop, name="ingest-writer")
        writer_thread.start()
        self.log.info(
            "ingest starting",
            feed=self.config.feed_url,
            adapter_set=self.config.adapter_set,
            items=len(items),
            clock_check=self.config.clock_check,
            journal=str(self.config.journal_dir),
            backlog=self.writer.journal.entries,
            feed_process=self.config.feed_process,
            writer_loops=speedups.describe(),
        )
        self.feed.start()
        while not self._stop.wait(1.0):
            if isinstance(self.feed, InProcessFeed):
                self.feed.watch()
        self.log.info("stopping: disconnecting from the feed, flushing")
        self.feed.stop()
        self._drain.set()
        writer_thread.join()
        return 0 if self.exit_clean else 3

    def _make_feed(self, items: list[str]) -> FeedProcess | InProcessFeed:
        c = self.config
        if c.feed_process:
            return FeedProcess(
                FeedOptions(
                    c.feed_url,
                    c.adapter_set,
                    items,
                    fast_reconnect=c.fast_reconnect,
                    transport=c.transport,
                    reconnect_seconds=c.reconnect_seconds,
                    queue_size=c.queue_size,
                )
            )
        out: queue.Queue[Any] = queue.Queue(maxsize=c.queue_size)
        source = FeedSource(
            c.feed_url,
            c.adapter_set,
            items,
            out,
            fast_reconnect=c.fast_reconnect,
            transport=c.transport,
        )
        return InProcessFeed(source, out, c.reconnect_seconds)

    def stop(self) -> None:
        self._stop.set()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._stop.is_set():  # a second Ctrl-C: the flush is already under way
            return
        self._stop.set()

    # -- the writer thread ------------------------------------------------------------------

    def _writer_loop(self) -> None:
        feed = self.feed
        assert feed is not None
        writer = self.writer
        limit = writer.config.stream_rows or writer.config.batch_rows
        try:
            if writer.journal.entries:
                writer.flush()
            while True:
                timeout = min(writer.seconds_until_due(), 0.5)
                # what is there, no waiting; under a backlog, about as many as the writer
                # sends ahead at a time (the server stores them while we validate more)
                msgs = feed.receive(max(timeout, 0.001), limit)
                if msgs:
                    self._handle_all(msgs)
                now = time.time()
                for t in self.state.tick(now):
                    self._log_signal(t)
                    writer.add(t)
                # input still waiting: a backlog, committed by size; drained: by a short age
                writer.maybe_flush(more_waiting=feed.more_waiting())
                if time.monotonic() - self._last_summary >= self.config.summary_seconds:
                    self._summary()
                if self._drain.is_set() and feed.finished:
                    break
            self.exit_clean = writer.close(timeout=10.0)
            self._summary(final=True)
        except Exception:
            # a bug: keep what we hold (the journal is written back at the next start) and
            # stop, so a supervisor restarts us, rather than block the feed's thread forever
            self.log.exception("writer thread failed; saving the backlog to the journal")
            with contextlib.suppress(Exception):
                self._drain_to_journal()
            self.exit_clean = False
            self._stop.set()
        finally:
            self._finished.set()

    def _drain_to_journal(self) -> None:
        feed = self.feed
        if isinstance(feed, InProcessFeed):
            while msgs := feed.receive(0.001):
                for msg in msgs:
                    with contextlib.suppress(Exception):
                        self._handle(msg)
        elif feed is not None:
            feed.kill()  # it must not block on a channel nobody reads
        self.writer.spill_all()

    def _handle_all(self, msgs: list[tuple[Any, ...]]) -> None:
        """Messages in arrival order; each run of feed updates is validated at once."""
        run: list[tuple[Any, ...]] = []
        for msg in msgs:
            if msg[0] == "u":
                run.append(msg)
                continue
            if run:
                self._updates(run)
                run = []
            self._handle(msg)
        if run:
            self._updates(run)

    def _updates(self, msgs: list[tuple[Any, ...]]) -> None:
        results = self.validator.updates([m[1:] for m in msgs])
        for (_, item, fields, received_at, _snapshot), result in zip(msgs, results, strict=True):
            self._validated(item, fields, received_at, result)

    def _validated(
        self, item: Any, fields: Any, received_at: float, result: ValidatedReading | Rejection
    ) -> None:
        if isinstance(result, ValidatedReading):
            self.validated += 1
            if item == TIME_ITEM:
                for t in self.state.on_time_update(result.ts, result.status_class, received_at):
                    self._log_signal(t)
                    self.writer.add(t)
        else:
            self.rejected += 1
            if item == TIME_ITEM:  # the signal does not depend on the Value's shape
                decoded = self.validator.time_and_class(fields, received_at)
                if decoded is not None:
                    for t in self.state.on_time_update(*decoded, received_at):
                        self._log_signal(t)
                        self.writer.add(t)
            if self.rejected <= 10 or self.rejected % 1000 == 0:
                self.log.warning(
                    "update rejected",
                    item=result.item_id,
                    reason=result.reason,
                    rejected=self.rejected,
                )
        self.writer.add(result)

    def _handle(self, msg: tuple[Any, ...]) -> None:
        kind = msg[0]
        if kind == "u":
            self._updates([msg])
        elif kind == "s":
            _, status, wall = msg
            self._on_status(status, wall)
        elif kind == "e":
            _, text, wall = msg
            if text != self._last_feed_error:  # say it once, not at every retry
                self._last_feed_error = text
                self.log.error("feed error", detail=text)
            if text.startswith(("server error", "subscription error")):
                self._on_status_error(text, wall)

    def _on_status_error(self, text: str, wall: float) -> None:
        for t in self.state.on_connection(f"ERROR: {text}"[:200], wall, {"error": text}):
            self.writer.add(t)

    def _on_status(self, status: str, wall: float) -> None:
        for t in self.state.on_connection(status, wall):
            self.writer.add(t)
        if status.startswith("CONNECTED:") and status != "CONNECTED:STREAM-SENSING":
            if self._feed_down_since is not None:
                self.log.warning(
                    "feed connection back",
                    status=status,
                    down_seconds=round(wall - self._feed_down_since, 1),
                )
            elif not self._ever_connected:
                self.log.info("feed connected", status=status)
            self._feed_down_since = None
            self._ever_connected = True
            self._last_feed_error = ""
        elif status.startswith("DISCONNECTED") and self._feed_down_since is None:
            self._feed_down_since = wall
            if self._ever_connected and not self._stop.is_set():
                self.log.warning("feed connection lost; the client keeps retrying", status=status)

    def _log_signal(self, t: FeedTransition) -> None:
        self.log.info("signal", state=t.state, was=t.detail.get("from"), why=t.detail.get("why"))

    def _committed(self, batch: Batch, result: BatchResult) -> None:
        add = self.latency.add
        at = result.committed_at
        for r in batch.readings:
            if r.source == "feed":
                add(at - r.received_at)

    # -- reporting --------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        w = self.writer.summary()
        lag = self.state.lag_seconds(time.time())
        p50 = self.latency.quantile(0.5)
        p99 = self.latency.quantile(0.99)
        return {
            "received": self.feed.received if self.feed else 0,
            "written": w["written"],
            "duplicates": w["duplicates"],
            "rejected": w["rejected"],
            "rejected_seen": self.rejected,
            "queue": self.feed.queued if self.feed else 0,
            "feed_stalls": self.feed.stalls if self.feed else 0,
            "feed_restarts": self.feed.restarts if self.feed else 0,
            "pending": w["pending"],
            "journal": w["journal"],
            "lag_s": None if lag is None else round(lag, 2),
            "commit_p50_ms": None if p50 is None else round(p50 * 1000, 1),
            "commit_p99_ms": None if p99 is None else round(p99 * 1000, 1),
            "commit_max_ms": round(self.latency.max * 1000, 1),
            "signal": self.state.signal,
            "connection": self.state.connection,
            "db": w["db"],
        }

    def _summary(self, final: bool = False) -> None:
        self._last_summary = time.monotonic()
        self.log.info("ingest final" if final else "ingest summary", **self.stats())
