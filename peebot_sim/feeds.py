"""Feed sources for the TLCP server: what to serve, and when.

- `ScriptedFeed`: tests push exact updates from any thread (`feed.publish(item, fields)`).
- `ModelFeed`: the physical model (`model.py`) paced against the wall clock times `speed`.
- `RecordingFeed`: a recording `(item_id, utc datetime, value_str)` replayed at a speed.
- `CounterFeed`: a deterministic sequence (value = sequence number) for loss counting.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

from peebot_iss.catalog import TIME_ITEM, load_catalog
from peebot_iss.timestamps import format_timestamp
from peebot_sim.model import (
    AOS_STATUS_CLASS,
    SimConfig,
    TelemetryModel,
    make_fields,
)
from peebot_sim.tlcp import FieldValue, Publish

log = logging.getLogger("peebot.simulator")

# What the Python client keeps up with comfortably (notes section 6: 5-7 k/s flat out).
DEFAULT_MAX_RATE = 2500.0


def catalog_items() -> list[str]:
    return [c.item_id for c in load_catalog()]


class ScriptedFeed:
    """Serves exactly what a test publishes. Thread-safe.

    `items`: the subscribable items (default: the whole catalogue, so a client subscribing to
    every channel works); publishing to another item adds it. Before the server runs,
    published updates are queued and become the snapshot."""

    def __init__(
        self,
        items: Iterable[str] | None = None,
        initial: Mapping[str, Mapping[str, FieldValue]] | None = None,
    ) -> None:
        self._items = set(catalog_items() if items is None else items)
        self._initial = {k: dict(v) for k, v in (initial or {}).items()}
        self._items.update(self._initial)
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._publish: Publish | None = None
        self._pending: list[tuple[str, dict[str, FieldValue]]] = []
        self.published = 0

    def item_names(self) -> Collection[str]:
        with self._lock:
            return set(self._items)

    def initial_state(self) -> Mapping[str, Mapping[str, FieldValue]]:
        return self._initial

    async def run(self, publish: Publish) -> None:
        with self._lock:
            self._loop = asyncio.get_running_loop()
            self._publish = publish
            pending, self._pending = self._pending, []
        for item, fields in pending:
            publish(item, fields)
        await asyncio.Event().wait()  # until the server cancels us

    def publish(self, item: str, fields: Mapping[str, FieldValue], *, wait: bool = False) -> None:
        """Send an update (partial fields are merged into the item's state). With `wait`, return
        only once the server has queued it to every subscribed session."""
        fields = dict(fields)
        with self._lock:
            self._items.add(item)
            self.published += 1
            loop, publish = self._loop, self._publish
            if loop is None or publish is None:
                self._pending.append((item, fields))
                return
        if not wait:
            loop.call_soon_threadsafe(publish, item, fields)
            return
        done: Future[None] = Future()

        def _do() -> None:
            try:
                publish(item, fields)
                done.set_result(None)
            except Exception as exc:  # pragma: no cover - surfaced to the caller
                done.set_exception(exc)

        loop.call_soon_threadsafe(_do)
        done.result(timeout=10)

    def publish_many(
        self, updates: Iterable[tuple[str, Mapping[str, FieldValue]]], *, wait: bool = False
    ) -> None:
        """Several updates in order, handed to the server's loop in one go (faster)."""
        batch = [(item, dict(fields)) for item, fields in updates]
        with self._lock:
            for item, _ in batch:
                self._items.add(item)
            self.published += len(batch)
            loop, publish = self._loop, self._publish
            if loop is None or publish is None:
                self._pending.extend(batch)
                return
        done: Future[None] = Future()

        def _do() -> None:
            for item, fields in batch:
                publish(item, fields)
            done.set_result(None)

        loop.call_soon_threadsafe(_do)
        if wait:
            done.result(timeout=30)

    def publish_value(
        self,
        item: str,
        value: str,
        when: datetime | None = None,
        status_class: str = AOS_STATUS_CLASS,
        *,
        wait: bool = False,
    ) -> dict[str, str]:
        """Publish a full ISS-style update (all six fields); returns the fields sent."""
        fields = make_fields(when or datetime.now(UTC), value, status_class)
        self.publish(item, fields, wait=wait)
        return fields


class ModelFeed:
    """The physical model paced against the wall clock: simulated time advances `speed` times
    faster than real time. With `catch_up` (default) simulated time never runs ahead of the
    wall clock: once it reaches "now" the feed continues at speed 1.

    At high speed the non-essential analog channels are thinned (sampled less often) so the
    total rate stays under `max_rate` updates/s; the urine and water items and the time
    items are never thinned."""

    def __init__(
        self,
        config: SimConfig,
        speed: float = 1.0,
        *,
        max_rate: float = DEFAULT_MAX_RATE,
        catch_up: bool = True,
        truth_path: str | Path | None = None,
        tick_s: float = 0.05,
    ) -> None:
        self.speed = float(speed)
        probe = TelemetryModel(config)
        budget = max_rate - probe.nominal_rate(essential=True) * self.speed
        thinnable = probe.nominal_rate(essential=False) * self.speed
        # essentially no analog noise when the essentials alone use the whole budget
        factor = 1e6 if budget <= thinnable * 0.01 else max(1.0, thinnable / budget)
        if budget <= 0:
            log.warning(
                "speed %g: the unthinned items alone (TIME_000001, urine, water) need about "
                "%.0f updates/s, above --max-rate %.0f; a Python client may fall behind",
                self.speed,
                probe.nominal_rate(essential=True) * self.speed,
                max_rate,
            )
        if factor > 1.0:
            config.analog_interval_scale *= factor  # note: changes the caller's config
            self.model = TelemetryModel(config)
        else:
            self.model = probe
        self.catch_up = catch_up
        self.tick_s = tick_s
        self.truth_path = Path(truth_path) if truth_path else None
        self._truth_written = 0
        self.sim_now = config.start
        self.updates = 0

    def item_names(self) -> Collection[str]:
        return set(self.model.by_id)

    def initial_state(self) -> Mapping[str, Mapping[str, FieldValue]]:
        return self.model.initial_fields()

    def _sim_time(self, elapsed: float) -> datetime:
        start = self.model.start
        sim = start + timedelta(seconds=elapsed * self.speed)
        if self.catch_up and self.speed > 1:
            now = datetime.now(UTC)
            if start <= now < sim:
                sim = now
        return max(sim, self.sim_now)

    async def run(self, publish: Publish) -> None:
        truth_fh: IO[str] | None = None
        if self.truth_path is not None:
            self.truth_path.parent.mkdir(parents=True, exist_ok=True)
            truth_fh = self.truth_path.open("a", encoding="utf-8")
        wall0 = time.monotonic()
        try:
            while True:
                self.sim_now = self._sim_time(time.monotonic() - wall0)
                for u in self.model.generate(self.sim_now):
                    publish(u.item_id, u.fields)
                    self.updates += 1
                if truth_fh is not None:
                    self._write_truth(truth_fh)
                await asyncio.sleep(self.tick_s)
        finally:
            if truth_fh is not None:
                self._write_truth(truth_fh)
                truth_fh.close()

    def _write_truth(self, fh: IO[str]) -> None:
        # Only events that are over: their level_after is known.
        events = [e for e in self.model.truth if e.end <= self.sim_now]
        new = events[self._truth_written :]
        if new:
            fh.write("".join(json.dumps(e.to_json()) + "\n" for e in new))
            fh.flush()
            self._truth_written += len(new)


class RecordingFeed:
    """Replays readings `(item_id, utc datetime, value_str)` (sorted by time) at `speed`.

    TimeStamps are the recorded times. Unless the recording has `TIME_000001`, a time tick with
    Status.Class 24 is added every `time_tick_s` of recorded time (at most 50 per wall second
    at high speed), so a client sees signal.
    The replay starts when the first client subscribes (`wait_for_subscriber`; the server
    honours it): at high speed a client connecting a moment late would miss the beginning.
    `finished` (a threading.Event) is set when the recording is over (the server keeps running)."""

    MAX_TICKS_PER_S = 50.0

    def __init__(
        self,
        readings: Sequence[tuple[str, datetime, str]],
        speed: float = 1.0,
        *,
        time_tick_s: float | None = 1.0,
        items: Iterable[str] | None = None,
        tick_s: float = 0.02,
        wait_for_subscriber: bool = True,
    ) -> None:
        self.readings = sorted(readings, key=lambda r: r[1])
        self.wait_for_subscriber = wait_for_subscriber
        self.speed = float(speed)
        self.tick_s = tick_s
        recorded = {r[0] for r in self.readings}
        # At most MAX_TICKS_PER_S time ticks per wall second, so a fast replay is not all ticks.
        if TIME_ITEM in recorded or not time_tick_s:
            self.time_tick_s: float | None = None
        else:
            self.time_tick_s = max(time_tick_s, self.speed / self.MAX_TICKS_PER_S)
        self._items = set(catalog_items() if items is None else items) | recorded
        self.sent = 0
        self.finished = threading.Event()

    def item_names(self) -> Collection[str]:
        return set(self._items)

    def initial_state(self) -> Mapping[str, Mapping[str, FieldValue]]:
        return {}

    async def run(self, publish: Publish) -> None:
        if not self.readings:
            self.finished.set()
            await asyncio.Event().wait()
        t_first = self.readings[0][1]
        t_last = self.readings[-1][1]
        wall0 = time.monotonic()
        i = 0
        next_tick = t_first
        while i < len(self.readings):
            sim_now = t_first + timedelta(seconds=(time.monotonic() - wall0) * self.speed)
            while i < len(self.readings) and self.readings[i][1] <= sim_now:
                item, when, value = self.readings[i]
                while self.time_tick_s and next_tick <= when:
                    publish(TIME_ITEM, make_fields(next_tick, format_timestamp(next_tick)))
                    next_tick += timedelta(seconds=self.time_tick_s)
                publish(item, make_fields(when, value))
                self.sent += 1
                i += 1
            await asyncio.sleep(self.tick_s)
        log.info("recording served: %d readings up to %s", self.sent, t_last.isoformat())
        self.finished.set()
        await asyncio.Event().wait()


class CounterFeed:
    """A known sequence for loss counting: update number `seq` goes to item `seq % n` with
    Value `str(seq)` and the wall-clock TimeStamp, `rate` per second, until `count` were sent.
    `start_seq` resumes a sequence (see `last_sequence`). A TIME_000001 tick (Status.Class 24)
    is published every second unless `time_ticks` is False; it is not part of the sequence."""

    def __init__(
        self,
        n_items: int = 10,
        rate: float = 100.0,
        count: int = 1000,
        *,
        start_seq: int = 0,
        items: Sequence[str] | None = None,
        time_ticks: bool = True,
        tick_s: float = 0.01,
    ) -> None:
        if items is None:
            items = [c.item_id for c in load_catalog() if not c.item_id.startswith("TIME_")]
        if n_items < 1 or n_items > len(items):
            raise ValueError(f"n_items must be 1..{len(items)}")
        self.counter_items = list(items[:n_items])
        self.rate = float(rate)
        self.count = count
        self.start_seq = start_seq
        self.next_seq = start_seq
        self.time_ticks = time_ticks
        self.tick_s = tick_s
        self.finished = threading.Event()

    def item_names(self) -> Collection[str]:
        return set(catalog_items()) | set(self.counter_items)

    def initial_state(self) -> Mapping[str, Mapping[str, FieldValue]]:
        return {}

    @staticmethod
    def last_sequence(sent_log: str | Path, items: Collection[str] | None = None) -> int | None:
        """The highest sequence number a previous run logged (to resume after a restart)."""
        path = Path(sent_log)
        if not path.exists():
            return None
        best: int | None = None
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                    if items is not None and rec["item"] not in items:
                        continue
                    if rec["item"].startswith("TIME_"):
                        continue
                    seq = int(rec["fields"]["Value"])
                except (ValueError, KeyError, TypeError):
                    continue
                best = seq if best is None else max(best, seq)
        return best

    async def run(self, publish: Publish) -> None:
        wall0 = time.monotonic()
        last_tick = -1
        n = len(self.counter_items)
        while True:
            elapsed = time.monotonic() - wall0
            due = min(self.count, self.start_seq + int(elapsed * self.rate) + 1)
            now = datetime.now(UTC)
            if self.time_ticks and int(elapsed) != last_tick:
                last_tick = int(elapsed)
                publish(TIME_ITEM, make_fields(now, format_timestamp(now)))
            while self.next_seq < due:
                seq = self.next_seq
                publish(self.counter_items[seq % n], make_fields(now, str(seq)))
                self.next_seq += 1
            if self.next_seq >= self.count and not self.finished.is_set():
                self.finished.set()
                log.info("counter: all %d updates sent", self.count)
            await asyncio.sleep(self.tick_s)
