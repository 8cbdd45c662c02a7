"""Clean-water tank draws and refills (`NODE3000009`, Clean Water Tank Qty, %).

What the data look like (../shared/data/iss/iss-mimic-2018, ~18 h): 0.01 % resolution, a
reading about every 10 s, noise of +-0.01..0.02 % around a flat level, and three draws of
~5.4 % each (66.64 -> 61.28 -> 55.88 -> 50.33), each done in 3-4 readings (30-40 s),
about 8.5 h apart. The waste-water tank (NODE3000008) in the same recording rises slowly
(~3.5 %/h) with 0.1-0.26 % jitters and no steps: a different shape, not detected here.

Algorithm: readings whose change from the previous one exceeds `step_pct` (10x the noise)
are *moves*; moves of one sign less than `max_step_gap_s` apart form one step. The step
counts when the time-weighted mean over `settle_window_s` after it differs from the mean over
the same span before it by at least `min_change_pct`: a drop is `clean_water_draw`, a rise
`clean_water_refill`. A step whose first move follows a silence longer than `silence_s`
is flagged `across_silence`; a rise across a silence no faster than `slow_fill_pct_per_h`
is the water processor's steady production and not reported. Confidence: the change over the noise (s.d. before/after plus the
0.01 % resolution), 1 - exp(-z / 10), so a 1 % change over 0.02 % noise is ~0.97.
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
    step_mean,
)

CLEAN_WATER_ITEM = "NODE3000009"
PROCESSOR_NAME = "clean_water"


@dataclass(frozen=True)
class WaterParams:
    # A reading-to-reading change above this is a move: the flat-level noise is 0.01-0.02 %.
    step_pct: float = 0.2
    # Moves of one sign closer than this form one step (draws moved every 10 s in 2018).
    max_step_gap_s: float = 60.0
    # Level before/after a step: mean over this long (6 readings at the 10 s cadence).
    settle_window_s: float = 60.0
    # Smallest settled change reported; the 2018 draws were 5.4 %, the jitter < 0.3 %.
    min_change_pct: float = 1.0
    # A move after a silence this long is seen only across it (a LOS, a recorder gap): the
    # tank reports every ~10 s (2018: median gap 10 s, p99 70 s).
    silence_s: float = 120.0
    # A rise across a silence slower than this is the water processor's steady production
    # (a few %/h; the simulator's WPA makes 4.5 %/h), not a refill step.
    slow_fill_pct_per_h: float = 10.0
    # Confidence factor of a step seen only across a silence.
    silence_factor: float = 0.3
    # Resolution of the reading (0.01 %), the noise floor of the confidence.
    resolution_pct: float = 0.01


def detect_water(
    frame: pd.DataFrame, params: WaterParams, horizon: datetime | None = None
) -> list[Event]:
    p = params
    raw_t, raw_v = item_series(frame, CLEAN_WATER_ITEM)
    secs, vals = drop_repeats(raw_t, raw_v)
    if secs.size < 2:
        return []
    hz = horizon_seconds(frame, horizon)
    diffs = np.diff(vals)
    moves = [i + 1 for i in np.flatnonzero(np.abs(diffs) > p.step_pct)]
    events: list[Event] = []
    k = 0
    while k < len(moves):
        first = moves[k]
        sign = math.copysign(1.0, vals[first] - vals[first - 1])
        last = first
        while (
            k + 1 < len(moves)
            and secs[moves[k + 1]] - secs[last] <= p.max_step_gap_s
            and math.copysign(1.0, vals[moves[k + 1]] - vals[moves[k + 1] - 1]) == sign
        ):
            k += 1
            last = moves[k]
        k += 1
        t0, t1 = float(secs[first]), float(secs[last])
        before, sd_b, _cov_b = step_mean(secs, vals, t0 - p.settle_window_s, t0)
        after, sd_a, cov_a = step_mean(secs, vals, t1, min(t1 + p.settle_window_s, hz))
        if math.isnan(before) or math.isnan(after) or cov_a <= 0:
            continue
        change = after - before
        if abs(change) < p.min_change_pct or math.copysign(1.0, change) != sign:
            continue
        flags = ["short_settle"] if cov_a < p.settle_window_s else []
        silence = float(secs[first] - secs[first - 1])
        if silence > p.silence_s:
            if change > 0 and change / (silence / 3600.0) <= p.slow_fill_pct_per_h:
                continue
            flags.append("across_silence")
        noise = math.sqrt((sd_b**2 + sd_a**2) / 2.0) + p.resolution_pct
        confidence = 1.0 - math.exp(-abs(change) / noise / 10.0)
        if "across_silence" in flags:
            confidence *= p.silence_factor
        events.append(
            Event(
                event_type="clean_water_draw" if change < 0 else "clean_water_refill",
                processor=PROCESSOR_NAME,
                item_id=CLEAN_WATER_ITEM,
                start=from_epoch_seconds(t0),
                end=from_epoch_seconds(t1),
                confidence=confidence,
                metadata={
                    "level_before": round(before, 3),
                    "level_after": round(after, 3),
                    "delta": round(change, 3),
                    "duration_s": round(t1 - t0, 1),
                    "noise_sd": round(noise, 4),
                    "readings_used": int(
                        np.count_nonzero(
                            (secs >= t0 - p.settle_window_s) & (secs <= t1 + p.settle_window_s)
                        )
                    ),
                    "flags": flags,
                },
            )
        )
    return events


CLEAN_WATER = Processor(
    name=PROCESSOR_NAME,
    items=(CLEAN_WATER_ITEM,),
    event_types=("clean_water_draw", "clean_water_refill"),
    # the start depends on the move before it (one reading) and the settle minute; a step
    # lasts < 1 min in 2018: 5 min either side is ample.
    lookback=timedelta(minutes=5),
    lookahead=timedelta(minutes=5),
    params=WaterParams(),
    detect_fn=detect_water,
    description="Clean-water tank draws and refills from NODE3000009",
)
