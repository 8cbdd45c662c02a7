"""A seeded physical model of the ISS Live feed: all 337 catalogue items, with ground truth.

The urine system is calibrated on the real recordings in ../shared/data/iss/ (DESIGN.md
section 2): toilet uses raise `NODE3000005` by 2-4 % at about 1 % per 5 s; bulk transfers by
30-60 % at about 1 % per 3-4 s; while the urine processor (`NODE3000004`) is in state 16 the
tank drains about 1 % per 4-5 min down to a low level, then the processor goes to 32
(STANDBY) until the tank is full enough again. The tank reports integers; a correlated sensor
noise (only while the processor runs, as in the 2023 recording) makes the value flip between
neighbouring integers for a minute or two at every boundary crossing. Loss-of-signal (LOS)
periods silence every item; `TIME_000001` announces them with a non-24 Status.Class.

Everything random is drawn from streams keyed by (seed, component, block), so the output
does not depend on how `generate()` is chunked, and the urine system, water system, LOS and
time items do not depend on the thinning of the other channels.

Simulated time is processed in one-hour blocks: a block's updates are computed at once
(numpy for the sampled analog channels, a 1-s loop for the urine tank) and then yielded in
time order, so a simulated day takes a few seconds.
"""

from __future__ import annotations

import bisect
import heapq
import json
import math
import re
import zlib
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
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

AOS_STATUS_CLASS = "24"
LOS_STATUS_CLASS = "0"  # any class other than 24 means loss of signal
STATUS_INDICATOR = "0"
STATUS_COLOR = "GREEN"

WASTE_WATER = "NODE3000008"
CLEAN_WATER = "NODE3000009"
WPA_STATE = "NODE3000006"
WPA_STEP = "NODE3000007"
UPA_NORMAL = 16
UPA_STANDBY = 32
WPA_STANDBY = 3
WPA_PROCESS = 4

# Never thinned when the feed runs fast: the urine/water system and the signal items.
ESSENTIAL_ITEMS = frozenset(
    {TIME_ITEM, YEAR_ITEM, UPA_STATE, URINE_TANK, WPA_STATE, WPA_STEP, WASTE_WATER, CLEAN_WATER}
)

ORBIT_S = 92.9 * 60
BLOCK_S = 3600
DAY_S = 86400
WATER_STEP_S = 10

TRUTH_KINDS = ("urination", "bulk_transfer", "upa_start", "upa_stop", "los")

# stream ids for the random generators
_S_EVENTS, _S_SCENARIO, _S_UPA, _S_TANK, _S_LOS, _S_WATER, _S_RARE, _S_ANALOG, _S_INIT = range(
    101, 110
)


# ---------------------------------------------------------------- public data types


@dataclass(frozen=True)
class ScenarioEvent:
    """A scheduled event: `use`, `transfer` or `los`, at an offset from the start or a time."""

    kind: str
    at: timedelta | datetime
    amount: float | None = None  # % of the tank (use, transfer)
    duration: timedelta | None = None  # los

    def time(self, start: datetime) -> datetime:
        return self.at if isinstance(self.at, datetime) else start + self.at


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

    def __post_init__(self) -> None:
        if self.start.tzinfo is None:
            self.start = self.start.replace(tzinfo=UTC)
        self.start = self.start.astimezone(UTC)


@dataclass
class TruthEvent:
    kind: str  # urination | bulk_transfer | upa_start | upa_stop | los
    start: datetime
    end: datetime
    level_before: float
    level_after: float
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["start"] = self.start.isoformat()
        d["end"] = self.end.isoformat()
        d["level_before"] = round(self.level_before, 3)
        d["level_after"] = round(self.level_after, 3)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TruthEvent:
        return cls(
            d["kind"],
            datetime.fromisoformat(d["start"]),
            datetime.fromisoformat(d["end"]),
            float(d["level_before"]),
            float(d["level_after"]),
            dict(d.get("meta") or {}),
        )


class Update:
    """One update as the feed sends it. `fields` (the 6 Lightstreamer strings) is built lazily."""

    __slots__ = ("calibrated", "item_id", "status_class", "t", "value")

    def __init__(
        self, t: float, item_id: str, value: str, status_class: str, calibrated: str
    ) -> None:
        self.t = t  # POSIX seconds of simulated time
        self.item_id = item_id
        self.value = value
        self.status_class = status_class
        self.calibrated = calibrated

    @property
    def sim_time(self) -> datetime:
        return datetime.fromtimestamp(self.t, UTC)

    @property
    def fields(self) -> dict[str, str]:
        return make_fields(self.sim_time, self.value, self.status_class, self.calibrated)

    def __repr__(self) -> str:
        return f"Update({self.sim_time.isoformat()}, {self.item_id}, {self.value!r})"


def make_fields(
    when: datetime, value: str, status_class: str = AOS_STATUS_CLASS, calibrated: str | None = None
) -> dict[str, str]:
    """The six ISS Live fields of a reading."""
    return {
        "TimeStamp": format_timestamp(when),
        "Value": value,
        "Status.Class": status_class,
        "Status.Indicator": STATUS_INDICATOR,
        "Status.Color": STATUS_COLOR,
        "CalibratedData": value if calibrated is None else calibrated,
    }


# ---------------------------------------------------------------- scenario parsing

_OFFSET = re.compile(r"^\+?(\d+(?:\.\d+)?)\s*([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _parse_duration(text: str) -> timedelta:
    m = _OFFSET.match(text.strip())
    if not m:
        raise ValueError(f"bad duration {text!r} (use e.g. 90s, 5m, 2h)")
    return timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])


def _parse_at(text: str) -> timedelta | datetime:
    text = text.strip()
    if text.startswith("+"):
        return _parse_duration(text)
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _parse_event_text(text: str) -> ScenarioEvent:
    kind, sep, rest = text.strip().partition("@")
    if not sep or not kind.isalpha():
        raise ValueError(f"bad scenario event {text!r} (use e.g. use@+60s:3)")
    rest, slash, duration = rest.partition("/")
    amount: float | None = None
    try:
        at = _parse_at(rest)
    except ValueError:
        head, colon, tail = rest.rpartition(":")
        if not colon:
            raise ValueError(f"bad scenario time in {text!r}") from None
        try:
            amount = float(tail)
            at = _parse_at(head)
        except ValueError:
            raise ValueError(f"bad scenario time or amount in {text!r}") from None
    return ScenarioEvent(
        kind=kind, at=at, amount=amount, duration=_parse_duration(duration) if slash else None
    )


def parse_scenario(spec: str | Path | Iterable[Any]) -> list[ScenarioEvent]:
    """`"use@+60s,use@+3m:3.5,transfer@+10m:45,los@+1h/10m"`, a JSON file of
    `[{"kind": "use", "at": "+60s", "amount": 3}, ...]`, or a list of those dicts/strings.

    `kind@AT[:AMOUNT][/DURATION]`: AT is `+<n>[s|m|h|d]` from the start or an ISO UTC time."""
    if isinstance(spec, Path) or (
        isinstance(spec, str) and spec.strip().endswith(".json") and Path(spec).exists()
    ):
        return parse_scenario(json.loads(Path(spec).read_text(encoding="utf-8")))
    if isinstance(spec, str):
        parts: list[Any] = [p for p in spec.split(",") if p.strip()]
    else:
        parts = list(spec)
    events = []
    for part in parts:
        if isinstance(part, ScenarioEvent):
            events.append(part)
        elif isinstance(part, dict):
            events.append(
                ScenarioEvent(
                    kind=str(part["kind"]),
                    at=_parse_at(str(part["at"])),
                    amount=float(part["amount"]) if part.get("amount") is not None else None,
                    duration=_parse_duration(str(part["duration"]))
                    if part.get("duration")
                    else None,
                )
            )
        else:
            events.append(_parse_event_text(str(part)))
    for ev in events:
        if ev.kind not in ("use", "transfer", "los"):
            raise ValueError(f"unknown scenario event kind {ev.kind!r} (use, transfer, los)")
    return events


# ---------------------------------------------------------------- channel profiles


@dataclass(frozen=True)
class Profile:
    """How one channel behaves. kinds: time, year, urine, upa, water (special systems);
    wave (sampled: base + amp*sin + noise), wrap (rotating angle), clock (seconds count);
    enum (rare code changes), rare (rare analog steps), counter (rare +1 steps)."""

    kind: str
    interval_s: float = 0.0
    base: float = 0.0
    amp: float = 0.0
    period_s: float = ORBIT_S
    sd: float = 0.0
    decimals: int = 2
    per_day: float = 0.0  # rare kinds: changes per day
    essential: bool = False


def _decimals(ch: Channel) -> int:
    m = re.search(r"\{0:[fd](\d+)\}", ch.format_spec)
    return int(m.group(1)) if m else 2


def _codes(ch: Channel) -> dict[int, str]:
    if ch.enum_codes:
        return dict(ch.enum_codes)
    codes = {}
    for part in re.split(r"\|", ch.format_spec):
        m = re.match(r"^\s*(-?\d+)\s*=\s*(.*?)\s*$", part)
        if m:
            codes[int(m.group(1))] = m.group(2)
    return codes if len(codes) >= 2 else {}


_NOMINAL_WORDS = (
    "NORMAL",
    "PROCESS",
    "NOT-OFF OK",
    "IN USE",
    "ENABLED",
    "ACTIVE",
    "AUTOTRACK",
    "ON",
    "LOCKED",
    "CMG ATTITUDE CONTROL",
    "DOING POSITION FIXES",
    "MICROGRAVITY",
    "STANDARD",
)


def nominal_code(codes: dict[int, str]) -> int:
    """The code a channel normally shows (a plausible 'all is well' state)."""
    for word in _NOMINAL_WORDS:
        for code, label in codes.items():
            if label.upper() == word or label.upper().startswith(word + " "):
                return code
    return min(codes)


def profile_for(ch: Channel) -> Profile:
    item, desc, units = ch.item_id, ch.description.lower(), ch.units.upper()
    dec = _decimals(ch)
    if item == TIME_ITEM:
        return Profile("time", essential=True)
    if item == YEAR_ITEM:
        return Profile("year", essential=True)
    if item in (URINE_TANK, UPA_STATE):
        return Profile("urine" if item == URINE_TANK else "upa", essential=True)
    if item in (WASTE_WATER, CLEAN_WATER, WPA_STATE, WPA_STEP):
        return Profile("water", decimals=2, essential=True)
    if item == "NODE3000011":  # O2 production rate, set by the crew a few times a day
        return Profile("rare", base=5.4, amp=1.8, decimals=2, per_day=3)
    if _codes(ch):
        return Profile("enum", per_day=0.5 if item != "USLAB000081" else 4.0)
    if units == "INTEGR" or ("count" in desc and units in ("ND", "INTEGR")):
        return Profile("counter", base=1000 if "command" in desc else 6, decimals=0, per_day=24)
    if "number of control moment" in desc:
        return Profile("rare", base=4, decimals=0, per_day=0.1)
    if item.startswith("CSA"):  # robotics: parked most of the time
        return Profile(
            "rare", base=180.0 if units == "DEG" else 300.0, amp=150, decimals=2, per_day=2
        )
    if ("joint angle" in desc and "sarj" in desc) or "commanded position" in desc:
        return Profile("wrap", interval_s=10, sd=0.01, decimals=dec)
    if "trrj" in desc:
        return Profile("wave", interval_s=30, base=0, amp=60, sd=0.02, decimals=dec)
    if "beta gimble" in desc:
        return Profile(
            "wave", interval_s=60, base=180, amp=3, period_s=DAY_S, sd=0.03, decimals=dec
        )
    if "gimbal" in desc or "sgant" in desc:
        return Profile("wave", interval_s=10, base=0, amp=70, sd=0.02, decimals=dec)
    if "quaternion" in desc:
        return Profile("wave", interval_s=10, base=0.2, amp=0.5, sd=2e-4, decimals=dec)
    if units == "FT":  # J2000 state vector position
        return Profile("wave", interval_s=10, base=0, amp=2.23e7, sd=0, decimals=dec)
    if units == "FT/S":
        return Profile("wave", interval_s=10, base=0, amp=25_100, sd=0, decimals=dec)
    if units in ("RAD", "RAD/S"):
        return Profile("wave", interval_s=10, base=0, amp=0.02, sd=0.004, decimals=dec)
    if units == "FT-LB":
        return Profile("wave", interval_s=10, base=0, amp=3, sd=1.5, decimals=dec)
    if units == "FT-LB-S":
        return Profile("wave", interval_s=60, base=4000, amp=1500, sd=5, decimals=dec)
    if units == "RPM":
        return Profile("wave", interval_s=60, base=6600, amp=0.5, sd=0.8, decimals=dec)
    if units == "KG":
        return Profile("rare", base=454_000, amp=2000, decimals=0, per_day=0.05)
    if units == "S":
        return Profile("clock", interval_s=10, decimals=min(dec, 3))
    if "solar beta" in desc:
        return Profile("wave", interval_s=300, base=0, amp=60, period_s=60 * DAY_S, decimals=dec)
    if units in ("M", "M/S"):  # Kurs range/rate: nothing docking
        return Profile("rare", base=0, amp=0, decimals=dec, per_day=0.1)
    if units == "PCT":
        return Profile("wave", interval_s=30, base=30, amp=10, sd=0.01, decimals=dec)
    if units == "G":
        return Profile("wave", interval_s=60, base=0.01, amp=0.002, sd=0.003, decimals=dec)
    if units == "AMP":
        return Profile("wave", interval_s=60, base=0.6, amp=0.02, sd=0.006, decimals=dec)
    if units == "DEGF":
        return Profile("wave", interval_s=60, base=80, amp=1.5, sd=0.05, decimals=dec)
    if units in ("PSIA", "PSI") or "pressure" in desc:
        base = (
            3.05
            if "ppo2" in desc
            else 11.4
            if "ppn2" in desc
            else 0.06
            if "ppco2" in desc
            else 14.65
        )
        return Profile("wave", interval_s=60, base=base, amp=0.01, sd=0.006, decimals=dec)
    if "drive voltage" in desc:
        return Profile("wave", interval_s=30, base=155, amp=5, sd=0.05, decimals=dec)
    if "drive current" in desc:
        return Profile("wave", interval_s=30, base=60, amp=40, sd=0.05, decimals=dec)
    if "voltage" in desc:
        return Profile("wave", interval_s=60, base=124, amp=0.3, sd=0.04, decimals=dec)
    if "current" in desc:
        return Profile("wave", interval_s=60, base=1.5, amp=0.5, sd=0.01, decimals=dec)
    if "quantity" in desc:
        return Profile(
            "wave", interval_s=120, base=55, amp=0.3, period_s=DAY_S, sd=0.03, decimals=dec
        )
    if "flowrate" in desc:
        return Profile("wave", interval_s=60, base=1450, amp=20, sd=1.0, decimals=dec)
    if "kpa" in desc:
        return Profile("wave", interval_s=60, base=2150, amp=15, sd=1.0, decimals=dec)
    if "temp" in desc:
        base = 3.5 if "deg c" in desc else 45 if "fluid" in desc else 72
        return Profile("wave", interval_s=60, base=base, amp=1.0, sd=0.03, decimals=dec)
    return Profile("wave", interval_s=60, base=50, amp=1, sd=0.03, decimals=dec)


# ---------------------------------------------------------------- helpers


def _crc(text: str) -> int:
    return zlib.crc32(text.encode())


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed & 0xFFFFFFFF, *keys])


def _fmt(q: int, decimals: int) -> str:
    if decimals <= 0:
        return str(q)
    sign = "-" if q < 0 else ""
    q = abs(q)
    scale = 10**decimals
    return f"{sign}{q // scale}.{q % scale:0{decimals}d}"


@dataclass
class _Pending:
    t: int  # seconds from start
    kind: str  # use | transfer
    amount: float
    s_per_pct: float
    source: str
    crew_member: int | None = None

    def __lt__(self, other: _Pending) -> bool:
        return (self.t, self.kind) < (other.t, other.kind)


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
        self.codes = {c.item_id: _codes(c) for c in self.channels}
        self.emit_items: frozenset[str] | None = (
            frozenset(cfg.items) if cfg.items is not None else None
        )
        self.scenario = parse_scenario(list(cfg.scenario))
        self._truth: list[TruthEvent] = []
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
        return [e for e in self._truth if e.start < served]

    def write_truth(self, path: str | Path, events: Iterable[TruthEvent] | None = None) -> int:
        rows = list(self.truth if events is None else events)
        with Path(path).open("w", encoding="utf-8") as fh:
            for ev in rows:
                fh.write(json.dumps(ev.to_json()) + "\n")
        return len(rows)

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
        rng = _rng(self.seed, _S_INIT)
        level = cfg.initial_level if cfg.initial_level is not None else rng.uniform(20, 60)
        self.level = float(level)
        self.upa = UPA_NORMAL if self.level > cfg.upa_low_pct + 1 else UPA_STANDBY
        self.upa_cycle = 0
        self.drain_rate = self._new_drain_rate()
        self.tank_noise = 0.0
        self.reported = round(self.level)
        self.active: _Pending | None = None
        self.active_start = 0
        self.active_before = 0.0
        self.active_reported_before = 0
        self.active_left = 0.0
        self.pending: list[_Pending] = []
        self.event_days = 0
        self.open_los: dict[int, TruthEvent] = {}
        scenario_rng = _rng(self.seed, _S_SCENARIO)
        for ev in self.scenario:
            offset = int((ev.time(self.start) - self.start).total_seconds())
            if offset < 0 or ev.kind == "los":
                continue
            lo, hi = cfg.use_amount_pct if ev.kind == "use" else cfg.transfer_amount_pct
            rlo, rhi = cfg.use_s_per_pct if ev.kind == "use" else cfg.transfer_s_per_pct
            amount = ev.amount if ev.amount is not None else float(scenario_rng.uniform(lo, hi))
            heapq.heappush(
                self.pending,
                _Pending(
                    offset, ev.kind, amount, float(scenario_rng.uniform(rlo, rhi)), "scenario"
                ),
            )
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
            return str(self.reported)
        if item == UPA_STATE:
            return str(self.upa)
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

    def _new_drain_rate(self) -> float:
        lo, hi = self.config.drain_s_per_pct
        s_per_pct = float(_rng(self.seed, _S_UPA, self.upa_cycle).uniform(lo, hi))
        return 1.0 / s_per_pct

    # ------------------------------------------------------------ LOS schedule

    def _ensure_los(self, until_offset: int) -> None:
        cfg = self.config
        changed = False
        while self._los_days * DAY_S < until_offset + DAY_S:
            d = self._los_days
            self._los_days += 1
            if cfg.random_events and cfg.los_per_day > 0:
                rng = _rng(self.seed, _S_LOS, d)
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

    def _ensure_events(self, until_offset: int) -> None:
        cfg = self.config
        if not cfg.random_events:
            return
        while self.event_days * DAY_S < until_offset + 60:
            d = self.event_days
            self.event_days += 1
            rng = _rng(self.seed, _S_EVENTS, d)
            sleep_from, sleep_to = cfg.sleep_utc_hours
            peak = cfg.crew * cfg.uses_per_person_per_day / DAY_S * 1.3
            n = int(rng.poisson(peak * DAY_S))
            times = np.sort(rng.uniform(0, DAY_S, n))
            accept = rng.uniform(0, 1, n)
            members = rng.integers(0, max(cfg.crew, 1), n)
            amounts = rng.uniform(*cfg.use_amount_pct, n)
            rates = rng.uniform(*cfg.use_s_per_pct, n)
            for t, a, m, amt, r in zip(times, accept, members, amounts, rates, strict=True):
                offset = d * DAY_S + int(t)
                awake = not self._asleep(offset, sleep_from, sleep_to)
                if a < (1 / 1.3 if awake else 0.1 / 1.3) and offset >= 5:
                    heapq.heappush(
                        self.pending,
                        _Pending(offset, "use", float(amt), float(r), "random", int(m)),
                    )
            k = int(rng.poisson(cfg.transfers_per_day))
            for t in rng.uniform(0, DAY_S, k):
                offset = d * DAY_S + int(t)
                if self._asleep(offset, sleep_from, sleep_to) or offset < 5:
                    continue
                heapq.heappush(
                    self.pending,
                    _Pending(
                        offset,
                        "transfer",
                        float(rng.uniform(*cfg.transfer_amount_pct)),
                        float(rng.uniform(*cfg.transfer_s_per_pct)),
                        "random",
                    ),
                )

    def _asleep(self, offset: int, sleep_from: float, sleep_to: float) -> bool:
        when = self.t0 + offset
        hour = (when % DAY_S) / 3600.0
        if sleep_from > sleep_to:
            return hour >= sleep_from or hour < sleep_to
        return sleep_from <= hour < sleep_to

    # ------------------------------------------------------------ one block of updates

    def _compute_block(self, k: int) -> list[tuple[float, int, str, str, str, str]]:
        b0, b1 = k * BLOCK_S, (k + 1) * BLOCK_S
        self._ensure_los(b1)
        self._ensure_events(b1)
        out: list[tuple[float, int, str, str, str, str]] = []
        in_los = self._los_mask(np.arange(b0, b1, dtype=np.int64))
        self._block_time(b0, b1, out)
        upa_by_second = self._block_urine(k, b0, b1, in_los.tolist(), out)
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

    def _block_urine(
        self, k: int, b0: int, b1: int, in_los: list[bool], out: list[Any]
    ) -> bytearray:
        cfg = self.config
        z = _rng(self.seed, _S_TANK, k).standard_normal(b1 - b0).tolist()
        a = math.exp(-1.0 / cfg.tank_noise_tau_s)
        b = math.sqrt(1 - a * a) * cfg.tank_noise_pct * cfg.noise
        upa_by_second = bytearray(b1 - b0)
        los_starts = {s: e for s, e in self._los if b0 <= s < b1}
        los_ends = {e: s for s, e in self._los if b0 <= e < b1}
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
            if self.upa == UPA_NORMAL:
                self.tank_noise = a * self.tank_noise + b * z[j]
            else:
                self.tank_noise = 0.0
            reported = math.floor(self.level + self.tank_noise + 0.5)
            self.reported = reported = min(100, max(0, reported))
            if not in_los[j]:
                value = str(reported)
                if self.last[URINE_TANK] != value:
                    self._emit(out, t, 2, URINE_TANK, value)
                upa_value = str(self.upa)
                if self.last[UPA_STATE] != upa_value:
                    self._emit(out, t, 3, UPA_STATE, upa_value)
            # dynamics over [t, t+1)
            if self.active is not None:
                step = min(1.0 / self.active.s_per_pct, self.active_left)
                self.level += step
                self.active_left -= step
                if self.active_left <= 1e-9:
                    ev = self.active
                    self.active = None
                    kind = "urination" if ev.kind == "use" else "bulk_transfer"
                    self._record(
                        kind,
                        self.active_start,
                        t + 1,
                        self.active_before,
                        self.level,
                        {
                            "amount_pct": round(ev.amount, 3),
                            "s_per_pct": round(ev.s_per_pct, 3),
                            "source": ev.source,
                            "crew_member": ev.crew_member,
                            "scheduled_at": (self.start + timedelta(seconds=ev.t)).isoformat(),
                            "upa_state": self.upa,
                            "reported_before": self.active_reported_before,
                            "volume_ml": round(ev.amount * 80),
                        },
                    )
            if self.upa == UPA_NORMAL:
                self.level = max(0.0, self.level - self.drain_rate)
                if self.level <= cfg.upa_low_pct:
                    self._upa_change(t + 1, UPA_STANDBY)
            elif self.active is None and self.level >= cfg.upa_resume_pct:
                self._upa_change(t + 1, UPA_NORMAL)
            upa_by_second[j] = 1 if self.upa == UPA_NORMAL else 0
        return upa_by_second

    def _upa_change(self, t: int, state: int) -> None:
        before = self.upa
        self.upa = state
        if state == UPA_NORMAL:
            self.upa_cycle += 1
            self.drain_rate = self._new_drain_rate()
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
        self._truth.append(event)
        return event

    def _block_water(self, k: int, b0: int, b1: int, upa: bytearray, out: list[Any]) -> None:
        noise = self.config.noise
        rng = _rng(self.seed, _S_WATER, k)
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
        h = _crc(item)
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
            h = _crc(item)
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
            rng = _rng(self.seed, _S_ANALOG, h, k)
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
            rng = _rng(self.seed, _S_RARE, _crc(item), k)
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
