"""The two patterns of issue 16 as short hand-made sequences: a one-sample dip inside flip
noise is not an event; a slow single-step rise right after a UPA stop is one use."""

from __future__ import annotations

from detector_seqs import FrameBuilder, at, climb

from peebot_dagster.detectors.base import window_frame
from peebot_dagster.detectors.urine import URINE_TANK


def detect(builder: FrameBuilder, horizon_s: float = 1500):
    return URINE_TANK.detect(builder.frame(), horizon=at(horizon_s))


def flip_run(t_from: float, t_to: float, low: int, up_s: float, down_s: float):
    """low+1 for up_s, low for down_s, ... from t_from to t_to, ending on low."""
    out, t = [], t_from
    while t < t_to:
        out += [(t, low + 1), (t + up_s, low)]
        t += up_s + down_s
    return out


# The false use of issue 16: the level sat on 41 with flips to 42, dipped for one reading to
# 40, and came back flipping 41/42 (more often on 42). The detector before issue 16 took the
# 40 as the baseline and reported a +2 use (confidence 0.4-0.7 depending on the dwell).
DIP_IN_FLIPS = [(-900, 42), (-400, 41), (0, 40), (10, 41), (13, 42), *flip_run(33, 600, 41, 20, 3)]


def test_a_one_sample_dip_inside_flip_noise_is_not_an_event() -> None:
    processing = FrameBuilder().tank(DIP_IN_FLIPS).upa([(-3000, 16)])
    standby = FrameBuilder().tank(DIP_IN_FLIPS).upa([(-3000, 32)])
    assert detect(processing) == []
    assert detect(standby) == []


def test_the_same_dip_before_a_real_use_is_ignored_not_taken_as_the_baseline() -> None:
    points = [(-900, 42), (-400, 41), *flip_run(-300, -20, 41, 3, 6), (-10, 40), (-4, 41)]
    points += [*climb(0, 41, 44), (300, 43), (303, 44)]
    events = detect(FrameBuilder().tank(points).upa([(-3000, 16)]))
    assert [e.event_type for e in events] == ["urination"]
    e = events[0]
    assert e.start == at(0)
    assert e.metadata["step_before"] == 41 and e.metadata["step_peak"] == 44
    assert e.metadata["band_before"] == [41, 42]
    assert e.metadata["dips_ignored"] == 1


def test_a_long_stay_one_below_is_a_level_not_a_dip() -> None:
    # 40 held for two minutes is where the level was: a rise from it to a held 42/43 is a use
    points = [(-900, 41), (-120, 40), *climb(0, 40, 42), *flip_run(30, 600, 42, 2, 12)]
    events = detect(FrameBuilder().tank(points).upa([(-3000, 32)]))
    assert [(e.event_type, e.metadata["step_before"]) for e in events] == [("urination", 40)]


# The missed use of issue 16: right after the UPA stopped, 14/15 flipping, then 15, 16, then
# 16/17 flipping, over about a minute: a +2 rise whose steps are each a single percent inside
# the noise band (the first 17 came more than a minute after the 16 here, so the detector
# before issue 16 saw two +1 steps and no use).
SLOW_AFTER_STOP = [
    (-1200, 15),
    *flip_run(-600, -30, 14, 4, 4),
    (-25, 15),
    (0, 16),
    *[(t, v) for t, v in flip_run(62, 480, 16, 5, 5)],
]


def test_a_slow_single_step_rise_right_after_a_upa_stop_is_one_use() -> None:
    builder = FrameBuilder().tank(SLOW_AFTER_STOP).upa([(-3000, 16), (-65, 32)])
    events = detect(builder)
    assert [e.event_type for e in events] == ["urination"]
    e = events[0]
    assert e.start == at(0)
    assert e.metadata["step_before"] == 14 and e.metadata["step_peak"] == 17
    assert e.metadata["band_after"] == [16, 17]
    assert 1.7 <= e.metadata["delta"] <= 2.3
    assert "slow_rise" in e.metadata["flags"]
    assert e.metadata["upa_state"] == 32


def test_the_slow_rise_is_one_event_from_any_windows() -> None:
    frame = FrameBuilder().tank(SLOW_AFTER_STOP).upa([(-3000, 16), (-65, 32)]).frame()
    (whole,) = URINE_TANK.detect(frame, horizon=at(1500))
    for step_s in (60, 300, 3600):
        owned, w = [], -1800.0
        while w < 1200:
            start, end = at(w), at(w + step_s)
            sub = window_frame(frame, start, end, URINE_TANK.lookback, URINE_TANK.lookahead)
            owned += URINE_TANK.detect_window(
                sub, start, end, horizon=min(end + URINE_TANK.lookahead, at(1500))
            )
            w += step_s
        assert [e.event_key for e in owned] == [whole.event_key]


def test_a_slow_rise_with_a_pause_before_every_step_is_not_cut_in_two() -> None:
    # as the simulator makes it (seed 101, 03:14): +1 steps 37-47 s apart, 5 -> 9, then 8/9
    points = [(-600, 5), (25, 6), (62, 7), (101, 8), (148, 9), (149, 8), (182, 9), (185, 8)]
    points += [(187, 9), (189, 8), (240, 9), (244, 8), (300, 9), (305, 8)]
    events = detect(FrameBuilder().tank(points).upa([(-3000, 16), (-20, 32)]))
    assert [(e.event_type, e.start) for e in events] == [("urination", at(25))]
    assert events[0].metadata["step_delta"] == 4


def test_a_slow_drift_that_stays_inside_one_step_is_not_a_rise() -> None:
    # 14/15 flipping becomes 15/16 flipping: the level moved by about one percent
    points = [(-900, 14), *flip_run(-600, 0, 14, 5, 5), *flip_run(0, 600, 15, 5, 5)]
    assert detect(FrameBuilder().tank(points).upa([(-3000, 32)])) == []
