"""Toilet uses and bulk transfers in the urine tank (`NODE3000005`).

What the data look like (../shared/data/iss/issp-2023, 2023-09-18/19, and DESIGN.md 2):
integer percent, sent only on change; the value flips between two neighbouring integers for
minutes at a time; while the UPA processes (NODE3000004 = 16) it drains 1 % every 4-5 min; a
use climbs +2..+5 % at about 1 % every 5 s (one slow one took 90 s: 5 -> 8 at 02:10-02:11);
a bulk transfer climbs +12..+60 % at about 1 % every 3-4 s.

Algorithm (every step local in time, so a rise gets the same start from any window that
sees it with the processor's look-back/look-ahead):

1. Collapse repeats (a re-sent identical value, e.g. a reconnect snapshot, is no change).
   The first reading of the frame is the carried-forward value: it is never a change.
2. A reading is a *new high* when it is above the previous reading and above every reading
   of the last `max_step_gap_s`. Flips between v and v+1 make a new high only when v+1 has
   been absent that long. New highs less than `max_step_gap_s` apart form a *climb*; a
   climb is cut at a pause longer than `split_gap_s` once the part before it rose
   `min_rise_pct` (two uses in a row are two events).
3. The climb starts after the last reading at its lowest level (a new high that fell back
   was a flip), walked back over an immediately preceding quick increasing run (a use that
   begins with what looked like a flip). base = the value before the start,
   peak = the climb's last new high. Climbs with peak - base < `min_rise_pct` are dropped.
4. The rise must *hold*: the time-weighted mean level over `hold_window_s` after the peak,
   minus the mean over `baseline_window_s` before the start (plus the drain the UPA would
   have caused in between, when it is processing) must reach `min_settled_rise_pct`. Two
   levels flipping between v and v+1 can never differ by more than 1 in this measure.
5. Classify: settled rise above `max_use_rise_pct` is a `bulk_transfer`, else `urination`.
6. A climb still rising when the signal was lost (LOS or heartbeat silence) continues after
   it: the higher value seen when the signal returns is its remainder, not a new event (the
   earlier event gets the flag `continued_across_silence`).

Flags: `los` (a LOS overlaps the event or its baseline/hold), `data_gap` (TIME_000001 went
silent for more than `heartbeat_gap_s`), `rise_across_silence` (the first step was already
>= `min_rise_pct` after `silence_s` of silence: the rise itself was not seen, its start is
the first reading after the silence), `short_hold` (less than `hold_window_s` of data after
the peak).

Confidence: how far the settled rise stands above what flips alone can produce (1 %),
in units of the flip noise (time-weighted s.d. of the level before and after, plus the
quantisation floor), mapped to 0..1 by 1 - exp(-z), then multiplied by a factor per flag.
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
    value_at,
)
from peebot_dagster.detectors.signal import SIGNAL_ITEM, LosInterval, SignalParams, los_intervals
from peebot_dagster.detectors.upa import PROCESSING as UPA_PROCESSING
from peebot_dagster.detectors.upa import TANK_ITEM, UPA_ITEM

PROCESSOR_NAME = "urine_tank"
# 1 % of the tank is about 80 mL (DESIGN.md section 2, secondhand)
ML_PER_PCT = 80.0


@dataclass(frozen=True)
class UrineParams:
    # Smallest rise (peak - base, integer %) worth a look: DESIGN.md says uses are +2..+4.
    min_rise_pct: float = 2.0
    # Settled rise (mean after - mean before, plus the drain correction) needed to report.
    # Two levels flipping between v and v+1 yield <= 1.0 (+ <= 0.25 drain correction). A
    # true +2 use can measure ~1.45: the flipping level before averages to the true level,
    # the held level after reads the rounded one (seen in the simulator, seed 11, 07:28).
    # The 2023 uses measure 2.2-5.3.
    min_settled_rise_pct: float = 1.3
    # New highs closer than this form one climb. Uses step every ~5 s, transfers every
    # 3-4 s; the slow 2023 use (02:10) had 36 s and 53 s between steps.
    max_step_gap_s: float = 60.0
    # A pause longer than this between steps ends a climb once the part before it rose
    # min_rise_pct: uses step every 4.5-5.5 s, so two uses 40 s apart are two events, while
    # the slow 2023 use (+1 steps 36 s and 53 s apart) stays one.
    split_gap_s: float = 20.0
    # Walk the start back over a preceding increasing run with steps at most this far apart
    # (a use climbs ~1 % / 5 s, so 20 s is four use steps).
    walkback_step_s: float = 20.0
    # Level before: time-weighted mean over this long before the start. Flips last seconds,
    # a drain step 4-5 min: one minute averages flips without drifting much.
    baseline_window_s: float = 60.0
    # Level after: mean over this long after the peak ("the level holds").
    hold_window_s: float = 60.0
    # Less data than this after the peak (end of a recording) and the hold is unconfirmed.
    min_hold_s: float = 20.0
    # Above this settled rise it is a bulk transfer. Uses: +2..+5 in 2023; the smallest
    # pumped rise there was +12 (23:39), transfers +30..+60 (07:15 was +59).
    max_use_rise_pct: float = 8.0
    # Drain while the UPA processes: 1 % per 4-5 min in 2023 (state 16) = 0.22 %/min.
    drain_pct_per_min: float = 0.22
    # A first step of >= min_rise_pct after a silence this long is a rise seen only across
    # the silence (its start is unknown). The tank sends at least every 4-5 min while it
    # drains; 5 min of silence with a jump means missed readings.
    silence_s: float = 300.0
    # TIME_000001 ticks ~1 s with signal; a gap longer than this inside an event is a data gap.
    heartbeat_gap_s: float = 10.0
    # 1 % ~ 80 mL (DESIGN.md section 2, secondhand).
    ml_per_pct: float = ML_PER_PCT
    # Noise floor of an integer reading: the s.d. of rounding, 1/sqrt(12).
    quantisation_sd: float = 1.0 / math.sqrt(12.0)
    # Confidence factors for each flag.
    los_factor: float = 0.5
    data_gap_factor: float = 0.7
    silence_factor: float = 0.3
    short_hold_factor: float = 0.7


@dataclass(frozen=True)
class Climb:
    start: int  # index of the first reading of the rise
    peak: int  # index of the last new high
    base: float  # value before the start
    peak_value: float


def find_climbs(secs: np.ndarray, vals: np.ndarray, p: UrineParams) -> list[Climb]:
    """Climbs of new highs (see the module doc), on repeat-free readings."""
    n = secs.size
    highs: list[int] = []
    lo = 0
    for i in range(1, n):
        while secs[lo] <= secs[i] - p.max_step_gap_s:
            lo += 1
        if vals[i] <= vals[i - 1]:
            continue
        recent = vals[lo:i]
        if recent.size == 0 or vals[i] > recent.max():
            highs.append(i)
    climbs: list[Climb] = []
    for group in _split_chain(_chains(highs, secs, p.max_step_gap_s), secs, vals, p):
        first, last = group[0], group[-1]
        # a new high that fell back to the level it rose from was a flip: the rise starts
        # after the last reading at the lowest level seen since just before the climb
        seg = vals[first - 1 : last + 1]
        low_at = first - 1 + int(np.flatnonzero(seg == seg.min())[-1])
        s = low_at + 1
        while (
            s - 1 >= 1 and vals[s - 1] > vals[s - 2] and secs[s] - secs[s - 1] <= p.walkback_step_s
        ):
            s -= 1
        climbs.append(Climb(s, last, float(vals[s - 1]), float(vals[last])))
    return climbs


def _chains(highs: list[int], secs: np.ndarray, gap_s: float) -> list[list[int]]:
    """New highs grouped into chains whose links are at most gap_s apart."""
    chains: list[list[int]] = []
    for h in highs:
        if chains and secs[h] - secs[chains[-1][-1]] <= gap_s:
            chains[-1].append(h)
        else:
            chains.append([h])
    return chains


def _split_chain(
    chains: list[list[int]], secs: np.ndarray, vals: np.ndarray, p: UrineParams
) -> list[list[int]]:
    """Cut chains at pauses longer than split_gap_s, but only where the part before the
    pause already rose min_rise_pct (leftovers join the previous part)."""
    out: list[list[int]] = []
    for chain in chains:
        parts: list[list[int]] = [[chain[0]]]
        for h in chain[1:]:
            if secs[h] - secs[parts[-1][-1]] > p.split_gap_s:
                parts.append([h])
            else:
                parts[-1].append(h)
        groups: list[list[int]] = []
        current: list[int] = []
        for part in parts:
            current += part
            if vals[current[-1]] - vals[current[0] - 1] >= p.min_rise_pct:
                groups.append(current)
                current = []
        if current:
            if groups:
                groups[-1] += current
            else:
                groups.append(current)
        out += groups
    return out


def _upa_state_at(frame: pd.DataFrame, t: float) -> int | None:
    secs, vals = item_series(frame, UPA_ITEM)
    v = value_at(secs, vals, t)
    return None if math.isnan(v) else int(v)


def _signal_lost_after(
    frame: pd.DataFrame, los: list[LosInterval], t: float, p: UrineParams
) -> bool:
    """Whether the signal was lost (LOS, or a heartbeat gap) within max_step_gap_s after t."""
    hi = t + p.max_step_gap_s
    if any(t <= iv.start <= hi for iv in los):
        return True
    secs, _ = item_series(frame, SIGNAL_ITEM)
    if secs.size < 2:
        return False
    # heartbeat silences that begin between just before t and hi
    i = int(np.searchsorted(secs, t - p.heartbeat_gap_s, side="left"))
    j = int(np.searchsorted(secs, hi, side="right"))
    gaps = np.diff(secs[i : j + 1])
    return bool(gaps.size and gaps.max() > p.silence_s)


def _heartbeat_gaps(frame: pd.DataFrame, lo: float, hi: float, gap_s: float) -> float:
    """Longest TIME_000001 silence overlapping [lo, hi]; 0 when there is no heartbeat."""
    secs, _ = item_series(frame, SIGNAL_ITEM)
    if secs.size < 2:
        return 0.0
    gaps = np.diff(secs)
    overlap = (secs[1:] > lo) & (secs[:-1] < hi) & (gaps > gap_s)
    return float(gaps[overlap].max()) if overlap.any() else 0.0


def detect_urine(
    frame: pd.DataFrame, params: UrineParams, horizon: datetime | None = None
) -> list[Event]:
    p = params
    raw_t, raw_v = item_series(frame, TANK_ITEM)
    secs, vals = drop_repeats(raw_t, raw_v)
    if secs.size < 2:
        return []
    hz = horizon_seconds(frame, horizon)
    los = los_intervals(frame, SignalParams(stale_after_s=p.heartbeat_gap_s), None)
    events: list[Event] = []
    previous: tuple[Climb, Event | None] | None = None
    for c in find_climbs(secs, vals, p):
        prior, previous = previous, (c, None)
        if c.peak_value - c.base < p.min_rise_pct:
            continue
        silence_before = float(secs[c.start] - secs[c.start - 1])
        if (
            prior is not None
            and prior[0].peak == c.start - 1
            and _signal_lost_after(frame, los, float(secs[c.start - 1]), p)
        ):
            # the signal was lost while the previous climb was still rising: this is its
            # unseen remainder, not a new event
            if prior[1] is not None:
                prior[1].metadata["flags"].append("continued_across_silence")
                prior[1].metadata["level_after_silence"] = c.peak_value
            continue
        t0, t1 = float(secs[c.start]), float(secs[c.peak])
        before, sd_before, cov_before = step_mean(secs, vals, t0 - p.baseline_window_s, t0)
        hold_end = min(t1 + p.hold_window_s, hz)
        after, sd_after, cov_after = step_mean(secs, vals, t1, hold_end)
        if cov_after < p.min_hold_s or math.isnan(before) or math.isnan(after):
            continue
        upa = _upa_state_at(frame, t0)
        drain = 0.0
        if upa == UPA_PROCESSING:
            centre_before = t0 - cov_before / 2.0
            centre_after = t1 + cov_after / 2.0
            drain = p.drain_pct_per_min * (centre_after - centre_before) / 60.0
        settled = after - before + drain
        if settled < p.min_settled_rise_pct:
            continue

        flags: list[str] = []
        first_step = float(vals[c.start] - vals[c.start - 1])
        if silence_before > p.silence_s and first_step >= p.min_rise_pct:
            flags.append("rise_across_silence")
        span_lo, span_hi = t0 - p.baseline_window_s, hold_end
        if any(
            (iv.end is None or iv.end > span_lo) and iv.start < span_hi and iv.reason != "stale"
            for iv in los
        ):
            flags.append("los")
        gap = _heartbeat_gaps(frame, span_lo, span_hi, p.heartbeat_gap_s)
        if gap > 0:
            flags.append("data_gap")
        if cov_after < p.hold_window_s:
            flags.append("short_hold")

        noise = math.sqrt((sd_before**2 + sd_after**2) / 2.0) + p.quantisation_sd
        z = max(settled - 1.0, 0.0) / noise
        confidence = 1.0 - math.exp(-z)
        for flag, factor in (
            ("los", p.los_factor),
            ("data_gap", p.data_gap_factor),
            ("rise_across_silence", p.silence_factor),
            ("short_hold", p.short_hold_factor),
        ):
            if flag in flags:
                confidence *= factor
        kind = "bulk_transfer" if settled > p.max_use_rise_pct else "urination"
        used = int(np.count_nonzero((raw_t >= t0 - p.baseline_window_s) & (raw_t < hold_end)))
        event = Event(
            event_type=kind,
            processor=PROCESSOR_NAME,
            item_id=TANK_ITEM,
            start=from_epoch_seconds(t0),
            end=from_epoch_seconds(t1),
            confidence=min(max(confidence, 0.0), 1.0),
            metadata={
                "level_before": round(before, 2),
                "level_after": round(after, 2),
                "delta": round(settled, 2),
                "step_before": c.base,
                "step_peak": c.peak_value,
                "step_delta": c.peak_value - c.base,
                "volume_ml": round(settled * p.ml_per_pct),
                "duration_s": round(t1 - t0, 1),
                "rate_s_per_pct": round((t1 - t0) / max(c.peak_value - c.base, 1.0), 1),
                "noise_sd": round(noise, 3),
                "drain_correction": round(drain, 2),
                "upa_state": upa,
                "silence_before_s": round(silence_before, 1),
                "max_heartbeat_gap_s": round(gap, 1),
                "readings_used": used,
                "flags": flags,
            },
        )
        events.append(event)
        previous = (c, event)
    return events


URINE_TANK = Processor(
    name=PROCESSOR_NAME,
    items=(TANK_ITEM, UPA_ITEM, SIGNAL_ITEM),
    event_types=("urination", "bulk_transfer"),
    # A start is decided from new highs up to 2 x max_step_gap back, the walk-back and the
    # baseline minute (~4 min); 30 min also shows the climb a LOS of up to 20 min (the ISS
    # LOS length the simulator models) interrupted, so its remainder is not a new event.
    # A transfer climbs for up to ~5 min, then the hold minute: 15 min ahead.
    lookback=timedelta(minutes=30),
    lookahead=timedelta(minutes=15),
    params=UrineParams(),
    detect_fn=detect_urine,
    description="Toilet uses and bulk transfers from the urine tank level (NODE3000005)",
)
