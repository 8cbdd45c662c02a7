"""Robust levels of a step signal (peebot_dagster/detectors/levels.py)."""

from __future__ import annotations

import numpy as np
import pytest

from peebot_dagster.detectors.levels import (
    flip_band,
    occupancy,
    one_sample_dips,
    robust_level,
)


def arrays(points: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    secs, vals = zip(*points, strict=True)
    return np.array(secs, dtype=float), np.array(vals, dtype=float)


def test_occupancy_carries_each_value_until_the_next_reading() -> None:
    secs, vals = arrays([(0, 41), (10, 42), (12, 41), (30, 42)])
    values, seconds = occupancy(secs, vals, 5, 40)
    assert values.tolist() == [41, 42]
    assert seconds.tolist() == [5 + 18, 2 + 10]
    # before the first reading nothing is known
    values, seconds = occupancy(secs, vals, -50, 10)
    assert values.tolist() == [41] and seconds.tolist() == [10]
    assert occupancy(secs, vals, -50, -10)[0].size == 0


def test_flip_band_grows_from_the_dominant_value_over_neighbours_held_long_enough() -> None:
    values = np.array([40.0, 41, 42, 44])
    seconds = np.array([5.0, 50, 30, 15])  # 44 is as long as 40 but not a neighbour
    assert flip_band(values, seconds, 0.1) == (41, 42)
    assert flip_band(values, seconds, 0.04) == (40, 42)
    assert flip_band(values, seconds, 0.5) == (41, 41)


def test_a_short_excursion_outside_the_band_does_not_move_the_level() -> None:
    flipping = [(0, 41), (4, 42), (9, 41), (15, 42), (20, 41), (30, 42), (40, 41), (50, 42)]
    with_dip = [*flipping[:5], (26, 40), (30, 42), (40, 41), (50, 42)]
    clean = robust_level(*arrays(flipping), 0, 60, 0.1)
    dipped = robust_level(*arrays(with_dip), 0, 60, 0.1)
    assert clean is not None and dipped is not None
    assert (dipped.band_low, dipped.band_high) == (41, 42)
    assert dipped.outside_s == 4
    # the 4 s at 40 count as 41, the lowest value of the band: the level is unchanged
    assert clean.mean == pytest.approx(41.5)
    assert dipped.mean == pytest.approx(41.5)
    assert robust_level(*arrays(flipping), 100, 100, 0.1) is None


def test_one_sample_dips_are_single_short_readings_below_everything_around() -> None:
    # 41/42 flipping, one 40 for 6 s, flipping again (issue 16)
    points = [(0, 41), (5, 42), (9, 41), (20, 42), (24, 41), (30, 40), (36, 41), (40, 42)]
    points += [(44, 41), (60, 42), (66, 41)]
    secs, vals = arrays(points)
    mask = one_sample_dips(secs, vals, max_dwell_s=20, context_s=60)
    assert vals[mask].tolist() == [40]
    # the lower value of a flip band is not a dip: it recurs around it
    assert not one_sample_dips(
        *arrays([(0, 42), (3, 41), (5, 42), (20, 41), (24, 42)]), 20, 60
    ).any()
    # held longer than a sample: a level, not a dip
    long_dip = [(0, 41), (5, 42), (9, 41), (30, 40), (60, 41), (64, 42)]
    assert not one_sample_dips(*arrays(long_dip), 20, 60).any()
    # the first and the last reading are never dips
    assert not one_sample_dips(*arrays([(0, 40), (5, 42), (9, 41), (12, 40)]), 20, 60).any()
    # two dips to the same value close together are not one-sample dips either
    twice = [(0, 41), (5, 42), (9, 40), (12, 41), (20, 40), (23, 42), (40, 41)]
    assert not one_sample_dips(*arrays(twice), 20, 60).any()
