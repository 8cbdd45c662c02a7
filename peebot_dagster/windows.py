"""One detection pass over a window: read it from the database, detect, replace its events.

Used by the detection assets for a minute or a whole range (a backfill is one call, one
query), and directly by tests and the benchmark. No Dagster here: the assets
(defs/detection/assets.py) turn a `WindowOutcome` into metadata.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import psycopg

from peebot_dagster import store
from peebot_dagster.detectors.base import Event, Processor
from peebot_dagster.partitions import MINUTE, key_start, partition_key
from peebot_dagster.posting.outbox import enqueue_posts
from peebot_iss.utc import as_utc


class ParamsError(ValueError):
    """Detector parameter overrides that do not fit the processor (one line)."""


def with_overrides(processor: Processor, overrides: dict[str, Any] | None) -> Any:
    """The processor's params with `overrides` applied (names checked, types kept)."""
    params = processor.params
    if not overrides:
        return params
    if not dataclasses.is_dataclass(params) or isinstance(params, type):
        raise ParamsError(f"processor {processor.name} takes no parameters")
    fields = {f.name: f for f in dataclasses.fields(params)}
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise ParamsError(
            f"unknown parameter(s) {unknown} for processor {processor.name}; "
            f"known: {sorted(fields)}"
        )
    typed: dict[str, Any] = {}
    for name, value in overrides.items():
        current = getattr(params, name)
        try:
            typed[name] = type(current)(value) if current is not None else value
        except (TypeError, ValueError) as exc:
            raise ParamsError(f"parameter {name}={value!r}: {exc}") from exc
    return dataclasses.replace(params, **typed)


@dataclass
class WindowOutcome:
    processor: Processor
    start: datetime
    end: datetime
    horizon: datetime
    complete: bool  # ingest had written everything up to end + look-ahead
    frame: pd.DataFrame
    events: list[Event]
    result: store.ReplaceResult
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def detection_seconds(self) -> float:
        return sum(self.timings.values())


def run_window(
    conn: psycopg.Connection[Any],
    processor: Processor,
    start: datetime,
    end: datetime,
    params: Any = None,
) -> WindowOutcome:
    """Detect over `[start, end)` and replace the events it owns, outbox rows and
    `processor_state` in the same transaction. `conn` should be in autocommit mode.
    Raises `store.RawReadingsGone` for a window (with its look-back) reaching below what
    retention kept: re-detected from missing readings, its events would be deleted."""
    start, end = as_utc(start), as_utc(end)
    t0 = time.perf_counter()
    what = f"{processor.name} window [{start:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M})"
    store.check_raw_readings(conn, what, start - processor.lookback)
    watermark = store.ingest_watermark(conn)
    horizon = end + processor.lookahead
    complete = watermark is None or watermark >= horizon
    if not complete and watermark is not None:
        # values hold only up to what ingest has written, not to the end of the look-ahead
        horizon = max(watermark, start)
    frame = store.read_window(
        conn, processor.items, start, end, processor.lookback, processor.lookahead
    )
    t1 = time.perf_counter()
    events = processor.detect_window(frame, start, end, params, horizon=horizon)
    t2 = time.perf_counter()
    with conn.transaction():
        result = store.replace_window_events(conn, processor.name, start, end, events)
        result.enqueued = enqueue_posts(conn, result.live_ids)
        store.record_processor_run(
            conn,
            processor.name,
            start,
            end,
            {
                "events": len(events),
                "inserted": len(result.inserted),
                "updated": len(result.updated),
                "deleted": len(result.deleted),
                "retracted": len(result.retracted),
                "complete": complete,
                "params": processor.params_dict(params),
            },
        )
    t3 = time.perf_counter()
    return WindowOutcome(
        processor,
        start,
        end,
        horizon,
        complete,
        frame,
        events,
        result,
        {"read_s": t1 - t0, "detect_s": t2 - t1, "store_s": t3 - t2},
    )


def level_item(processor: Processor) -> str | None:
    """The item whose value is the processor's "level" (the first non-clock item)."""
    for item in processor.items:
        if not item.startswith("TIME_"):
            return item
    return None


def levels_at(frame: pd.DataFrame, item: str, when: list[datetime]) -> list[float | None]:
    """The value of `item` in force at each time (None before its first reading)."""
    rows = frame[frame["item_id"] == item]
    if rows.empty:
        return [None] * len(when)
    ts = rows["ts"].to_numpy(dtype="datetime64[ns]")
    values = rows["value"].to_numpy(dtype="float64")
    probe = np.array([np.datetime64(w.replace(tzinfo=None), "ns") for w in when])
    idx = np.searchsorted(ts, probe, side="right") - 1
    return [None if i < 0 else float(values[i]) for i in idx]


def partition_metadata(outcome: WindowOutcome, keys: list[str]) -> dict[str, dict[str, Any]]:
    """Per-minute numbers (the UI plots numeric metadata across partitions): events that
    start in the minute, and the level at the minute's end."""
    counts: dict[str, int] = {}
    for event in outcome.events:
        k = partition_key(event.start)
        counts[k] = counts.get(k, 0) + 1
    item = level_item(outcome.processor)
    ends = [key_start(k) + MINUTE for k in keys]
    levels = levels_at(outcome.frame, item, ends) if item else [None] * len(keys)
    out: dict[str, dict[str, Any]] = {}
    for k, level in zip(keys, levels, strict=True):
        meta: dict[str, Any] = {"events": counts.get(k, 0)}
        if level is not None:
            meta["level"] = level
        out[k] = meta
    return out
