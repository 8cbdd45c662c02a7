"""Robust levels of an integer step signal (a value holds until the next reading).

The urine tank reports integer percent and its sensor flips between neighbouring integers
for minutes at a time; now and then one reading drops below that flip band and comes back
(issue 16: 41/42 flipping, one 40, flipping again). A level judged from one reading moves
with such a sample. These functions judge levels from the time each value was in force:

- `occupancy`: seconds each value was in force over a span;
- `robust_level`: the flip band (the dominant value plus the neighbouring values held for a
  real share of the span) and the time-weighted mean of the values clipped into that band,
  so a short excursion outside the band moves the level by nothing;
- `one_sample_dips`: readings that are a single short sample below every reading around
  them (dropped before a detector looks for rises).

Pure functions on numpy arrays (epoch seconds, values), repeat-free and in time order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Level:
    """A robust level over a span: the flip band and the mean inside it."""

    mean: float  # time-weighted mean of the values clipped into [band_low, band_high]
    sd: float  # time-weighted s.d. of the clipped values
    dominant: float  # the value in force longest
    band_low: float
    band_high: float
    covered_s: float  # seconds of the span some reading covers
    outside_s: float  # seconds spent outside the band (clipped away)


def occupancy(
    secs: np.ndarray, vals: np.ndarray, lo: float, hi: float
) -> tuple[np.ndarray, np.ndarray]:
    """(values, seconds in force) over [lo, hi), values ascending. Before the first reading
    nothing is known: that part of the span is not covered."""
    if hi <= lo or secs.size == 0:
        return np.empty(0), np.empty(0)
    i0 = int(np.searchsorted(secs, lo, side="right")) - 1  # reading in force at lo
    i1 = int(np.searchsorted(secs, hi, side="left"))
    if i0 < 0:
        i0 = 0
        lo = max(lo, float(secs[0]))
        if hi <= lo:
            return np.empty(0), np.empty(0)
    seg_t = secs[i0:i1]
    seg_v = vals[i0:i1]
    if seg_t.size == 0:
        return np.empty(0), np.empty(0)
    starts = np.maximum(seg_t, lo)
    ends = np.minimum(np.append(seg_t[1:], hi), hi)
    w = np.clip(ends - starts, 0.0, None)
    values, inverse = np.unique(seg_v, return_inverse=True)
    seconds = np.bincount(inverse, weights=w, minlength=values.size)
    return values, seconds


def flip_band(values: np.ndarray, seconds: np.ndarray, min_share: float) -> tuple[float, float]:
    """The dominant value widened by each neighbouring integer (one at a time, outwards) held
    for at least `min_share` of the covered time. Values beyond a gap do not join."""
    total = float(seconds.sum())
    dominant_at = int(np.argmax(seconds))
    low = high = float(values[dominant_at])
    share = dict(zip(values.tolist(), (seconds / total).tolist(), strict=True))
    while share.get(low - 1.0, 0.0) >= min_share:
        low -= 1.0
    while share.get(high + 1.0, 0.0) >= min_share:
        high += 1.0
    return low, high


def robust_level(
    secs: np.ndarray, vals: np.ndarray, lo: float, hi: float, min_share: float
) -> Level | None:
    """The robust level over [lo, hi) (see the module doc); None when nothing covers it."""
    values, seconds = occupancy(secs, vals, lo, hi)
    total = float(seconds.sum()) if seconds.size else 0.0
    if total <= 0.0:
        return None
    low, high = flip_band(values, seconds, min_share)
    clipped = np.clip(values, low, high)
    mean = float(np.dot(seconds, clipped) / total)
    var = float(np.dot(seconds, (clipped - mean) ** 2) / total)
    outside = float(seconds[(values < low) | (values > high)].sum())
    return Level(
        mean=mean,
        sd=math.sqrt(max(var, 0.0)),
        dominant=float(values[int(np.argmax(seconds))]),
        band_low=low,
        band_high=high,
        covered_s=total,
        outside_s=outside,
    )


def one_sample_dips(
    secs: np.ndarray, vals: np.ndarray, max_dwell_s: float, context_s: float
) -> np.ndarray:
    """Mask of readings that are a one-sample dip: a single reading, in force at most
    `max_dwell_s`, strictly below every other reading in force within `context_s` either
    side of it (the band the level flips in around it). A flip to the lower value of a
    flip band is not a dip (that value recurs nearby); 41/42 flipping with one 40 is. The
    first and the last reading are never dips (what came before, or after, is unknown)."""
    n = secs.size
    mask = np.zeros(n, dtype=bool)
    if n < 3:
        return mask
    dwell = np.diff(secs)
    inner = np.arange(1, n - 1)
    candidates = inner[
        (dwell[inner] <= max_dwell_s)
        & (vals[inner] < vals[inner - 1])
        & (vals[inner] < vals[inner + 1])
    ]
    for i in candidates.tolist():
        # readings in force in [t - context, t) and in [t_next, t_next + context]
        lo = max(int(np.searchsorted(secs, secs[i] - context_s, side="right")) - 1, 0)
        hi = int(np.searchsorted(secs, secs[i + 1] + context_s, side="right"))
        others = np.concatenate([vals[lo:i], vals[i + 1 : hi]])
        mask[i] = bool(vals[i] < others.min())
    return mask
