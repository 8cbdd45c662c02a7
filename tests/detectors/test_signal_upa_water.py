"""Signal, UPA-cycle and clean-water processors on crafted sequences; the event contract."""

from __future__ import annotations

import json

import pytest
from detector_seqs import FrameBuilder, at

from peebot_dagster.detectors.base import Event, window_frame
from peebot_dagster.detectors.registry import PROCESSORS, all_items, get_processor
from peebot_dagster.detectors.signal import SIGNAL
from peebot_dagster.detectors.upa import UPA_CYCLE
from peebot_dagster.detectors.water import CLEAN_WATER


def test_status_class_los_and_aos() -> None:
    frame = (
        FrameBuilder()
        .heartbeat(0, 100, status=24)
        .heartbeat(100, 160, status=0)
        .heartbeat(160, 300, status=24)
        .frame()
    )
    events = SIGNAL.detect(frame)
    assert [(e.event_type, e.start) for e in events] == [("los", at(100)), ("aos", at(160))]
    los = events[0]
    assert los.end == at(160) and los.metadata["reason"] == "status_class"
    assert los.metadata["duration_s"] == pytest.approx(60)


def test_stale_feed_is_a_los_and_the_first_reading_is_not_a_change() -> None:
    frame = FrameBuilder().heartbeat(0, 50, status=0).heartbeat(50, 100).heartbeat(400, 500).frame()
    events = SIGNAL.detect(frame)
    # the frame starts in LOS (carried state): only its AOS is reported
    assert [(e.event_type, e.start) for e in events] == [
        ("aos", at(50)),
        ("los", at(99 + 10)),
        ("aos", at(400)),
    ]
    assert events[1].metadata["reason"] == "stale"


def test_stale_until_the_horizon() -> None:
    frame = FrameBuilder().heartbeat(0, 60).frame()
    (los,) = SIGNAL.detect(frame, horizon=at(600))
    assert los.event_type == "los" and los.start == at(69) and los.end is None
    assert SIGNAL.detect(frame, horizon=at(65)) == []


def test_upa_start_and_stop_with_drain_rate() -> None:
    tank = [(t, 60 - k) for k, t in enumerate(range(0, 3600, 270))]  # -1 % / 4.5 min
    frame = FrameBuilder().upa([(-100, 32), (0, 16), (3600, 32)]).tank(tank).frame()
    start, stop = UPA_CYCLE.detect(frame, horizon=at(4000))
    assert (start.event_type, start.start) == ("upa_cycle_start", at(0))
    assert (stop.event_type, stop.start) == ("upa_cycle_stop", at(3600))
    assert start.metadata["drain_pct_per_hour"] == pytest.approx(-60 / 4.5, rel=0.1)
    # the carried-forward state is no transition
    only = FrameBuilder().upa([(0, 16), (100, 16)]).frame()
    assert UPA_CYCLE.detect(only) == []


def test_clean_water_refill_and_noise() -> None:
    flat = [(t, 50.0 + (0.01 if (t // 10) % 2 else 0.0)) for t in range(0, 600, 10)]
    fill = [(600 + 10 * k, 50.0 + 0.6 * (k + 1)) for k in range(5)]
    after = [(t, 53.0 + (0.02 if (t // 10) % 2 else 0.0)) for t in range(660, 1200, 10)]
    frame = FrameBuilder().add("NODE3000009", flat + fill + after).frame()
    (e,) = CLEAN_WATER.detect(frame)
    assert e.event_type == "clean_water_refill" and e.start == at(600)
    assert e.metadata["delta"] == pytest.approx(3.0, abs=0.05)
    assert CLEAN_WATER.detect(FrameBuilder().add("NODE3000009", flat).frame()) == []


def test_registry_and_contract() -> None:
    assert [p.name for p in PROCESSORS] == ["urine_tank", "upa_cycle", "signal", "clean_water"]
    assert get_processor("urine_tank").items[0] == "NODE3000005"
    assert {"NODE3000005", "NODE3000004", "TIME_000001", "NODE3000009"} <= set(all_items())
    with pytest.raises(KeyError):
        get_processor("nope")
    for p in PROCESSORS:
        assert p.lookback.total_seconds() > 0 and p.lookahead.total_seconds() > 0
        assert p.params_dict()  # every threshold is a named parameter
    with pytest.raises(ValueError):
        Event("los", "signal", "TIME_000001", at(0), None, 1.5)
    e = Event("urination", "urine_tank", "NODE3000005", at(0.5), at(10), 0.9, {"flags": []})
    assert e.event_key == "urine_tank:NODE3000005:2026-03-01T12:00:00.500Z"
    assert json.loads(json.dumps(e.to_dict()))["start"] == "2026-03-01T12:00:00.500000Z"


def test_window_frame_carries_the_last_value_before_the_range() -> None:
    frame = FrameBuilder().tank([(0, 10), (100, 11), (2000, 12)]).upa([(-5000, 16)]).frame()
    sub = window_frame(
        frame,
        at(1000),
        at(1060),
        UPA_CYCLE.lookback.__class__(minutes=5),
        UPA_CYCLE.lookback.__class__(minutes=5),
    )
    assert sub["value"].tolist() == [16.0, 11.0]
    assert sub["ts"].tolist()[1] == at(100)


def test_slow_production_across_a_silence_is_not_a_refill_but_a_draw_is_flagged() -> None:
    before = [(t, 50.0) for t in range(0, 600, 10)]
    after = [(t, 51.2 + (0.01 if (t // 10) % 2 else 0.0)) for t in range(1500, 2100, 10)]
    frame = FrameBuilder().add("NODE3000009", before + after).frame()  # +1.2 % in 15 min
    assert CLEAN_WATER.detect(frame) == []
    drop = [(t, 45.0) for t in range(1500, 2100, 10)]
    (e,) = CLEAN_WATER.detect(FrameBuilder().add("NODE3000009", before + drop).frame())
    assert e.event_type == "clean_water_draw" and "across_silence" in e.metadata["flags"]
    assert e.confidence <= 0.3
