"""Confidence calibration (peebot_dagster/detectors/calibration.py)."""

from __future__ import annotations

import numpy as np
import pytest

from peebot_dagster.detectors.calibration import (
    RAW_POINTS,
    calibrated_confidence,
    fit_isotonic,
)


def test_isotonic_fit_pools_violators_and_smooths_each_block() -> None:
    raw = np.array([0.1, 0.1, 0.2, 0.5, 0.6, 0.9, 0.95, 0.99])
    true = np.array([0, 0, 1, 0, 1, 1, 1, 1])
    points = fit_isotonic(raw, true)
    # 0.1, 0.1: 0/2 -> 1/4; 0.2 and 0.5 pool (1/2 -> 2/4); the rest 4/4 -> 5/6
    assert points == [
        (0.1, pytest.approx(0.25)),
        (0.2, pytest.approx(0.5)),
        (0.5, pytest.approx(0.5)),
        (0.6, pytest.approx(5 / 6)),
        (0.99, pytest.approx(5 / 6)),
    ]
    ys = [y for _, y in points]
    assert ys == sorted(ys)


def test_calibrated_confidence_is_linear_between_points_and_flat_beyond() -> None:
    points = [(0.2, 0.1), (0.6, 0.5), (0.9, 0.9)]
    assert calibrated_confidence(0.0, points) == pytest.approx(0.1)
    assert calibrated_confidence(0.4, points) == pytest.approx(0.3)
    assert calibrated_confidence(0.75, points) == pytest.approx(0.7)
    assert calibrated_confidence(1.0, points) == pytest.approx(0.9)


def test_stored_points_increase_and_stay_inside_zero_one() -> None:
    xs = [x for x, _ in RAW_POINTS]
    ys = [y for _, y in RAW_POINTS]
    assert xs == sorted(xs) and ys == sorted(ys)
    assert all(0.0 <= v <= 1.0 for v in xs + ys)
    grid = np.linspace(0, 1, 101)
    cal = [calibrated_confidence(float(x)) for x in grid]
    assert cal == sorted(cal)
