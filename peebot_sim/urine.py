"""The urine system of the simulator: the tank (`NODE3000005`), its processor (UPA,
`NODE3000004`), toilet uses, bulk transfers, and the tank sensor, second by second, with
ground truth.

Calibrated on the real recordings in ../shared/data/iss/ (SOURCES.md there) and issue 16:

- a toilet use raises the tank 2-4 % at about 1 % per 5 s; a bulk transfer 30-60 % at about
  1 % per 3-4 s; while the UPA processes (state 16) the tank drains about 1 % per 4-5 min
  down to a low level, then the UPA goes to 32 (STANDBY) until the tank is full enough;
- the tank reports integers; a correlated sensor noise (only while the UPA runs, as in the
  2023 recording) makes the value flip between neighbouring integers for a minute or two at
  every boundary crossing;
- two patterns of issue 16, off by default so every existing seeded day is unchanged:
  * one-sample dips (`SimConfig.dips_per_hour`): while the sensor noise is on, a single
    reading one below the lower value of the flip band (41/42 flipping, one 40), held
    until the next sample (`dip_s`), then back to flipping. Truth kind `dip` (not an event);
  * slow single-step rises right after a UPA stop (`slow_rise_after_stop`): +2..+3.5 % at
    15-40 s per % starting shortly after the stop, while the sensor keeps flipping for a few
    minutes after the stop (`noise_after_stop_s`). Truth kind `urination` with
    `meta["pattern"] == "slow_after_upa_stop"`. Seen twice in real data: 2023-09-19 02:10
    (UPA stop 02:09:38, then 5 -> 8 over 90 s in +1 steps 36 s and 53 s apart, flips 7/8
    and 8/9 until 02:14:42) and the recording of issue 16 (14/15 flipping, then 15, 16,
    then 16/17 flipping over about a minute).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from peebot_iss.catalog import UPA_STATE, URINE_TANK
from peebot_sim.channels import DAY_S
from peebot_sim.config import SimConfig
from peebot_sim.scenario import ScenarioEvent
from peebot_sim.streams import S_DIPS, S_EVENTS, S_SCENARIO, S_SLOW, S_TANK, S_UPA, rng
from peebot_sim.truth import TruthEvent

UPA_NORMAL = 16
UPA_STANDBY = 32
ML_PER_PCT = 80  # 1 % of the tank is about 80 mL (secondhand figure)

# emit(offset_s, order, item, value): hand one reading to the feed
Emit = Callable[[float, int, str, str], None]


@dataclass
class Pending:
    """A queued inflow: a toilet use, a bulk transfer or a slow rise after a UPA stop."""

    t: int  # seconds from start
    kind: str  # use | transfer | slow
    amount: float
    s_per_pct: float
    source: str
    crew_member: int | None = None

    def __lt__(self, other: Pending) -> bool:
        return (self.t, self.kind) < (other.t, other.kind)


class UrineSystem:
    """State and dynamics of the tank and the UPA; `run_block` steps one block a second at a
    time and hands every changed reading to `emit`. `truth` lists what happened (uses,
    transfers, UPA starts/stops, LOS periods with the tank level, dips)."""

    def __init__(
        self,
        config: SimConfig,
        start: datetime,
        level: float,
        scenario: Sequence[ScenarioEvent],
    ) -> None:
        self.config = cfg = config
        self.start = start
        self.t0 = start.timestamp()
        self.seed = cfg.seed
        self.truth: list[TruthEvent] = []
        self.level = float(level)
        self.upa = UPA_NORMAL if self.level > cfg.upa_low_pct + 1 else UPA_STANDBY
        self.upa_cycle = 0
        self.upa_stops = 0
        self.stopped_at: int | None = None  # when the UPA last stopped (offset s)
        self.drain_rate = self._new_drain_rate()
        self.tank_noise = 0.0
        self.reported = round(self.level)
        self.dip_until = -1  # the dip reading holds while t < dip_until
        self.dip_value = 0
        self.active: Pending | None = None
        self.active_start = 0
        self.active_before = 0.0
        self.active_reported_before = 0
        self.active_left = 0.0
        self.pending: list[Pending] = []
        self.event_days = 0
        self.open_los: dict[int, TruthEvent] = {}
        self.last_tank = str(self.reported)
        self.last_upa = str(self.upa)
        scenario_rng = rng(self.seed, S_SCENARIO)
        for ev in scenario:
            offset = int((ev.time(start) - start).total_seconds())
            if offset < 0 or ev.kind == "los":
                continue
            lo, hi = cfg.use_amount_pct if ev.kind == "use" else cfg.transfer_amount_pct
            rlo, rhi = cfg.use_s_per_pct if ev.kind == "use" else cfg.transfer_s_per_pct
            amount = ev.amount if ev.amount is not None else float(scenario_rng.uniform(lo, hi))
            heapq.heappush(
                self.pending,
                Pending(offset, ev.kind, amount, float(scenario_rng.uniform(rlo, rhi)), "scenario"),
            )

    # ------------------------------------------------------------ random events

    def schedule_until(self, until_offset: int, asleep: Callable[[int], bool]) -> None:
        """Queue the random uses and transfers of every day that starts before `until_offset`."""
        cfg = self.config
        if not cfg.random_events:
            return
        while self.event_days * DAY_S < until_offset + 60:
            d = self.event_days
            self.event_days += 1
            r = rng(self.seed, S_EVENTS, d)
            peak = cfg.crew * cfg.uses_per_person_per_day / DAY_S * 1.3
            n = int(r.poisson(peak * DAY_S))
            times = np.sort(r.uniform(0, DAY_S, n))
            accept = r.uniform(0, 1, n)
            members = r.integers(0, max(cfg.crew, 1), n)
            amounts = r.uniform(*cfg.use_amount_pct, n)
            rates = r.uniform(*cfg.use_s_per_pct, n)
            for t, a, m, amt, rate in zip(times, accept, members, amounts, rates, strict=True):
                offset = d * DAY_S + int(t)
                awake = not asleep(offset)
                if a < (1 / 1.3 if awake else 0.1 / 1.3) and offset >= 5:
                    heapq.heappush(
                        self.pending,
                        Pending(offset, "use", float(amt), float(rate), "random", int(m)),
                    )
            k = int(r.poisson(cfg.transfers_per_day))
            for t in r.uniform(0, DAY_S, k):
                offset = d * DAY_S + int(t)
                if asleep(offset) or offset < 5:
                    continue
                heapq.heappush(
                    self.pending,
                    Pending(
                        offset,
                        "transfer",
                        float(r.uniform(*cfg.transfer_amount_pct)),
                        float(r.uniform(*cfg.transfer_s_per_pct)),
                        "random",
                    ),
                )

    def _dip_starts(self, k: int, b0: int, b1: int) -> dict[int, int]:
        """Candidate dips of block k: {offset: seconds the dip reading holds}. A candidate
        becomes a dip only if the sensor noise is on then (dips live inside flip noise)."""
        cfg = self.config
        if cfg.dips_per_hour <= 0:
            return {}
        r = rng(self.seed, S_DIPS, k)
        n = int(r.poisson(cfg.dips_per_hour * (b1 - b0) / 3600.0))
        times = r.integers(b0, b1, n).tolist()
        held = r.uniform(cfg.dip_s[0], cfg.dip_s[1], n).tolist()
        return {t: max(1, round(h)) for t, h in zip(times, held, strict=True)}

    # ------------------------------------------------------------ one block

    def run_block(
        self,
        k: int,
        b0: int,
        b1: int,
        in_los: list[bool],
        los: Sequence[tuple[int, int]],
        emit: Emit,
    ) -> bytearray:
        """Step seconds [b0, b1); returns 1 for each second the UPA processed (the water
        system's input)."""
        cfg = self.config
        z = rng(self.seed, S_TANK, k).standard_normal(b1 - b0).tolist()
        a = math.exp(-1.0 / cfg.tank_noise_tau_s)
        b = math.sqrt(1 - a * a) * cfg.tank_noise_pct * cfg.noise
        upa_by_second = bytearray(b1 - b0)
        los_starts = {s: e for s, e in los if b0 <= s < b1}
        los_ends = {e: s for s, e in los if b0 <= e < b1}
        dips = self._dip_starts(k, b0, b1)
        pending = self.pending
        for j in range(b1 - b0):
            t = b0 + j
            if t in los_starts:
                # recorded when it begins; level_after is filled in when the signal returns
                e = los_starts[t]
                self.open_los[t] = self._record(
                    "los", t, e, self.level, self.level, {"seconds": e - t}
                )
            if t in los_ends:
                los_event = self.open_los.pop(los_ends[t], None)
                if los_event is not None:
                    los_event.level_after = self.level
            # start the next queued event when the toilet/transfer line is free
            if self.active is None and pending and pending[0].t <= t:
                ev = heapq.heappop(pending)
                room = 100.0 - self.level
                if ev.kind == "transfer":
                    ev.amount = min(ev.amount, max(room - 2.0, 0.0))
                else:
                    ev.amount = min(ev.amount, max(room, 0.0))
                if ev.amount >= 0.5:
                    self.active = ev
                    self.active_start = t
                    self.active_before = self.level
                    self.active_reported_before = self.reported
                    self.active_left = ev.amount
            # the sensor, sampled every second
            noisy = self.upa == UPA_NORMAL or (
                self.stopped_at is not None and t - self.stopped_at < cfg.noise_after_stop_s
            )
            if noisy:
                self.tank_noise = a * self.tank_noise + b * z[j]
            else:
                self.tank_noise = 0.0
            if t in dips and noisy and t >= self.dip_until:
                held = dips[t]
                self.dip_until = t + held
                # one below the lower value of the flip band around the true level
                self.dip_value = max(0, math.floor(self.level + 0.25) - 1)
                self._record(
                    "dip",
                    t,
                    t + held,
                    self.level,
                    self.level,
                    {"value": self.dip_value, "seen": not in_los[j], "upa_state": self.upa},
                )
            if t < self.dip_until:
                reported = self.dip_value
            else:
                reported = math.floor(self.level + self.tank_noise + 0.5)
            self.reported = reported = min(100, max(0, reported))
            if not in_los[j]:
                value = str(reported)
                if self.last_tank != value:
                    self.last_tank = value
                    emit(t, 2, URINE_TANK, value)
                upa_value = str(self.upa)
                if self.last_upa != upa_value:
                    self.last_upa = upa_value
                    emit(t, 3, UPA_STATE, upa_value)
            # dynamics over [t, t+1)
            if self.active is not None:
                step = min(1.0 / self.active.s_per_pct, self.active_left)
                self.level += step
                self.active_left -= step
                if self.active_left <= 1e-9:
                    self._finish_active(t + 1)
            if self.upa == UPA_NORMAL:
                self.level = max(0.0, self.level - self.drain_rate)
                if self.level <= cfg.upa_low_pct:
                    self._upa_change(t + 1, UPA_STANDBY)
            elif self.active is None and self.level >= cfg.upa_resume_pct:
                self._upa_change(t + 1, UPA_NORMAL)
            upa_by_second[j] = 1 if self.upa == UPA_NORMAL else 0
        return upa_by_second

    def _finish_active(self, end: int) -> None:
        ev = self.active
        assert ev is not None
        self.active = None
        kind = "bulk_transfer" if ev.kind == "transfer" else "urination"
        meta: dict[str, Any] = {
            "amount_pct": round(ev.amount, 3),
            "s_per_pct": round(ev.s_per_pct, 3),
            "source": ev.source,
            "crew_member": ev.crew_member,
            "scheduled_at": (self.start + timedelta(seconds=ev.t)).isoformat(),
            "upa_state": self.upa,
            "reported_before": self.active_reported_before,
            "volume_ml": round(ev.amount * ML_PER_PCT),
        }
        if ev.kind == "slow":
            meta["pattern"] = "slow_after_upa_stop"
        self._record(kind, self.active_start, end, self.active_before, self.level, meta)

    def _upa_change(self, t: int, state: int) -> None:
        before = self.upa
        self.upa = state
        if state == UPA_NORMAL:
            self.upa_cycle += 1
            self.drain_rate = self._new_drain_rate()
        else:
            self.stopped_at = t
            self._maybe_slow_rise(t)
        kind = "upa_start" if state == UPA_NORMAL else "upa_stop"
        self._record(
            kind,
            t,
            t,
            self.level,
            self.level,
            {
                "state_before": before,
                "state_after": state,
                "drain_s_per_pct": round(1 / self.drain_rate, 1),
            },
        )

    def _maybe_slow_rise(self, t: int) -> None:
        """After a UPA stop, queue a slow single-step rise with probability
        `slow_rise_after_stop` (its own stream, keyed by the stop's number)."""
        cfg = self.config
        self.upa_stops += 1
        if cfg.slow_rise_after_stop <= 0:
            return
        r = rng(self.seed, S_SLOW, self.upa_stops)
        chance, delay, amount, s_per_pct = r.uniform(0, 1, 4).tolist()
        if chance >= cfg.slow_rise_after_stop:
            return
        lo, hi = cfg.slow_rise_delay_s
        alo, ahi = cfg.slow_rise_pct
        slo, shi = cfg.slow_rise_s_per_pct
        heapq.heappush(
            self.pending,
            Pending(
                t + int(lo + delay * (hi - lo)),
                "slow",
                alo + amount * (ahi - alo),
                slo + s_per_pct * (shi - slo),
                "after_upa_stop",
            ),
        )

    def _new_drain_rate(self) -> float:
        lo, hi = self.config.drain_s_per_pct
        s_per_pct = float(rng(self.seed, S_UPA, self.upa_cycle).uniform(lo, hi))
        return 1.0 / s_per_pct

    def _record(
        self, kind: str, s: int, e: int, before: float, after: float, meta: dict[str, Any]
    ) -> TruthEvent:
        event = TruthEvent(
            kind,
            self.start + timedelta(seconds=s),
            self.start + timedelta(seconds=e),
            before,
            after,
            meta,
        )
        self.truth.append(event)
        return event
