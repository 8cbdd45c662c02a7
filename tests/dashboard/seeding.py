"""Data for the dashboard tests, written through the product's own paths: readings and feed
transitions through the ingest writer (`DatabaseSink`), events through the event store
(`replace_window_events`) with their outbox rows (`enqueue_posts`), posts through the
outbox's state changes."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from peebot_dagster.detectors.base import Event
from peebot_dagster.detectors.upa import PROCESSOR_NAME as UPA_PROCESSOR
from peebot_dagster.posting import outbox
from peebot_dagster.posting.policy import PostingSettings
from peebot_dagster.store import replace_window_events
from peebot_ingest.batch import Batch
from peebot_ingest.records import FeedTransition, ValidatedReading
from peebot_ingest.sink import DatabaseSink
from peebot_ingest.validate import Validator

TANK = "NODE3000005"
UPA = "NODE3000004"
TIME = "TIME_000001"


def write_readings(
    url: str,
    readings: list[tuple[str, datetime, float, int | None]],
    transitions: list[FeedTransition] | None = None,
    source: str = "feed",
) -> None:
    """One batch (one transaction) through the ingest writer."""
    validator = Validator(source=source, clock_check=False)
    batch = Batch(transitions=list(transitions or []))
    for item, ts, value, klass in readings:
        result = validator.reading(item, ts, str(value), klass, received_at=time.time())
        assert isinstance(result, ValidatedReading), result
        batch.add(result)
    sink = DatabaseSink(url, source=source)
    try:
        sink.write(batch)
    finally:
        sink.close()


def signal(state: str, at: datetime) -> FeedTransition:
    return FeedTransition("signal", state, at.timestamp(), at, {})


def connection(state: str, at: datetime) -> FeedTransition:
    return FeedTransition("connection", state, at.timestamp(), None, {})


def use_event(start: datetime, before: float, after: float, **meta: Any) -> Event:
    delta = after - before
    kind = "bulk_transfer" if delta > 8 else "urination"
    return Event(
        event_type=kind,
        processor="urine_tank",
        item_id=TANK,
        start=start,
        end=start + timedelta(seconds=5 * delta),
        confidence=meta.pop("confidence", 0.97),
        metadata={
            "level_before": before,
            "level_after": after,
            "delta": delta,
            "volume_ml": round(delta * 80),
            "flags": meta.pop("flags", []),
            **meta,
        },
    )


def store_events(
    url: str,
    start: datetime,
    end: datetime,
    events: list[Event],
    processor: str = "urine_tank",
    backends: tuple[str, ...] = ("dry_run",),
) -> dict[str, int]:
    """Replace the window's events as a detection run does, outbox rows in the same
    transaction; returns event_key -> id of the window's live events."""
    with psycopg.connect(url) as conn:
        result = replace_window_events(conn, processor, start, end, events)
        outbox.enqueue_posts(
            conn,
            result.live_ids,
            settings=PostingSettings(backends=backends, event_types=("urination", "bulk_transfer")),
        )
        rows = conn.execute(
            "SELECT event_key, id FROM detected_event WHERE id = ANY(%s)", (result.live_ids,)
        ).fetchall()
        conn.commit()
    return {key: int(event_id) for key, event_id in rows}


def mark_posted(url: str, event_id: int, backend: str, external_id: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT id FROM social_post WHERE event_id = %s AND backend = %s", (event_id, backend)
        ).fetchone()
        assert row is not None, (event_id, backend)
        now = datetime.now(UTC)
        assert outbox.mark_sending(conn, row[0], now)
        outbox.mark_posted(conn, row[0], external_id=external_id, now=now)
    return int(row[0])


def demo_history(url: str, end: datetime, seed: int = 7) -> list[Event]:
    """Six hours of a believable tank up to `end`: flip noise, a slow drain while the UPA
    processes, five uses (the last one still in its hold, under 3 minutes before `end`), one
    bulk transfer, one LOS; the tank's events as a detection run would store them (the UPA
    cycles: `demo_upa_events`)."""
    rng = random.Random(seed)
    start = end - timedelta(hours=6)
    readings: list[tuple[str, datetime, float, int | None]] = []
    level = 38.0
    uses = [start + timedelta(minutes=m) for m in (35, 110, 170, 300, 357)]
    transfer = start + timedelta(minutes=230)
    los = (start + timedelta(minutes=130), start + timedelta(minutes=150))
    upa = [
        (start, 32),
        (start + timedelta(minutes=60), 16),
        (start + timedelta(minutes=100), 32),
        (start + timedelta(minutes=260), 16),
        (start + timedelta(minutes=290), 64),
    ]
    for at, state in upa:
        readings.append((UPA, at, float(state), None))
    events: list[Event] = []
    t = start
    upa_state = 32
    shown = level
    while t < end:
        for at, state in upa:
            if at <= t:
                upa_state = state
        in_los = los[0] <= t < los[1]
        step = timedelta(seconds=20)
        if any(u <= t < u + timedelta(seconds=20) for u in uses):
            step = timedelta(seconds=5)
        if upa_state == 16:
            level -= 0.22 / 3  # 0.22 %/min
        if any(u <= t < u + timedelta(seconds=15) for u in uses):
            level += 1.0  # a use: +1 % every 5 s for 15 s
        if transfer <= t < transfer + timedelta(minutes=3):
            level += 2.0  # a transfer: +18 % over 3 min
        flip = 1 if rng.random() < 0.15 else 0
        value = float(round(level) + flip)
        if value != shown and not in_los:
            readings.append((TANK, t, value, None))
            shown = value
        t += step
    for u in uses:
        before = float(round(_level_at(readings, u - timedelta(seconds=30))))
        after = before + 3
        flags = ["short_hold"] if u == uses[-1] else []
        events.append(use_event(u, before, after, flags=flags))
    before = float(round(_level_at(readings, transfer - timedelta(seconds=30))))
    events.append(use_event(transfer, before, before + 18, confidence=0.99))
    transitions = [
        connection("CONNECTED:WS-STREAMING", start - timedelta(minutes=1)),
        signal("AOS", start - timedelta(minutes=1)),
        signal("LOS", los[0]),
        signal("AOS", los[1]),
    ]
    beats = [(TIME, start + timedelta(minutes=m), 0.0, 24) for m in range(0, 360, 30)]
    write_readings(url, readings + beats, transitions)
    write_readings(url, [(TIME, end, 0.0, 24)])
    return events


def demo_upa_events(end: datetime) -> list[Event]:
    """The UPA cycles of `demo_history` (processing from minute 60 to 100 and 260 to 290)."""
    start = end - timedelta(hours=6)
    return upa_events(
        [
            (start + timedelta(minutes=a), start + timedelta(minutes=b))
            for a, b in ((60, 100), (260, 290))
        ]
    )


def upa_events(cycles: list[tuple[datetime, datetime]]) -> list[Event]:
    """Processing cycles as the UPA detector stores them: a start and a stop event each."""
    return [
        Event(
            event_type=kind,
            processor=UPA_PROCESSOR,
            item_id=UPA,
            start=at,
            end=at + timedelta(minutes=1),
            confidence=0.95,
            metadata={"flags": []},
        )
        for on, off in cycles
        for kind, at in (("upa_cycle_start", on), ("upa_cycle_stop", off))
    ]


def past_days(url: str, until: datetime, days: int, level_at_end: float, seed: int = 11) -> int:
    """`days` days of history before `until`, coarser than `demo_history` (10-minute steps,
    a reading per change): five to eight uses a day (+3 %), two UPA processing cycles a day
    draining the tank, a bulk transfer every fourth day, the full tank swapped now and then;
    the events as the detection runs would store them (uses posted to the dry run), so the
    30-day charts have days to show. The level ends at `level_at_end`. Returns the number
    of events stored."""
    rng = random.Random(seed)
    start = until - timedelta(days=days)
    step = timedelta(minutes=10)
    uses: set[datetime] = set()
    transfers: set[datetime] = set()
    cycles: list[tuple[datetime, datetime]] = []
    for n in range(days):
        day = start + timedelta(days=n)
        slots = rng.sample(range(1, 144), 9)  # 10-minute slots: uses, then maybe a transfer
        uses.update(day + step * i for i in slots[: rng.randint(5, 8)])
        if n % 4 == 2:
            transfers.add(day + step * slots[-1])
        for first_hour in (2, 13):
            on = (
                day
                + timedelta(hours=rng.randint(first_hour, first_hour + 7))
                + step * rng.randint(0, 5)
            )
            cycles.append((on, on + step * rng.randint(3, 6)))
    levels: dict[datetime, float] = {}
    level, t = 30.0, start
    while t < until:
        if t in uses:
            level += 3.0
        if t in transfers:
            level += 18.0
        if level > 15 and any(on <= t < off for on, off in cycles):
            level -= 2.2  # 0.22 %/min
        if level > 75:  # the crew swaps the full tank
            level -= 45.0
        levels[t] = level
        t += step
    # tilt the history so that it ends where the demo's six hours begin
    tilt = (level_at_end - level) / (until - start).total_seconds()
    for at in levels:
        levels[at] += tilt * (at - start).total_seconds()
    readings: list[tuple[str, datetime, float, int | None]] = []
    shown = None
    for at, value in sorted(levels.items()):
        value = float(round(value) + (1 if rng.random() < 0.1 else 0))
        if value != shown:
            readings.append((TANK, at, value, None))
            shown = value
    readings += [(UPA, at, v, None) for on, off in cycles for at, v in ((on, 16.0), (off, 32.0))]
    write_readings(url, sorted(readings, key=lambda r: r[1]))

    def rise(at: datetime, by: float, **meta: Any) -> Event:
        before = float(round(levels[at - step]))
        return use_event(at, before, before + by, **meta)

    tank = [rise(u, 3) for u in sorted(uses)] + [rise(t, 18, confidence=0.99) for t in transfers]
    ids = store_events(url, start, until, tank, "urine_tank", ("dry_run",))
    for event_id in ids.values():
        mark_posted(url, event_id, "dry_run", f"line-{event_id}")
    store_events(url, start, until, upa_events(cycles), UPA_PROCESSOR, ())
    return len(tank) + 2 * len(cycles)


def _level_at(readings: list[tuple[str, datetime, float, int | None]], at: datetime) -> float:
    value = 38.0
    for item, ts, v, _ in readings:
        if item == TANK and ts <= at:
            value = v
    return value
