"""Properties of the urine detector over generated sequences (hypothesis)."""

from __future__ import annotations

from datetime import timedelta

from detector_seqs import FrameBuilder, at
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from peebot_dagster.detectors.base import window_frame
from peebot_dagster.detectors.urine import URINE_TANK

FAST = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])

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
