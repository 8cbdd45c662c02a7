"""Toilet uses and bulk transfers in the urine tank (`NODE3000005`).

What the data look like (../shared/data/iss/issp-2023, 2023-09-18/19, and the recording of
issue 16): integer percent, sent only on change; the value flips between two neighbouring
integers for minutes at a time, and now and then one reading drops below that band and
comes back; while the UPA processes (NODE3000004 = 16) it drains 1 % every
4-5 min; a use climbs +2..+5 % at about 1 % every 5 s; right after a UPA stop the level can
climb slowly in single-percent steps inside the flips (2023 02:10: 5 -> 8 in 90 s); a bulk
transfer climbs +12..+60 % at about 1 % every 3-4 s.

Algorithm (every step local in time, so a rise gets the same start from any window that
sees it with the processor's look-back/look-ahead):

1. Collapse repeats (a re-sent identical value, e.g. a reconnect snapshot, is no change).
   The first reading of the frame is the carried-forward value: it is never a change.
   Drop one-sample dips (`levels.one_sample_dips`: a single reading held at most
   `dip_max_s`, below every reading within `dip_context_s` of it).
2. A reading is a *new high* when it is above the previous reading and above every reading
   of the last `max_step_gap_s`. Flips between v and v+1 make a new high only when v+1 has
   been absent that long. New highs less than `max_step_gap_s` apart form a *climb*. The
   slow path: a climb that has not risen `min_rise_pct` yet goes on with the next one if it
   starts within `slow_step_gap_s`, the level held in between, and the next one does not
   rise `min_rise_pct` on its own (that is a use of its own, not a slow step; one whose hold
   the data do not show yet is not joined yet). A climb is cut at a pause
   longer than `split_gap_s` and `split_pace_ratio` times its steps once the part before
   rose `min_rise_pct` (two uses in a row are two events; a slow rise stays one).
3. The climb starts after the last reading at its lowest level (a new high that fell back
   was a flip), walked back over an immediately preceding quick increasing run (a use that
   begins with what looked like a flip); peak = the climb's last new high.
4. The baseline no single sample can move (`levels.robust_level`): over `baseline_window_s`
   before the start (never reaching back past the previous event's peak), the flip band is
   the dominant value and its neighbours held at least `band_min_share` of the time, and
   the level is the time-weighted mean of the values clipped into that band. The rise is
   peak - lower edge of the band; below `min_rise_pct` the climb is dropped. Flips between
   v and v+1 (dips removed) can never rise 2 by this measure.
5. The rise must *hold*: the robust level over `hold_window_s` after the peak, minus the
   robust level before (plus the drain the UPA would have caused in between, when it is
   processing) must reach `min_settled_rise_pct`. A climb slower than
   `slow_pace_s_per_pct` must also leave its band: the band after starts above the band
   before.
6. Classify: settled rise above `max_use_rise_pct` is a `bulk_transfer`, else `urination`.
7. A climb still rising when the signal was lost (LOS or heartbeat silence) continues after
   it: the higher value seen when the signal returns is its remainder, not a new event (the
   earlier event gets the flag `continued_across_silence`).

Flags: `los` (a LOS overlaps the event or its baseline/hold), `data_gap` (TIME_000001 went
silent for more than `heartbeat_gap_s`), `rise_across_silence` (the first step was already
>= `min_rise_pct` after `silence_s` of silence: the rise itself was not seen, its start is
the first reading after the silence), `short_hold` (less than `hold_window_s` of data after
the peak), `slow_rise` (the slow path of step 5).

Confidence: the raw score is how far the settled rise stands above what flips alone can
produce (1 %), in units of the flip noise (time-weighted s.d. of the robust levels before
and after, plus the quantisation floor), mapped to 0..1 by 1 - exp(-z), times a factor per
flag (`metadata["raw_score"]`). The confidence is the raw score calibrated on the simulated
days (`calibration.py`): the fraction of events with that raw score that were right. A
provisional use (`short_hold`, what the live pass stores before the full hold) is weighed by
`short_hold_factor`, fitted on the provisional looks of the simulated days
(bench/detection.py): a clear one posts after min_hold_s, a doubtful one waits for the full
hold (`metadata["hold_s"]` says how much hold the event has seen).
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
    value_at,
)
from peebot_dagster.detectors.calibration import calibrated_confidence
from peebot_dagster.detectors.levels import one_sample_dips, robust_level
from peebot_dagster.detectors.signal import SIGNAL_ITEM, LosInterval, SignalParams, los_intervals
from peebot_dagster.detectors.upa import PROCESSING as UPA_PROCESSING
from peebot_dagster.detectors.upa import TANK_ITEM, UPA_ITEM

PROCESSOR_NAME = "urine_tank"
# 1 % of the tank is about 80 mL (a secondhand figure, good enough for a joke)
ML_PER_PCT = 80.0


@dataclass(frozen=True)
class UrineParams:
    """Every threshold of the urine detector, with the evidence for its value (the 2023
    recording in ../shared/data/iss/issp-2023, the recording of issue 16, the simulator's
    physical model in peebot_sim/urine.py)."""

    min_rise_pct: float = 2.0
    """Smallest rise worth a look: peak minus the lower edge of the flip band before it
    (integer %). Uses are +2..+5 (2023 recording); flips alone span one step."""

    min_settled_rise_pct: float = 1.3
    """Settled rise (robust level after - robust level before, plus the drain correction)
    needed to report. Two levels flipping between v and v+1 yield <= 1.0. A true +2 use can
    measure ~1.45: the flipping level before averages to the true level, the held level
    after reads the rounded one (simulator, seed 11, 07:28). The 2023 uses measure 2.2-5.3."""

    max_step_gap_s: float = 60.0
    """New highs closer than this form one climb. Uses step every ~5 s, transfers every
    3-4 s; the slow 2023 use (02:10) had 36 s and 53 s between steps."""

    split_gap_s: float = 20.0
    """A pause longer than this between steps ends a climb once the part before it rose
    min_rise_pct at use pace: uses step every 4.5-5.5 s, so two uses 40 s apart are two
    events, while a slow rise (every step a pause: 2023 02:10, +1 steps 36 s and 53 s apart)
    stays one."""

    split_pace_ratio: float = 2.0
    """...and longer than this many times the mean step before it: a use steps every 5 s and
    pauses 20 s or more before the next use; a slow rise pauses as long as it steps (a rise
    of 15 s per % read 5, 6, 7, 8 with 12 s, 21 s and 19 s between steps)."""

    walkback_step_s: float = 20.0
    """Walk the start back over a preceding increasing run with steps at most this far
    apart (a use climbs ~1 % / 5 s, so 20 s is four use steps)."""

    baseline_window_s: float = 90.0
    """The level before a rise is judged over this long before its start (never reaching
    back past the previous event's peak). Flips last seconds and a drain step 4-5 min: 90 s
    holds many flips, drifts <= 0.33 % while the UPA drains, and a 20-s dip is < 25 % of
    it. Longer lets a stale value win: 2023 23:30:17 rose from a 16 held 52 s after a 20
    held through a 21-min recorder gap."""

    band_min_share: float = 0.1
    """A neighbour of the dominant value joins the flip band when held at least this share
    of a window. Near a boundary flips share time evenly; a little away from it the lower
    value is rare but real: before a true +2 use (simulator seed 11, 07:28, level 34.45)
    34 held 19 % of the 90 s, 35 the rest, and the peak only reached 36. One-sample dips
    are removed before (dip_max_s), so they need not be kept out by this share.
    """

    dip_max_s: float = 20.0
    """A single reading below every other reading around it (dip_context_s), held at most
    this long, is a one-sample dip and is ignored (issue 16: 41/42 flipping, one 40,
    flipping again, was reported as a +2 use). 2023 flip readings hold 1-5 s, rarely 60."""

    dip_context_s: float = 60.0
    """How far either side of a reading the band it must fall below reaches: a minute holds
    many flips (2023: 41/42-style runs of 1-5 s readings) and less than one drain step."""

    hold_window_s: float = 60.0
    """Level after: robust level over this long after the peak ("the level holds")."""

    min_hold_s: float = 20.0
    """Less data than this after the peak (end of a recording) and the hold is unconfirmed."""

    slow_step_gap_s: float = 120.0
    """The slow path: a climb that has not yet risen min_rise_pct continues with a next
    step up to this long after its last one, if the level held in between. Issue 16: after
    a UPA stop, 14/15 flipping, 15, 16, then 16/17 flipping over about a minute (the first
    17 can come more than max_step_gap_s after the 16); 2023 02:10 stepped 36 s and 53 s
    apart. Twice the slowest step seen."""

    slow_pace_s_per_pct: float = 12.0
    """A climb slower than this (s per % of its rise) takes the slow path: single-percent
    steps inside flip noise, which drifting noise could fake, so the held level must also
    leave the band it rose from (band after starts above the band before). Uses climb at
    4.5-5.5 s/%; the slow rises after a UPA stop at 15-53 s/% (2023 02:10: 30 s/%)."""

    max_use_rise_pct: float = 8.0
    """Above this settled rise it is a bulk transfer. Uses: +2..+5 in 2023; the smallest
    pumped rise there was +12 (23:39), transfers +30..+60 (07:15 was +59)."""

    drain_pct_per_min: float = 0.22
    """Drain while the UPA processes: 1 % per 4-5 min in 2023 (state 16) = 0.22 %/min."""

    silence_s: float = 300.0
    """A first step of >= min_rise_pct after a silence this long is a rise seen only across
    the silence (its start is unknown). The tank sends at least every 4-5 min while it
    drains; 5 min of silence with a jump means missed readings."""

    heartbeat_gap_s: float = 10.0
    """TIME_000001 ticks ~1 s with signal; a gap longer than this in an event is a data gap."""

    ml_per_pct: float = ML_PER_PCT
    """1 % ~ 80 mL (a secondhand figure)."""

    quantisation_sd: float = 1.0 / math.sqrt(12.0)
    """Noise floor of an integer reading: the s.d. of rounding, 1/sqrt(12)."""

    los_factor: float = 0.5
    """Raw-score factor when a LOS overlaps the event (the rise was not watched)."""

    data_gap_factor: float = 0.7
    """Raw-score factor when the heartbeat went silent in the event."""

    silence_factor: float = 0.3
    """Raw-score factor for a rise seen only across a silence."""

    short_hold_factor: float = 0.9
    """Raw-score factor for a provisional use (`short_hold`: the live pass has seen at least
    min_hold_s but less than hold_window_s of level after the peak). Measured, not guessed:
    bench/detection.py re-detects every peak of the simulated days at peak + 20..56 s, as the
    live pass sees it, and fits this factor on the even days, checking it on the odd ones
    (section "provisional (live) events by hold so far"). Provisional looks are right as often
    as the full-hold events, whatever the hold so far (plain and pattern days: 0.972-0.973 in
    every 10-s bucket from 20 s, 0.972 with the full hold; 2023 recording: 9 of 9 right), and
    by raw score: every look with raw >= 0.80 was right except one that the full event gets
    wrong too (two uses 22 s apart read as one), while raw 0.40-0.80 (stress days: slow
    rises in heavy noise, the size not settled yet) was right only 55-80 % of the time.
    0.9 puts the floor's edge (calibrated 0.60 at raw 0.709) at raw 0.79: the least
    10 x posted wrong + waited right on the even days (1 wrong, 3 waited; 0.92 and above post
    a wrong stress use, 0.86 and below make more right uses wait); odd days: 106 posted at
    the first look (20 s), 0 wrong, 8 wait for the full hold (3 of them wrong). The 0.7 it
    replaces was a guess that kept every provisional use below the floor: all posts waited
    for the full minute of hold (bench/e2e.py: post p50 92 s against the event row's 43 s)."""


@dataclass(frozen=True)
class Climb:
    start: int  # index of the first reading of the rise
    peak: int  # index of the last new high
    base: float  # value before the start
    peak_value: float


def find_climbs(
    secs: np.ndarray, vals: np.ndarray, p: UrineParams, horizon: float = math.inf
) -> list[Climb]:
    """Climbs of new highs (see the module doc), on repeat-free readings complete up to
    `horizon` (epoch seconds)."""
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
    chains = _join_slow_chains(_chains(highs, secs, p.max_step_gap_s), secs, vals, p, horizon)
    for group in _split_chain(chains, secs, vals, p):
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


def _join_slow_chains(
    chains: list[list[int]], secs: np.ndarray, vals: np.ndarray, p: UrineParams, horizon: float
) -> list[list[int]]:
    """The slow path: a chain that has not yet risen min_rise_pct continues with the next
    chain when that starts within slow_step_gap_s and the level held in between (never
    fell more than one flip below the chain's peak): single-percent steps inside flip
    noise, further apart than max_step_gap_s.

    A next chain that itself rises min_rise_pct above the reading before it is a rise of
    its own and is never joined: a slow rise is made of single steps. Without this, a +2 use
    whose first step was already inside the flip band (55/56 flipping, then 56, 57: only +1
    above the reading before its first new high) swallowed the next use two minutes later
    into one slow event at its own start (the demo scenario `use@+6m:2,use@+8m:4`, seed 5,
    whenever the 56 that began it fell within max_step_gap_s of an earlier flip to 56).
    A next chain whose last new high is less than min_hold_s before the horizon is not
    joined yet: whether it is a rise of its own is not known, and a climb with so little
    hold is not judged anyway; joining it would make the chain before it vanish from a live
    window until the next chain is over (the demo: the first reading of the third use
    removed the second use for the 7 s until its next step)."""
    out: list[list[int]] = []
    for chain in chains:
        if out:
            prev = out[-1]
            gap = float(secs[chain[0]] - secs[prev[-1]])
            rose = float(vals[prev[-1]] - vals[prev[0] - 1])
            next_rose = float(vals[chain[-1]] - vals[chain[0] - 1])
            held = float(vals[prev[-1] : chain[0]].min()) >= float(vals[prev[-1]]) - 1.0
            over = float(secs[chain[-1]]) <= horizon - p.min_hold_s
            if (
                gap <= p.slow_step_gap_s
                and rose < p.min_rise_pct
                and next_rose < p.min_rise_pct
                and held
                and over
            ):
                prev.extend(chain)
                continue
        out.append(list(chain))
    return out


def _split_chain(
    chains: list[list[int]], secs: np.ndarray, vals: np.ndarray, p: UrineParams
) -> list[list[int]]:
    """Cut chains at pauses longer than split_gap_s (and split_pace_ratio times the steps
    before them), but only where the part before the pause already rose min_rise_pct
    (leftovers join the previous part)."""
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
        for k, part in enumerate(parts):
            current += part
            if k + 1 < len(parts):
                # a pause ends a climb only if it is long next to the steps before it: a
                # slow rise pauses about as long as it steps, and a lone step after a pause
                # is a slow step too (a single jump, e.g. across a silence, stands alone)
                pause = float(secs[parts[k + 1][0]] - secs[part[-1]])
                step = float(np.diff(secs[part]).mean()) if len(part) >= 2 else math.inf
                ends = pause > p.split_pace_ratio * step or len(current) == 1
            else:
                ends = True
            if ends and vals[current[-1]] - vals[current[0] - 1] >= p.min_rise_pct:
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
    dips = one_sample_dips(secs, vals, p.dip_max_s, p.dip_context_s)
    dip_times = secs[dips]
    secs, vals = drop_repeats(secs[~dips], vals[~dips])
    if secs.size < 2:
        return []
    hz = horizon_seconds(frame, horizon)
    los = los_intervals(frame, SignalParams(stale_after_s=p.heartbeat_gap_s), None)
    events: list[Event] = []
    previous: tuple[Climb, Event | None] | None = None
    previous_peak = -math.inf  # the peak of the last reported event: later baselines start there
    for c in find_climbs(secs, vals, p, hz):
        prior, previous = previous, (c, None)
        t0, t1 = float(secs[c.start]), float(secs[c.peak])
        before = robust_level(
            secs, vals, max(t0 - p.baseline_window_s, previous_peak), t0, p.band_min_share
        )
        if before is None or c.peak_value - before.band_low < p.min_rise_pct:
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
        hold_end = min(t1 + p.hold_window_s, hz)
        after = robust_level(secs, vals, t1, hold_end, p.band_min_share)
        if after is None or after.covered_s < p.min_hold_s:
            continue
        upa = _upa_state_at(frame, t0)
        drain = 0.0
        if upa == UPA_PROCESSING:
            centre_before = t0 - before.covered_s / 2.0
            centre_after = t1 + after.covered_s / 2.0
            drain = p.drain_pct_per_min * (centre_after - centre_before) / 60.0
        settled = after.mean - before.mean + drain
        if settled < p.min_settled_rise_pct:
            continue
        step_delta = c.peak_value - before.band_low
        pace = (t1 - t0) / step_delta
        slow = pace > p.slow_pace_s_per_pct
        if slow and after.band_low < before.band_high + 1.0:
            continue  # a slow rise must leave the flip band it rose from

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
        if after.covered_s < p.hold_window_s:
            flags.append("short_hold")
        if slow:
            flags.append("slow_rise")

        noise = math.sqrt((before.sd**2 + after.sd**2) / 2.0) + p.quantisation_sd
        z = max(settled - 1.0, 0.0) / noise
        raw = 1.0 - math.exp(-z)
        for flag, factor in (
            ("los", p.los_factor),
            ("data_gap", p.data_gap_factor),
            ("rise_across_silence", p.silence_factor),
            ("short_hold", p.short_hold_factor),
        ):
            if flag in flags:
                raw *= factor
        confidence = calibrated_confidence(raw)
        kind = "bulk_transfer" if settled > p.max_use_rise_pct else "urination"
        used = int(np.count_nonzero((raw_t >= t0 - p.baseline_window_s) & (raw_t < hold_end)))
        ignored = int(
            np.count_nonzero((dip_times >= t0 - p.baseline_window_s) & (dip_times < hold_end))
        )
        event = Event(
            event_type=kind,
            processor=PROCESSOR_NAME,
            item_id=TANK_ITEM,
            start=from_epoch_seconds(t0),
            end=from_epoch_seconds(t1),
            confidence=min(max(confidence, 0.0), 1.0),
            metadata={
                "level_before": round(before.mean, 2),
                "level_after": round(after.mean, 2),
                "delta": round(settled, 2),
                "band_before": [before.band_low, before.band_high],
                "band_after": [after.band_low, after.band_high],
                "step_before": before.band_low,
                "step_peak": c.peak_value,
                "step_delta": step_delta,
                "volume_ml": round(settled * p.ml_per_pct),
                "duration_s": round(t1 - t0, 1),
                "rate_s_per_pct": round(pace, 1),
                "noise_sd": round(noise, 3),
                "raw_score": round(raw, 4),
                "hold_s": round(hold_end - t1, 1),
                "drain_correction": round(drain, 2),
                "upa_state": upa,
                "silence_before_s": round(silence_before, 1),
                "max_heartbeat_gap_s": round(gap, 1),
                "readings_used": used,
                "dips_ignored": ignored,
                "flags": flags,
            },
        )
        events.append(event)
        previous = (c, event)
        previous_peak = t1
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
