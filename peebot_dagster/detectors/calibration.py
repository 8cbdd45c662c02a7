"""Confidence that means something: the detector's raw score mapped to how often an event
with that score was right on the simulated days.

The urine detector computes a raw score in 0..1 (how far the settled rise stands above what
flips alone make, in units of the noise, times a factor per flag; urine.py). The raw score
orders events well but its value is not a frequency. `calibrated_confidence` maps it through
`RAW_POINTS`, an increasing piecewise-linear curve fitted by isotonic regression (pooled
adjacent violators, `fit_isotonic`, plain numpy) of "the event was right" on the raw score.

"Right" is what a post needs (bench/detection.py, `says_it_right`): the event matches a
simulated use or transfer of its kind, starts within 60 s of it, and its size is within
max(1.5 %, 25 %) of the true one. A use hidden by a loss of signal is found when the signal
returns but minutes late; two uses in a row read as one twice the size: found, not right.

How it was fitted: `uv run python bench/detection.py --skip-real --fit-calibration` runs the
simulated days of the bench (plain, with the patterns of issue 16, noise alone, stress),
fits on the events of the even-numbered days, prints a reliability table of the odd days
as the held-out check, and prints the points pasted below. Each pooled block counts one
pseudo right and one pseudo wrong event (Laplace), so a block of few events never claims 0
or 1. Refit when the detector or the simulator changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# (raw score, fraction true) at the lowest and highest raw score of each pooled block; fitted
# by bench/detection.py --fit-calibration on the even simulated days (see the module doc).
# Fitted on 226 events of 20 even days (of 40), 11 of them wrong; checked on 119 events of
# the 20 odd days: 115 at 0.99 all right, 3 at 0.10-0.18 (1 right), 1 at 0.58 (wrong).
RAW_POINTS: tuple[tuple[float, float], ...] = (
    (0.1017, 0.1000),
    (0.1050, 0.1000),
    (0.6846, 0.3333),
    (0.7441, 0.9909),
    (1.0000, 0.9909),
)


def fit_isotonic(raw: np.ndarray, true: np.ndarray) -> list[tuple[float, float]]:
    """Increasing fit of `true` (0/1) on `raw` by pooled adjacent violators. Each pooled
    block gives its smoothed fraction true at its lowest and its highest raw score (one point
    when they are equal); `calibrated_confidence` is linear between blocks."""
    if raw.size == 0:
        return [(0.0, 0.0), (1.0, 1.0)]
    order = np.argsort(raw, kind="stable")
    xs = raw[order].astype(float).tolist()
    ys = true[order].astype(float).tolist()
    # blocks: [lowest raw, highest raw, sum of true, count]; equal raw scores share a block
    blocks: list[list[float]] = []
    for x, y in zip(xs, ys, strict=True):
        if blocks and blocks[-1][1] == x:
            blocks[-1][2] += y
            blocks[-1][3] += 1
        else:
            blocks.append([x, x, y, 1.0])
        while len(blocks) >= 2 and _rate(blocks[-2]) >= _rate(blocks[-1]):
            last = blocks.pop()
            blocks[-1][1] = last[1]
            blocks[-1][2] += last[2]
            blocks[-1][3] += last[3]
    points: list[tuple[float, float]] = []
    for block in blocks:
        lo, hi, rate = block[0], block[1], _rate(block)
        points.append((lo, rate))
        if hi > lo:
            points.append((hi, rate))
    return points


def _rate(block: Sequence[float]) -> float:
    """Fraction true of a block with one pseudo true and one pseudo false event."""
    return (block[2] + 1.0) / (block[3] + 2.0)


def calibrated_confidence(raw: float, points: Sequence[tuple[float, float]] = RAW_POINTS) -> float:
    """The fraction true that `points` gives a raw score (linear between points, flat
    beyond the first and the last)."""
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    return float(min(max(np.interp(raw, xs, ys), 0.0), 1.0))
