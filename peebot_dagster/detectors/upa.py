"""Urine processor (UPA) cycles from `NODE3000004`, with the drain they cause in the tank.

NODE3000004 codes (the ISS Live catalogue, peebot_iss/data): 2 STOP, 4 SHUTDOWN, 8 MAINTENANCE, 16 NORMAL
(processing), 32 STANDBY, 64 IDLE, 128 SYSTEM INITIALIZED. A cycle starts when the state
becomes 16 and stops when it leaves 16. The first reading of the frame is the carried-forward
state, not a change. The drain rate is the least-squares slope of the urine tank level
(`NODE3000005`, step signal sampled every `drain_sample_s`) over `drain_window_min` after a
start or before a stop, in % per hour (negative = draining). In the 2023 recording the tank
drains 1 % every 4-5 min while the state is 16 (about -13 %/h) and holds while it is 32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from peebot_dagster.detectors.base import (
    Event,
    Processor,
    drop_repeats,
    from_epoch_seconds,
    horizon_seconds,
    item_series,
)

UPA_ITEM = "NODE3000004"
TANK_ITEM = "NODE3000005"
PROCESSOR_NAME = "upa_cycle"
PROCESSING = 16
STATE_NAMES = {
    2: "STOP",
    4: "SHUTDOWN",
    8: "MAINTENANCE",
    16: "NORMAL",
    32: "STANDBY",
    64: "IDLE",
    128: "SYSTEM INITIALIZED",
}


@dataclass(frozen=True)
class UpaParams:
    # 30 min spans 6-7 drain steps at the observed 1 % per 4-5 min: enough for a slope.
    drain_window_min: float = 30.0
    # Sampling grid for the slope; the tank changes at most about every 3 s.
    drain_sample_s: float = 10.0
    # With less tank data than this in the drain window the rate is not reported.
    min_drain_coverage_min: float = 10.0


def step_slope_per_hour(
    secs: np.ndarray, values: np.ndarray, lo: float, hi: float, sample_s: float
) -> tuple[float, float]:
    """Least-squares slope (%/h) of the step signal over [lo, hi) and the covered minutes."""
    if secs.size == 0 or hi <= lo:
        return math.nan, 0.0
    lo = max(lo, float(secs[0]))
    if hi - lo < 2 * sample_s:
        return math.nan, max(0.0, (hi - lo) / 60.0)
    grid = np.arange(lo, hi, sample_s)
    idx = np.searchsorted(secs, grid, side="right") - 1
    vals = values[idx]
    slope = float(np.polyfit(grid - lo, vals, 1)[0]) * 3600.0
    return slope, (hi - lo) / 60.0


def detect_upa(
    frame: pd.DataFrame, params: UpaParams, horizon: datetime | None = None
) -> list[Event]:
    secs, states = drop_repeats(*item_series(frame, UPA_ITEM))
    tank_t, tank_v = item_series(frame, TANK_ITEM)
    hz = horizon_seconds(frame, horizon)
    window = params.drain_window_min * 60.0
    events: list[Event] = []
    for i in range(1, secs.size):
        before, after = int(states[i - 1]), int(states[i])
        t = float(secs[i])
        if after == PROCESSING and before != PROCESSING:
            kind, lo, hi = "upa_cycle_start", t, min(t + window, hz)
        elif before == PROCESSING and after != PROCESSING:
            kind, lo, hi = "upa_cycle_stop", t - window, t
        else:
            continue
        slope, covered = step_slope_per_hour(tank_t, tank_v, lo, hi, params.drain_sample_s)
        rate = slope if covered >= params.min_drain_coverage_min else math.nan
        events.append(
            Event(
                event_type=kind,
                processor=PROCESSOR_NAME,
                item_id=UPA_ITEM,
                start=from_epoch_seconds(t),
                end=None,
                confidence=1.0,
                metadata={
                    "state_before": before,
                    "state_after": after,
                    "state_before_name": STATE_NAMES.get(before, "UNKNOWN"),
                    "state_after_name": STATE_NAMES.get(after, "UNKNOWN"),
                    "drain_pct_per_hour": None if math.isnan(rate) else round(rate, 2),
                    "drain_window": "after" if kind == "upa_cycle_start" else "before",
                    "drain_window_min": round(covered, 1),
                },
            )
        )
    return events


UPA_CYCLE = Processor(
    name=PROCESSOR_NAME,
    items=(UPA_ITEM, TANK_ITEM),
    event_types=("upa_cycle_start", "upa_cycle_stop"),
    lookback=timedelta(minutes=UpaParams.drain_window_min),
    lookahead=timedelta(minutes=UpaParams.drain_window_min),
    params=UpaParams(),
    detect_fn=detect_upa,
    description="UPA processing start/stop from NODE3000004, with the tank drain rate",
)
