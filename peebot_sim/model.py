"""A seeded model of the ISS Live feed: all 337 catalogue items, with ground truth.

`TelemetryModel` assembles the systems and serves their readings in time order:

- the urine system (tank, UPA, toilet uses, transfers, sensor noise and the patterns of
  issue 16) in `urine.py`, which also records the ground truth (`truth.py`);
- the water system (waste/clean water tanks and the water processor), the time items, and
  loss-of-signal (LOS) periods, here: LOS silences every item and `TIME_000001` announces it
  with a non-24 Status.Class;
- every other channel from its catalogue profile (`channels.py`).

Everything random is drawn from streams keyed by (seed, component, block) (`streams.py`), so
the output does not depend on how `generate()` is chunked, and the urine system, water system,
LOS and time items do not depend on the thinning of the other channels.

Simulated time is processed in one-hour blocks: a block's updates are computed at once
(numpy for the sampled analog channels, a 1-s loop for the urine tank) and then yielded in
time order, so a simulated day takes a few seconds.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Collection, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from peebot_iss.catalog import (
    TIME_ITEM,
    UPA_STATE,
    URINE_TANK,
    YEAR_ITEM,
    Channel,
    load_catalog,
)
from peebot_iss.timestamps import format_timestamp
from peebot_sim import streams
from peebot_sim.channels import (
    CLEAN_WATER,
    DAY_S,
    ORBIT_S,
    WASTE_WATER,
    WPA_STATE,
    WPA_STEP,
    Profile,
    enum_codes_of,
    nominal_code,
    profile_for,
)
from peebot_sim.config import SimConfig
from peebot_sim.fields import AOS_STATUS_CLASS, LOS_STATUS_CLASS, Update, make_fields
from peebot_sim.scenario import ScenarioEvent, parse_scenario
from peebot_sim.streams import S_ANALOG, S_INIT, S_LOS, S_RARE, S_WATER
from peebot_sim.truth import TRUTH_KINDS, TruthEvent, write_truth_lines
from peebot_sim.urine import UrineSystem

__all__ = [
    "AOS_STATUS_CLASS",
    "ESSENTIAL_ITEMS",
    "LOS_STATUS_CLASS",
    "TRUTH_KINDS",
    "ScenarioEvent",
    "SimConfig",
    "TelemetryModel",
    "TruthEvent",
    "Update",
    "make_fields",
    "parse_scenario",
]

WPA_STANDBY = 3
WPA_PROCESS = 4

# Never thinned when the feed runs fast: the urine/water system and the signal items.
ESSENTIAL_ITEMS = frozenset(
    {TIME_ITEM, YEAR_ITEM, UPA_STATE, URINE_TANK, WPA_STATE, WPA_STEP, WASTE_WATER, CLEAN_WATER}
)

BLOCK_S = 3600
WATER_STEP_S = 10


# ---------------------------------------------------------------- helpers


def _fmt(q: int, decimals: int) -> str:
    if decimals <= 0:
        return str(q)
    sign = "-" if q < 0 else ""
    q = abs(q)
    scale = 10**decimals
    return f"{sign}{q // scale}.{q % scale:0{decimals}d}"


# ---------------------------------------------------------------- the model


class TelemetryModel:
    """`generate(until)` yields `Update`s in simulated-time order; `truth` lists what happened."""

    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = cfg = config or SimConfig()
        self.start = cfg.start
        self.t0 = cfg.start.timestamp()
        self.seed = cfg.seed
        self.channels = load_catalog()
        self.by_id = {c.item_id: c for c in self.channels}
        self.profiles = {c.item_id: profile_for(c) for c in self.channels}
        self.codes = {c.item_id: enum_codes_of(c) for c in self.channels}
        self.emit_items: frozenset[str] | None = (
            frozenset(cfg.items) if cfg.items is not None else None
        )
        self.scenario = parse_scenario(list(cfg.scenario))
        self._served_until = self.t0
        self._buf: list[tuple[float, int, str, str, str, str]] = []
        self._pos = 0
        self._block = 0
        # LOS schedule: sorted, non-overlapping [start, end) offsets in whole seconds
        self._los: list[tuple[int, int]] = []
        self._los_days = 0
        self._scenario_los = sorted(
            ((int((e.time(self.start) - self.start).total_seconds()), e) for e in self.scenario),
            key=lambda pair: pair[0],
        )
        self._init_state()

    # ------------------------------------------------------------ public API

    @property
    def truth(self) -> list[TruthEvent]:
        """Ground-truth events that started before the last generated time."""
        served = datetime.fromtimestamp(self._served_until, UTC)
        return [e for e in self.urine.truth if e.start < served]

    def write_truth(self, path: str | Path, events: Iterable[TruthEvent] | None = None) -> int:
        return write_truth_lines(path, self.truth if events is None else events)

    def initial_fields(self) -> dict[str, dict[str, str]]:
        """Every item's fields at the start (the snapshot a client gets before any update)."""
        when = self.start
        status = LOS_STATUS_CLASS if self._in_los(0) else AOS_STATUS_CLASS
        out = {}
        for item, value in self._initial_values.items():
            cls = status if item == TIME_ITEM else AOS_STATUS_CLASS
            out[item] = make_fields(when, value, cls, self._calibrated(item, value))
        return out

    def generate(self, until: datetime, items: Collection[str] | None = None) -> Iterator[Update]:
        """Updates with sim_time < until, continuing from where the last call stopped."""
        limit = until.timestamp()
        only = frozenset(items) if items is not None else None
        while True:
            if self._pos >= len(self._buf):
                if self.t0 + self._block * BLOCK_S >= limit:
                    break
                self._buf = self._compute_block(self._block)
                self._pos = 0
                self._block += 1
                continue
            t, _order, item, value, cls, cal = self._buf[self._pos]
            if t >= limit:
                break
            self._pos += 1
            self._served_until = max(self._served_until, t)
            if only is not None and item not in only:
                continue
            yield Update(t, item, value, cls, cal)
        self._served_until = max(self._served_until, limit)

    def nominal_rate(self, essential: bool | None = None) -> float:
        """Approximate updates/s at speed 1 (all, only essential, or only non-essential)."""
        total = 0.0
        for item in self.by_id:
            prof = self.profiles[item]
            if essential is not None and prof.essential != essential:
                continue
            _lo, hi = self.expected_daily_updates(item)
            total += hi / DAY_S
        return total

    def expected_daily_updates(self, item: str, scale: float | None = None) -> tuple[int, int]:
        """The range of updates a simulated day should hold for an item (model statistics)."""
        cfg = self.config
        prof = self.profiles[item]
        scale = cfg.analog_interval_scale if scale is None else scale
        if prof.kind == "time":
            n = DAY_S / cfg.time_tick_s
            return int(n * 0.6), int(n) + 100
        if prof.kind == "year":
            return 0, 2
        if prof.kind == "upa":
            return 0, 12
        if prof.kind == "urine":
            return 30, 4000
        if prof.kind == "water":
            if item == WASTE_WATER:
                return 3000, DAY_S // WATER_STEP_S
            if item == CLEAN_WATER:
                return 1000, DAY_S // WATER_STEP_S
            return 0, 12
        if prof.kind in ("enum", "rare", "counter"):
            return 0, int(prof.per_day * 3 + 8)
        samples = DAY_S / (prof.interval_s * scale)
        lo = int(samples * 0.3) if self._changes_often(prof) else 0
        return lo, int(samples) + 2

    def _changes_often(self, prof: Profile) -> bool:
        quantum = 10.0 ** (-prof.decimals)
        return (
            prof.kind in ("wrap", "clock")
            or prof.sd * self.config.noise >= quantum
            or (prof.amp * 2 * math.pi / prof.period_s * prof.interval_s >= quantum)
        )

    # ------------------------------------------------------------ state

    def _init_state(self) -> None:
        cfg = self.config
        rng = streams.rng(self.seed, S_INIT)
        level = cfg.initial_level if cfg.initial_level is not None else rng.uniform(20, 60)
        self.urine = UrineSystem(cfg, self.start, level, self.scenario)
        # water system
        self.waste = float(rng.uniform(25, 55))
        self.clean = float(rng.uniform(45, 85))
        self.wpa = WPA_STANDBY
        self.wpa_step = 0
        self.wpa_since = 0
        # per-channel last emitted values, seeded with the initial snapshot
        self.last: dict[str, str] = {}
        self._initial_values: dict[str, str] = {}
        for ch in self.channels:
            value = self._initial_value(ch, rng)
            self._initial_values[ch.item_id] = value
            self.last[ch.item_id] = value
        self.rare_state: dict[str, float] = {}
        self.last_q: dict[str, int] = {}

    def _initial_value(self, ch: Channel, rng: np.random.Generator) -> str:
        prof = self.profiles[ch.item_id]
        item = ch.item_id
        if prof.kind == "time":
            return format_timestamp(self.start)
        if prof.kind == "year":
            return str(self.start.year)
        if item == URINE_TANK:
            return str(self.urine.reported)
        if item == UPA_STATE:
            return str(self.urine.upa)
        if item == WASTE_WATER:
            return _fmt(round(self.waste * 100), 2)
        if item == CLEAN_WATER:
            return _fmt(round(self.clean * 100), 2)
        if item == WPA_STATE:
            return str(self.wpa)
        if item == WPA_STEP:
            return str(self.wpa_step)
        if prof.kind == "enum":
            return str(nominal_code(self.codes[item]))
        if prof.kind in ("rare", "counter"):
            return _fmt(round(prof.base * 10**prof.decimals), prof.decimals)
        values = self._sampled_values(item, prof, np.array([self.t0]), None)
        return _fmt(int(values[0]), prof.decimals)

    def _calibrated(self, item: str, value: str) -> str:
        codes = self.codes.get(item)
        if codes:
            try:
                return codes.get(int(float(value)), value)
            except ValueError:
                return value
        return value

    # ------------------------------------------------------------ LOS schedule

    def _ensure_los(self, until_offset: int) -> None:
        cfg = self.config
        changed = False
        while self._los_days * DAY_S < until_offset + DAY_S:
            d = self._los_days
            self._los_days += 1
            if cfg.random_events and cfg.los_per_day > 0:
                rng = streams.rng(self.seed, S_LOS, d)
                n = int(rng.poisson(cfg.los_per_day))
                starts = np.sort(rng.uniform(0, DAY_S, n))
                durs = rng.uniform(cfg.los_minutes[0] * 60, cfg.los_minutes[1] * 60, n)
                for s, dur in zip(starts, durs, strict=True):
                    begin = d * DAY_S + int(s)
                    if begin >= 120:  # keep the first snapshot in signal
                        self._los.append((begin, begin + int(dur)))
                        changed = True
            for offset, ev in self._scenario_los:
                if ev.kind == "los" and d * DAY_S <= offset < (d + 1) * DAY_S:
                    dur = ev.duration or timedelta(minutes=10)
                    self._los.append((offset, offset + int(dur.total_seconds())))
                    changed = True
        if changed:
            merged: list[tuple[int, int]] = []
            for s, e in sorted(self._los):
                if merged and s <= merged[-1][1]:
                    merged[-1] = (merged[-1][0], max(merged[-1][1], e))
                else:
                    merged.append((s, e))
            self._los = merged
            self._los_starts = np.array([s for s, _ in merged], dtype=np.int64)
            self._los_ends = np.array([e for _, e in merged], dtype=np.int64)

    def _in_los(self, offset: float) -> bool:
        self._ensure_los(int(offset))
        i = bisect.bisect_right(self._los, (offset, math.inf)) - 1
        return i >= 0 and self._los[i][0] <= offset < self._los[i][1]

    def _los_mask(self, offsets: np.ndarray) -> np.ndarray:
        if not self._los:
            return np.zeros(len(offsets), dtype=bool)
        idx = np.searchsorted(self._los_starts, offsets, side="right") - 1
        ok = idx >= 0
        mask = np.zeros(len(offsets), dtype=bool)
        mask[ok] = offsets[ok] < self._los_ends[idx[ok]]
        return mask

    def los_intervals(self) -> list[tuple[datetime, datetime]]:
        """LOS periods scheduled so far (UTC)."""
        return [
            (self.start + timedelta(seconds=s), self.start + timedelta(seconds=e))
            for s, e in self._los
        ]

    # ------------------------------------------------------------ random events

    def _asleep(self, offset: int) -> bool:
        """Whether the crew sleeps at this offset (few toilet uses, no transfers)."""
        sleep_from, sleep_to = self.config.sleep_utc_hours
        when = self.t0 + offset
        hour = (when % DAY_S) / 3600.0
        if sleep_from > sleep_to:
            return hour >= sleep_from or hour < sleep_to
        return sleep_from <= hour < sleep_to

    # ------------------------------------------------------------ one block of updates

    def _compute_block(self, k: int) -> list[tuple[float, int, str, str, str, str]]:
        b0, b1 = k * BLOCK_S, (k + 1) * BLOCK_S
        self._ensure_los(b1)
        self.urine.schedule_until(b1, self._asleep)
        out: list[tuple[float, int, str, str, str, str]] = []
        in_los = self._los_mask(np.arange(b0, b1, dtype=np.int64))
        self._block_time(b0, b1, out)
        upa_by_second = self.urine.run_block(
            k,
            b0,
            b1,
            in_los.tolist(),
            self._los,
            lambda off, order, item, value: self._emit(out, off, order, item, value),
        )
        self._block_water(k, b0, b1, upa_by_second, out)
        self._block_sampled(k, b0, b1, out)
        self._block_rare(k, b0, b1, out)
        out.sort(key=lambda e: (e[0], e[1]))
        if self.emit_items is not None:
            out = [e for e in out if e[2] in self.emit_items]
        return out

    def _emit(
        self,
        out: list[tuple[float, int, str, str, str, str]],
        offset: float,
        order: int,
        item: str,
        value: str,
        cls: str = AOS_STATUS_CLASS,
    ) -> None:
        self.last[item] = value
        out.append((self.t0 + offset, order, item, value, cls, self._calibrated(item, value)))

    def _block_time(self, b0: int, b1: int, out: list[Any]) -> None:
        tick = self.config.time_tick_s
        j0 = math.ceil(b0 / tick)
        j1 = math.ceil(b1 / tick)
        offsets = np.arange(j0, j1, dtype=np.float64) * tick
        if self.emit_items is not None and TIME_ITEM not in self.emit_items:
            offsets = offsets[:0]  # nobody wants the ticks: skip formatting them
        mask = self._los_mask(offsets) if len(offsets) else np.zeros(0, dtype=bool)
        t0 = self.t0
        for off in offsets[~mask].tolist():
            if off == 0:
                continue  # the snapshot already carries the start
            when = datetime.fromtimestamp(t0 + off, UTC)
            value = format_timestamp(when)
            out.append((t0 + off, 0, TIME_ITEM, value, AOS_STATUS_CLASS, value))
        for s, e in self._los:
            if b0 <= s < b1:
                value = format_timestamp(datetime.fromtimestamp(t0 + s, UTC))
                out.append((t0 + s, 0, TIME_ITEM, value, LOS_STATUS_CLASS, value))
            if b0 <= e < b1 and e % tick:
                # make sure the signal is announced the moment it returns
                value = format_timestamp(datetime.fromtimestamp(t0 + e, UTC))
                out.append((t0 + e, 0, TIME_ITEM, value, AOS_STATUS_CLASS, value))
        # the year item: on New Year (or when the signal returns after it)
        year_start = datetime(datetime.fromtimestamp(t0 + b0, UTC).year + 1, 1, 1, tzinfo=UTC)
        ny = year_start.timestamp() - t0
        if b0 <= ny < b1:
            at = ny
            i = bisect.bisect_right(self._los, (ny, math.inf)) - 1
            if i >= 0 and self._los[i][0] <= ny < self._los[i][1]:
                at = self._los[i][1]
            self._emit(out, at, 1, YEAR_ITEM, str(year_start.year))

    def _block_water(self, k: int, b0: int, b1: int, upa: bytearray, out: list[Any]) -> None:
        noise = self.config.noise
        rng = streams.rng(self.seed, S_WATER, k)
        first = math.ceil((b0 - 3) / WATER_STEP_S) * WATER_STEP_S + 3
        offsets = list(range(first, b1, WATER_STEP_S))
        n = len(offsets)
        zw = (rng.standard_normal(n) * 0.02 * noise).tolist()
        zc = (rng.standard_normal(n) * 0.006 * noise).tolist()
        dispense = rng.uniform(0, 1, n).tolist()
        dispense_amt = rng.uniform(4.0, 6.0, n).tolist()
        p_dispense = 3.0 / (DAY_S / WATER_STEP_S)
        los = self._los_mask(np.array(offsets, dtype=np.int64)).tolist() if n else []
        h = WATER_STEP_S / 3600.0
        for i, t in enumerate(offsets):
            processing_urine = upa[t - b0] if 0 <= t - b0 < len(upa) else 0
            self.waste += (0.8 + 1.5 * processing_urine) * h
            if self.wpa == WPA_STANDBY and self.waste >= 65 and self.clean < 90:
                self.wpa, self.wpa_step, self.wpa_since = WPA_PROCESS, 2, t
            elif self.wpa == WPA_PROCESS:
                if self.wpa_step == 2 and t - self.wpa_since >= 900:
                    self.wpa_step = 4
                if self.wpa_step == 4:
                    self.waste -= 6.0 * h
                    self.clean += 4.5 * h
                if self.waste <= 12 or self.clean >= 97:
                    self.wpa, self.wpa_step = WPA_STANDBY, 0
            if dispense[i] < p_dispense and self.clean > 15:
                self.clean -= dispense_amt[i]
            self.waste = min(100.0, max(0.0, self.waste))
            self.clean = min(100.0, max(0.0, self.clean))
            if los[i]:
                continue
            for item, value in (
                (WPA_STATE, str(self.wpa)),
                (WPA_STEP, str(self.wpa_step)),
                (WASTE_WATER, _fmt(round((self.waste + zw[i]) * 100), 2)),
                (CLEAN_WATER, _fmt(round((self.clean + zc[i]) * 100), 2)),
            ):
                if self.last[item] != value:
                    self._emit(out, t, 4, item, value)

    def _sampled_values(
        self, item: str, prof: Profile, times: np.ndarray, rng: np.random.Generator | None
    ) -> np.ndarray:
        """Quantised values (integers in units of 10**-decimals) of a sampled channel."""
        h = streams.crc(item)
        phase = (h % 3600) / 3600.0 * 2 * math.pi
        if prof.kind == "wrap":
            v = np.mod(phase * 180 / math.pi + 360.0 * (times - self.t0) / ORBIT_S, 360.0)
        elif prof.kind == "clock":
            year0 = datetime(self.start.year, 1, 1, tzinfo=UTC).timestamp()
            v = times - year0
        else:
            sign = 1 if (h >> 12) % 2 else -1
            base = prof.base * (1 + ((h >> 4) % 100 - 50) / 1000.0)
            v = base + sign * prof.amp * np.sin(
                2 * math.pi * (times - self.t0) / prof.period_s + phase
            )
        if rng is not None and prof.sd > 0 and self.config.noise > 0:
            v = v + rng.standard_normal(len(times)) * prof.sd * self.config.noise
        return np.round(v * 10**prof.decimals).astype(np.int64)

    def _block_sampled(self, k: int, b0: int, b1: int, out: list[Any]) -> None:
        scale = max(0.01, self.config.analog_interval_scale)
        emit = self.emit_items
        for item, prof in self.profiles.items():
            if prof.kind not in ("wave", "wrap", "clock"):
                continue
            if emit is not None and item not in emit:
                continue
            interval = prof.interval_s * scale
            h = streams.crc(item)
            offset0 = (h % 1000) / 1000.0 * prof.interval_s
            m0 = math.ceil((b0 - offset0) / interval)
            m1 = math.ceil((b1 - offset0) / interval)
            if m1 <= m0:
                continue
            offs = offset0 + np.arange(m0, m1) * interval
            offs = offs[offs > 0]
            if not len(offs):
                continue
            keep = ~self._los_mask(offs)
            offs = offs[keep]
            if not len(offs):
                continue
            rng = streams.rng(self.seed, S_ANALOG, h, k)
            q = self._sampled_values(item, prof, self.t0 + offs, rng)
            last_q = self.last_q.get(item)
            if last_q is None:
                last_q = round(float(self.last[item]) * 10**prof.decimals)
            prev = np.concatenate(([last_q], q[:-1]))
            changed = q != prev
            if not changed.any():
                continue
            dec = prof.decimals
            t0 = self.t0
            for off, qv in zip(offs[changed].tolist(), q[changed].tolist(), strict=True):
                value = _fmt(qv, dec)
                out.append((t0 + off, 5, item, value, AOS_STATUS_CLASS, value))
            self.last_q[item] = int(q[changed][-1])
            self.last[item] = _fmt(self.last_q[item], dec)

    def _block_rare(self, k: int, b0: int, b1: int, out: list[Any]) -> None:
        emit = self.emit_items
        los_ends = [e for _, e in self._los if b0 <= e < b1]
        for item, prof in self.profiles.items():
            if prof.kind not in ("enum", "rare", "counter"):
                continue
            if emit is not None and item not in emit:
                continue
            current = self.rare_state.get(item)
            if current is None:
                current = float(self.last[item])
            rate = prof.per_day / DAY_S * (self.config.noise if prof.kind != "counter" else 1)
            rng = streams.rng(self.seed, S_RARE, streams.crc(item), k)
            n = int(rng.poisson(rate * BLOCK_S)) if rate > 0 else 0
            times = np.sort(rng.integers(b0, b1, n)).tolist() if n else []
            draws = rng.uniform(0, 1, n).tolist() if n else []
            for t, u in zip(times, draws, strict=True):
                current = self._rare_next(item, prof, current, u)
                if t > 0 and not self._in_los(t):
                    self._emit_rare(out, t, item, prof, current)
            self.rare_state[item] = current
            # after a loss of signal, resend what changed while nobody could see it
            for e in los_ends:
                self._emit_rare(out, e, item, prof, current)

    def _rare_next(self, item: str, prof: Profile, current: float, u: float) -> float:
        if prof.kind == "counter":
            return current + 1
        if prof.kind == "enum":
            codes = sorted(self.codes[item])
            nominal = nominal_code(self.codes[item])
            if int(current) != nominal:
                return float(nominal)
            others = [c for c in codes if c != nominal]
            return float(others[int(u * len(others)) % len(others)])
        return prof.base + (u * 2 - 1) * prof.amp

    def _emit_rare(self, out: list[Any], t: int, item: str, prof: Profile, current: float) -> None:
        dec = 0 if prof.kind in ("enum", "counter") else prof.decimals
        value = _fmt(round(current * 10**dec), dec)
        if self.last[item] != value:
            self._emit(out, t, 6, item, value)
