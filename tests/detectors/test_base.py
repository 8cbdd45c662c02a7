"""The frame helpers every detector builds on."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from peebot_dagster.detectors.base import (
    drop_repeats,
    empty_frame,
    horizon_seconds,
    normalize_frame,
    step_mean,
    value_at,
)


def test_step_mean_weights_each_value_by_how_long_it_held() -> None:
    secs = np.array([0.0, 10.0, 40.0])
    vals = np.array([1.0, 2.0, 4.0])
    mean, sd, covered = step_mean(secs, vals, 0.0, 60.0)
    assert mean == pytest.approx((1 * 10 + 2 * 30 + 4 * 20) / 60)
    assert covered == 60.0 and sd > 0
    # a window inside one value; a window before the first reading; the carried value
    assert step_mean(secs, vals, 12.0, 30.0)[:2] == (2.0, 0.0)
    assert np.isnan(step_mean(secs, vals, -20.0, -10.0)[0])
    assert step_mean(secs, vals, 100.0, 160.0)[0] == 4.0
    assert value_at(secs, vals, 39.9) == 2.0 and np.isnan(value_at(secs, vals, -1))


def test_drop_repeats_keeps_changes_only() -> None:
    secs, vals = drop_repeats(np.array([0.0, 1, 2, 3]), np.array([5.0, 5, 6, 6]))
    assert secs.tolist() == [0.0, 2.0] and vals.tolist() == [5.0, 6.0]


def test_normalize_frame_accepts_naive_utc_and_sorts() -> None:
    frame = pd.DataFrame(
        {
            "item_id": ["B", "A"],
            "ts": [datetime(2026, 1, 1, 0, 0, 5), datetime(2026, 1, 1, 0, 0, 1)],
            "value": ["2", 1],
            "status_class": [None, 24],
            "extra": [1, 2],
        }
    )
    out = normalize_frame(frame)
    assert list(out.columns) == ["item_id", "ts", "value", "status_class"]
    assert out["item_id"].tolist() == ["A", "B"]
    assert out["ts"].iloc[0] == pd.Timestamp("2026-01-01 00:00:01", tz="UTC")
    assert str(out["status_class"].dtype) == "Int64" and out["value"].tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="lacks"):
        normalize_frame(frame.drop(columns=["value"]))
    assert normalize_frame(empty_frame()).empty


def test_horizon_is_never_before_the_last_reading() -> None:
    frame = normalize_frame(
        pd.DataFrame(
            {
                "item_id": ["A"],
                "ts": [datetime(2026, 1, 1, tzinfo=UTC)],
                "value": [1.0],
                "status_class": [None],
            }
        )
    )
    last = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    assert horizon_seconds(frame, None) == last
    assert horizon_seconds(frame, datetime(2025, 1, 1, tzinfo=UTC)) == last
    assert horizon_seconds(frame, datetime(2026, 1, 2, tzinfo=UTC)) == last + 86400
