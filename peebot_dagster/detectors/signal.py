"""Loss and acquisition of signal from `TIME_000001`.

ISS Live marks the signal with `TIME_000001`'s Status.Class: 24 is AOS, anything else LOS.
Status.Class alone is not reliable, so the feed also counts as lost while `TIME_000001` goes
silent: its TimeStamp advances about once a second while the station has signal, and a gap
longer than `stale_after_s` between two consecutive readings (by their TimeStamps) is a stale
feed. The frame has no wall clock (ingest time), so this TimeStamp gap is the staleness
measure a pure detector can use; the ingest daemon's own lag check is the live complement.

Events:
  `los`  start = first reading with a class other than 24 after signal (reason
         `status_class`), or the last good reading + `stale_after_s` (reason `stale`);
         end = the AOS that ends it, if the frame shows it.
  `aos`  start = first class-24 reading after a LOS (or the first reading after a stale gap).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from peebot_dagster.detectors.base import (
    AOS_STATUS_CLASS,
    Event,
    Processor,
    as_utc,
    from_epoch_seconds,
    to_epoch_seconds,
)

SIGNAL_ITEM = "TIME_000001"
PROCESSOR_NAME = "signal"


@dataclass(frozen=True)
class SignalParams:
    # TIME_000001 ticks about once a second with signal; the ingest daemon calls the feed
    # stale when it lags the wall clock by more than ~5 s (PEEBOT_STALE_LAG_SECONDS). 10 s
    # leaves room for batching jitter of a few seconds without calling every hiccup a LOS.
    stale_after_s: float = 10.0
    # A LOS shorter than this (from either source) is reported with reduced confidence:
    # single odd status classes of a few seconds happen around handovers.
    brief_los_s: float = 30.0


@dataclass(frozen=True)
class LosInterval:
    start: float  # epoch seconds
    end: float | None  # None: still lost at the end of the frame
    reason: str  # status_class | stale
    status_class: int | None


def _status_array(rows: pd.DataFrame) -> np.ndarray:
    """Status classes as float (NaN where the source had none)."""
    return rows["status_class"].astype("Float64").to_numpy(dtype="float64", na_value=np.nan)


def los_intervals(
    frame: pd.DataFrame, params: SignalParams | None = None, horizon: float | None = None
) -> list[LosInterval]:
    """LOS intervals of the frame's TIME_000001 readings (epoch seconds). Readings with no
    status class count as signal (a recording without status) for the class test."""
    p = params or SignalParams()
    rows = frame[frame["item_id"] == SIGNAL_ITEM]
    if rows.empty:
        return []
    secs = to_epoch_seconds(rows["ts"])
    status = _status_array(rows)
    lost = ~np.isnan(status) & (status != AOS_STATUS_CLASS)
    if horizon is None:
        horizon = float(secs[-1])
    out: list[LosInterval] = []
    current: LosInterval | None = None
    for i in range(secs.size):
        t = float(secs[i])
        # staleness: a silent stretch before this reading while we had signal
        if i > 0 and current is None and t - secs[i - 1] > p.stale_after_s:
            out.append(LosInterval(float(secs[i - 1]) + p.stale_after_s, t, "stale", None))
        if lost[i] and current is None and i > 0:
            # the first reading of the frame is the carried-forward state, not a transition
            current = LosInterval(t, None, "status_class", int(status[i]))
        elif lost[i] and current is None and i == 0:
            current = LosInterval(-math.inf, None, "status_class", int(status[i]))
        elif not lost[i] and current is not None:
            out.append(LosInterval(current.start, t, current.reason, current.status_class))
            current = None
    if current is not None:
        out.append(current)
    elif secs.size and horizon - secs[-1] > p.stale_after_s:
        out.append(LosInterval(float(secs[-1]) + p.stale_after_s, None, "stale", None))
    return out


def detect_signal(
    frame: pd.DataFrame, params: SignalParams, horizon: datetime | None = None
) -> list[Event]:
    hz = None if horizon is None else as_utc(horizon).timestamp()
    events: list[Event] = []
    for iv in los_intervals(frame, params, hz):
        duration = None if iv.end is None or not math.isfinite(iv.start) else iv.end - iv.start
        brief = duration is not None and duration < params.brief_los_s
        if math.isfinite(iv.start):
            events.append(
                Event(
                    event_type="los",
                    processor=PROCESSOR_NAME,
                    item_id=SIGNAL_ITEM,
                    start=from_epoch_seconds(iv.start),
                    end=None if iv.end is None else from_epoch_seconds(iv.end),
                    confidence=0.5 if brief else 1.0,
                    metadata={
                        "reason": iv.reason,
                        "status_class": iv.status_class,
                        "duration_s": duration,
                        "signal_state": "LOS",
                    },
                )
            )
        if iv.end is not None:
            events.append(
                Event(
                    event_type="aos",
                    processor=PROCESSOR_NAME,
                    item_id=SIGNAL_ITEM,
                    start=from_epoch_seconds(iv.end),
                    end=None,
                    confidence=1.0,
                    metadata={
                        "reason": iv.reason,
                        "los_duration_s": duration,
                        "signal_state": "AOS",
                    },
                )
            )
    events.sort(key=lambda e: e.start)
    return events


SIGNAL = Processor(
    name=PROCESSOR_NAME,
    items=(SIGNAL_ITEM,),
    event_types=("los", "aos"),
    # a LOS's start is found from the reading before it (<= stale_after_s earlier) and one
    # carried-forward row; a minute either side is ample.
    lookback=timedelta(minutes=1),
    lookahead=timedelta(minutes=1),
    params=SignalParams(),
    detect_fn=detect_signal,
    description="LOS/AOS of the ISS Live feed from TIME_000001 status class and staleness",
)
