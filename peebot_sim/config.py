"""What a simulated feed is made of: `SimConfig`, one seeded day (or more) of ISS Live."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from peebot_sim.scenario import ScenarioEvent


@dataclass
class SimConfig:
    seed: int = 0
    start: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))
    crew: int = 6
    noise: float = 1.0  # scales every noise (0: no flips, no analog jitter)
    random_events: bool = True  # random uses, transfers and LOS; scenario events always happen
    scenario: Sequence[ScenarioEvent | str] = ()
    initial_level: float | None = None  # urine tank %, random 20-60 when None
    uses_per_person_per_day: float = 2.5  # visible in the tank (awake hours mostly)
    transfers_per_day: float = 0.7
    los_per_day: float = 5.0
    los_minutes: tuple[float, float] = (5.0, 20.0)
    use_amount_pct: tuple[float, float] = (2.0, 4.0)
    use_s_per_pct: tuple[float, float] = (4.5, 5.5)
    transfer_amount_pct: tuple[float, float] = (30.0, 60.0)
    transfer_s_per_pct: tuple[float, float] = (3.2, 4.5)
    drain_s_per_pct: tuple[float, float] = (240.0, 300.0)
    upa_low_pct: float = 5.0
    upa_resume_pct: float = 40.0
    tank_noise_pct: float = 0.08  # sensor noise s.d. while the processor runs
    tank_noise_tau_s: float = 4.0
    sleep_utc_hours: tuple[float, float] = (21.5, 6.0)  # crew sleep (GMT on the ISS)
    # sample interval multiplier of the non-essential analog channels: >1 thins them (used at
    # high speed), <1 makes the feed busier (about 5 updates/s at 1, 80/s at 0.05)
    analog_interval_scale: float = 1.0
    time_tick_s: float = 1.0  # TIME_000001 update period
    items: Collection[str] | None = None  # emit only these items (None: all 337)
    # ---- patterns of issue 16 (all off by default: a seeded day stays what it was)
    # One-sample dips of the tank sensor while it flips: candidate dips per hour (a candidate
    # outside the flip noise does not happen). The recording of issue 16 had one in ~12 h.
    dips_per_hour: float = 0.0
    # How long the dip reading holds (s): one sample held until the next one. It fooled a
    # 60-s mean there, so it held several seconds; the 2023 flips hold 1-60 s.
    dip_s: tuple[float, float] = (1.0, 20.0)
    # Chance that a UPA stop is followed by a slow single-step rise (both real stops seen
    # had one: 2023-09-19 02:09:38 and the recording of issue 16).
    slow_rise_after_stop: float = 0.0
    slow_rise_pct: tuple[float, float] = (2.0, 3.5)  # issue 16: +2-3 %; 2023: +3 (5 -> 8)
    # s per % of the slow rise: 2023 stepped 36 s and 53 s; issue 16 rose +2-3 in ~1 min
    slow_rise_s_per_pct: tuple[float, float] = (15.0, 40.0)
    # delay after the stop: 2023 began 38 s after it; issue 16 "right after"
    slow_rise_delay_s: tuple[float, float] = (5.0, 60.0)
    # The sensor keeps flipping this long after a UPA stop (2023: until 02:14:42, 5 min after
    # the stop at 02:09:38). 0: the noise stops with the processor, as before.
    noise_after_stop_s: float = 0.0

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            self.start = self.start.replace(tzinfo=UTC)
        self.start = self.start.astimezone(UTC)
