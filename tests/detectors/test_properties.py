"""Properties of the urine detector over generated sequences (hypothesis)."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
from detector_seqs import FrameBuilder, at
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from peebot_dagster.detectors.base import window_frame
from peebot_dagster.detectors.urine import URINE_TANK

# derandomize: CI has no hypothesis database, so every run checks the same examples (a
# failure found once is found again); new inputs come from the generators, not from luck.
FAST = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

dwell = st.floats(min_value=0.5, max_value=400.0, allow_nan=False)


@FAST
@given(
    low=st.integers(min_value=1, max_value=90),
    dwells=st.lists(dwell, min_size=2, max_size=120),
    processing=st.booleans(),
)
def test_two_level_flips_are_never_an_event(
    low: int, dwells: list[float], processing: bool
) -> None:
    points, t = [(-1000.0, float(low))], 0.0
    for k, d in enumerate(dwells):
        points.append((t, float(low + (k + 1) % 2)))
        t += d
    b = FrameBuilder().tank(points).upa([(-2000, 16 if processing else 32)])
    assert URINE_TANK.detect(b.frame(), horizon=at(t + 900)) == []


@FAST
@given(
    base=st.integers(min_value=5, max_value=80),
    amount=st.integers(min_value=2, max_value=4),
    s_per_pct=st.floats(min_value=4.0, max_value=6.0),
    # (seconds on base+1, seconds on base): the tank sits on the lower value, flipping up
    flip_dwells=st.lists(
        st.tuples(
            st.floats(min_value=1.0, max_value=4.0), st.floats(min_value=8.0, max_value=60.0)
        ),
        min_size=0,
        max_size=12,
    ),
    start=st.floats(min_value=0.0, max_value=3000.0),
    window_min=st.sampled_from([1, 5, 60]),
)
def test_a_use_in_flip_noise_is_one_event_from_any_windows(
    base: int,
    amount: int,
    s_per_pct: float,
    flip_dwells: list[tuple[float, float]],
    start: float,
    window_min: int,
) -> None:
    # flips base/base+1 ending on base just before the use, the use, then flips at the top
    points, t = [(-2000.0, float(base))], start - sum(u + d for u, d in flip_dwells) - 10
    for up, down in flip_dwells:
        points += [(t, float(base + 1)), (t + up, float(base))]
        t += up + down
    points += [(start + k * s_per_pct, float(base + 1 + k)) for k in range(amount)]
    top = start + amount * s_per_pct + 30
    points += [(top, float(base + amount - 1)), (top + 3, float(base + amount))]
    frame = FrameBuilder().tank(points).frame()
    (whole,) = URINE_TANK.detect(frame, horizon=at(start + 4000))
    assert whole.event_type == "urination"
    assert abs((whole.start - at(start)).total_seconds()) <= 2 * s_per_pct
    step = timedelta(minutes=window_min)
    w = at(start) - step * 2
    owned = []
    while w < at(start) + step * 2:
        sub = window_frame(frame, w, w + step, URINE_TANK.lookback, URINE_TANK.lookahead)
        owned += URINE_TANK.detect_window(sub, w, w + step)
        w += step
    assert [e.event_key for e in owned] == [whole.event_key]


# ---------------------------------------------------------------- issue 16: dips and noise

DIP_SPACING_S = 150.0  # dips are rare glitches: never two within each other's minute


def _with_dips(
    points: list[tuple[float, float]], dips: list[tuple[int, int, float]], low: int
) -> list[tuple[float, float]]:
    """Insert one-sample dips: (reading index, depth below `low`, seconds held) splits that
    reading's dwell: the value, the dip, the value again. Dips closer than DIP_SPACING_S to
    the previous one, at the first or last reading, or longer than the dwell are skipped."""
    out = list(points)
    inserted: list[tuple[float, float]] = []
    last_dip = -1e9
    for index, depth, held in sorted(dips):
        k = 1 + index % max(len(points) - 2, 1)
        if k >= len(points) - 1:
            continue
        t, v = points[k]
        dwell = points[k + 1][0] - t
        at_s = t + min(1.0, dwell / 4)
        if held + 1.0 >= dwell - (at_s - t) or at_s - last_dip < DIP_SPACING_S:
            continue
        inserted += [(at_s, float(low - depth)), (at_s + held, v)]
        last_dip = at_s
    return sorted(out + inserted, key=lambda p: p[0])


@FAST
@given(
    low=st.integers(min_value=11, max_value=90),
    dwells=st.lists(dwell, min_size=2, max_size=120),
    dips=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=500),
            st.integers(min_value=1, max_value=10),
            st.floats(min_value=0.5, max_value=20.0),
        ),
        max_size=12,
    ),
    processing=st.booleans(),
)
def test_two_level_flips_with_one_sample_dips_are_never_an_event(
    low: int, dwells: list[float], dips: list[tuple[int, int, float]], processing: bool
) -> None:
    points, t = [(-1000.0, float(low))], 0.0
    for k, d in enumerate(dwells):
        points.append((t, float(low + (k + 1) % 2)))
        t += d
    points.append((t, float(low)))
    points = _with_dips(points, dips, low)
    b = FrameBuilder().tank(points).upa([(-2000, 16 if processing else 32)])
    assert URINE_TANK.detect(b.frame(), horizon=at(t + 900)) == []


def _sensor(level: np.ndarray, sd: float, tau_s: float, seed: int) -> list[tuple[float, float]]:
    """Integer readings of `level` (one per second) with AR(1) sensor noise, sent on change."""
    rng = np.random.default_rng(seed)
    a = math.exp(-1.0 / tau_s)
    z = rng.standard_normal(level.size) * sd * math.sqrt(1 - a * a)
    noise = np.empty(level.size)
    n = 0.0
    for i, x in enumerate(z.tolist()):
        n = a * n + x
        noise[i] = n
    values = np.floor(level + noise + 0.5)
    keep = np.ones(values.size, dtype=bool)
    keep[1:] = values[1:] != values[:-1]
    return [(float(t), float(v)) for t, v in zip(np.flatnonzero(keep), values[keep], strict=True)]


LEAD_S = 600  # longer than the baseline window and the dip context (urine.UrineParams)


@FAST
@example(  # CI, issue 16: the old generator held one noisy draw (10) for 1000 s before a
    # level of 11: a held +1 % step that the drain correction lifted to a +1.32 "use"
    level=11.0,
    sd=0.25,
    tau_s=0.5,
    seed=166118,
    minutes=5,
    dips=[],
    processing=True,
)
@given(
    level=st.floats(min_value=11.0, max_value=90.0),
    sd=st.floats(min_value=0.0, max_value=0.25),
    tau_s=st.floats(min_value=0.5, max_value=8.0),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    minutes=st.integers(min_value=5, max_value=40),
    dips=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=500),
            st.integers(min_value=1, max_value=10),
            st.floats(min_value=0.5, max_value=20.0),
        ),
        max_size=8,
    ),
    processing=st.booleans(),
)
def test_flip_noise_of_any_band_width_with_dips_is_never_an_event(
    level: float,
    sd: float,
    tau_s: float,
    seed: int,
    minutes: int,
    dips: list[tuple[int, int, float]],
    processing: bool,
) -> None:
    """A constant level read through sensor noise of any strength up to flips over three
    neighbouring values (s.d. 0.25 %, more than the 2023 recording or the simulator at twice
    its noise show), any correlation time, plus one-sample dips below the band."""
    # the noise starts LEAD_S before the frame's first second, so the carried-forward
    # reading is a draw of the same noise, not one draw held for the whole look-back
    level_s = np.full(minutes * 60 + LEAD_S, level)
    points = [(t - LEAD_S, v) for t, v in _sensor(level_s, sd, tau_s, seed)]
    low = int(min(v for _, v in points))
    points = _with_dips(points, dips, low)
    b = FrameBuilder().tank(points).upa([(-2000, 16 if processing else 32)])
    assert URINE_TANK.detect(b.frame(), horizon=at(minutes * 60 + 900)) == []


@FAST
@given(
    base=st.floats(min_value=4.0, max_value=60.0),
    amount=st.floats(min_value=2.3, max_value=3.5),
    s_per_pct=st.floats(min_value=15.0, max_value=40.0),
    delay_s=st.floats(min_value=5.0, max_value=60.0),
    sd=st.floats(min_value=0.03, max_value=0.16),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    window_min=st.sampled_from([1, 5, 60]),
)
def test_a_slow_single_step_rise_after_a_stop_is_one_use_from_any_windows(
    base: float,
    amount: float,
    s_per_pct: float,
    delay_s: float,
    sd: float,
    seed: int,
    window_min: int,
) -> None:
    """The simulator's pattern: the UPA stops, the sensor keeps flipping (s.d. 0.03-0.16 %,
    the simulator's noise 0.4-2x), and the level climbs +2.3..+3.5 % at 15-40 s per %."""
    seconds = np.arange(0, 1800, dtype=float)
    rise_start = 600.0 + delay_s
    rise_end = rise_start + amount * s_per_pct
    level = base + amount * np.clip((seconds - rise_start) / (rise_end - rise_start), 0, 1)
    points = _sensor(level, sd, 4.0, seed)
    frame = FrameBuilder().tank(points).upa([(-2000, 16), (600, 32)]).frame()
    events = URINE_TANK.detect(frame, horizon=at(1800))
    assert [e.event_type for e in events] == ["urination"]
    (whole,) = events
    assert at(rise_start - 30) <= whole.start <= at(rise_end + 60)
    step = timedelta(minutes=window_min)
    w, owned = at(0), []
    while w < at(1800):
        sub = window_frame(frame, w, w + step, URINE_TANK.lookback, URINE_TANK.lookahead)
        owned += URINE_TANK.detect_window(
            sub, w, w + step, horizon=min(w + step + URINE_TANK.lookahead, at(1800))
        )
        w += step
    assert [e.event_key for e in owned] == [whole.event_key]
