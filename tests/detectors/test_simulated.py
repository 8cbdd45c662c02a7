"""The urine detector against the simulator's ground truth, run in windows like Dagster."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from peebot_dagster.detectors.base import window_frame
from peebot_dagster.detectors.urine import URINE_TANK

model_mod = pytest.importorskip("peebot_sim.model")

ITEMS = ("TIME_000001", "NODE3000004", "NODE3000005")


def simulated(seed: int, crew: int, noise: float, hours: float):
    start = datetime(2026, 2, 1, 6, tzinfo=UTC)
    model = model_mod.TelemetryModel(
        model_mod.SimConfig(seed=seed, start=start, crew=crew, noise=noise, items=ITEMS)
    )
    rows = [
        (item, start.timestamp(), float(f["Value"]), int(f["Status.Class"]))
        for item, f in model.initial_fields().items()
        if item in ITEMS
    ]
    rows += [
        (u.item_id, u.t, float(u.value), int(u.status_class))
        for u in model.generate(start + timedelta(hours=hours))
    ]
    item, t, v, s = zip(*rows, strict=True)
    frame = pd.DataFrame(
        {
            "item_id": list(item),
            "ts": pd.to_datetime(np.array(t) * 1e9, utc=True),
            "value": list(v),
            "status_class": pd.array(list(s), dtype="Int64"),
        }
    ).sort_values("ts", kind="stable", ignore_index=True)
    return start, frame, model.truth, model.los_intervals()


@pytest.mark.parametrize("seed,crew,noise", [(11, 6, 1.0), (12, 7, 2.0)])
def test_uses_found_in_fifteen_minute_windows(seed: int, crew: int, noise: float) -> None:
    start, frame, truth, los = simulated(seed, crew, noise, hours=14)
    end = start + timedelta(hours=13)
    owned = []
    w = start
    while w < end:
        sub = window_frame(
            frame, w, w + timedelta(minutes=15), URINE_TANK.lookback, URINE_TANK.lookahead
        )
        owned += URINE_TANK.detect_window(sub, w, w + timedelta(minutes=15))
        w += timedelta(minutes=15)
    uses = [
        t
        for t in truth
        if t.kind == "urination"
        and start <= t.start < end
        and not any(s < t.end and e > t.start for s, e in los)
    ]
    transfers = [t for t in truth if t.kind == "bulk_transfer" and start <= t.start < end]
    detected = [e for e in owned if e.event_type == "urination"]
    assert len(uses) >= 5
    found = 0
    for t in uses:
        near = [e for e in detected if abs((e.start - t.start).total_seconds()) <= 20]
        found += bool(near)
    assert found >= 0.95 * len(uses)
    # nothing reported as a use where there was none (LOS-hidden uses show after the LOS)
    for e in detected:
        assert any(
            t.start - timedelta(seconds=30) <= e.start <= t.end + timedelta(minutes=25)
            for t in truth
            if t.kind == "urination"
        ), e
    for t in transfers:
        assert not any(abs((e.start - t.start).total_seconds()) <= 60 for e in detected)
