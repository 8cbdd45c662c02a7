"""Detection benchmark: real recordings, then simulated days scored against ground truth.

    uv run python bench/detection.py [--days 14] [--noise-days 4] [--window-min 60]
                                     [--out bench/out/detection] [--no-png]
                                     [--skip-real] [--skip-sim] [--fit-calibration]

(1) Runs every processor on each real recording in ../shared/data/iss/ (the 2023 urine
    files as one recording, the 2018 water files with year 2018), prints the events and
    saves a small PNG per event (the level around it) under --out. The 2023 urine events
    are checked against every held rise of 2 % or more in that file (labelled by reading
    it; the same list as tests/detectors/test_real_recordings.py).
(2) Generates simulated days with the simulator's model (`peebot_sim`), one seeded model per
    day, and runs the detectors the way Dagster does: windows of --window-min minutes, each
    reading [start - lookback, end + lookahead) plus the carried-forward value, keeping the
    events that start inside the window. Three sets of days:
    - plain: the --days days this bench always ran (seeds 101.., crew and noise varied);
    - patterns: as many days again (seeds + 500) with the two patterns of issue 16 on:
      one-sample dips inside flip noise and a slow single-step rise after every UPA stop;
    - noise: --noise-days days with no crew and no transfers, the UPA draining slowly all
      day (flips at every boundary for longer) and dips twice as often: every use reported
      there comes from noise alone.
    It scores uses and transfers against the model's truth per pattern (truth / detected /
    true positives / precision / recall), prints a reliability table of the confidence
    (bins: count, mean confidence, fraction true; and events >= c), and the posting floor
    evidence: for each candidate `PEEBOT_POST_MIN_CONFIDENCE`, how many true and false uses
    would post or wait for review.
    Then the provisional (live) uses: the live pass stores a use once min_hold_s of level
    follows its peak (flag `short_hold`); every peak candidate of each simulated day (and of
    the 2023 recording) is detected again on the readings before peak + 20..56 s, every 4 s,
    and those looks are printed by hold so far (count, distinct uses, fraction right,
    confidence), with what the posting floor would post before the full hold.
(3) --fit-calibration: fits the confidence calibration (isotonic regression of "true" on the
    detector's raw score, pooled adjacent violators in numpy) on the even-numbered simulated
    days, checks it on the odd-numbered ones, and prints the constants for
    peebot_dagster/detectors/calibration.py; then fits UrineParams.short_hold_factor on the
    provisional looks of the even days and checks it on the odd days and the 2023 recording.

Matching: a detection matches a truth event of the urine tank when its start lies in
[truth start - 30 s, truth end + 60 s], or, for a truth event that overlaps a LOS, up to the
LOS end + 60 s (the rise can only be seen when the signal returns). Each truth event and
each detection is used once (nearest start first). A detection that matches nothing is
false; it is put down to a one-sample dip when it starts within 2 min after one.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from peebot_dagster.detectors.base import (
    Event,
    Processor,
    drop_repeats,
    from_epoch_seconds,
    item_series,
    to_epoch_seconds,
    window_frame,
)
from peebot_dagster.detectors.calibration import (
    RAW_POINTS,
    calibrated_confidence,
    fit_isotonic,
)
from peebot_dagster.detectors.registry import PROCESSORS, get_processor
from peebot_dagster.detectors.upa import TANK_ITEM
from peebot_dagster.settings import DEFAULT_POST_MIN_CONFIDENCE
from peebot_ingest.recordings import read_recording, to_frame

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "iss"
DEFAULT_OUT = REPO / "bench" / "out" / "detection"

# (name, files, year) of the real recordings
REAL = [
    (
        "issp-2023",
        [
            "issp-2023/public/data/NODE3000005.txt",
            "issp-2023/NODE3000005.txt",
            "issp-2023/public/data/NODE3000004.txt",
        ],
        None,
    ),
    (
        "iss-mimic-2018",
        [
            "iss-mimic-2018/Pi/RecordedData/Data/Archive/NODE3000008.txt",
            "iss-mimic-2018/Pi/RecordedData/Data/Archive/NODE3000009.txt",
        ],
        2018,
    ),
]

# Every rise of 2 % or more that holds in the 2023 recording (first reading of the rise,
# value before, value held after, kind; None: seen only across a recorder gap).
RISES_2023 = [
    ("2023-09-18 23:30:17", "urination"),
    ("2023-09-18 23:39:10", "bulk_transfer"),
    ("2023-09-19 00:27:25", "urination"),
    ("2023-09-19 01:29:04", "urination"),
    ("2023-09-19 02:10:16", "urination"),
    ("2023-09-19 06:28:12", "urination"),
    ("2023-09-19 07:15:20", "bulk_transfer"),
    ("2023-09-19 07:57:59", None),
    ("2023-09-19 08:49:41", "urination"),
    ("2023-09-19 10:08:05", "urination"),
    ("2023-09-19 12:02:42", "urination"),
]

# the item each processor's PNG shows
PLOT_ITEM = {
    "urine_tank": "NODE3000005",
    "upa_cycle": "NODE3000005",
    "signal": "TIME_000001",
    "clean_water": "NODE3000009",
}
PLOT_SPAN = {
    "urine_tank": timedelta(minutes=10),
    "upa_cycle": timedelta(minutes=60),
    "signal": timedelta(minutes=30),
    "clean_water": timedelta(minutes=20),
}

# simulated days: (seed, crew, noise) varied day by day
SIM_DAYS = [
    (101, 6, 1.0),
    (202, 3, 0.5),
    (303, 7, 1.5),
    (404, 4, 2.0),
    (505, 6, 0.8),
    (606, 5, 1.2),
    (707, 7, 1.0),
    (808, 2, 1.0),
    (909, 6, 1.8),
    (1010, 4, 0.3),
]
SIM_ITEMS = ("TIME_000001", "NODE3000004", "NODE3000005", "NODE3000009")
# the patterns of issue 16 (peebot_sim/config.py explains each value)
PATTERNS: dict[str, Any] = {
    "dips_per_hour": 2.0,
    "slow_rise_after_stop": 1.0,
    "noise_after_stop_s": 300.0,
}
# noise alone: no crew, no transfers, a full tank draining slowly (flips at every boundary
# last longer), dips twice as often
NOISE_ONLY: dict[str, Any] = {
    "crew": 0,
    "transfers_per_day": 0.0,
    "initial_level": 95.0,
    "drain_s_per_pct": (900.0, 1200.0),
    "dips_per_hour": 4.0,
    "noise_after_stop_s": 300.0,
}
NOISE_LEVELS = (1.0, 1.5, 2.0, 2.5)
# stress: the patterns with the sensor noise 3-4.5 times the usual (flips over three values);
# not part of the goals, there to show where the detector starts to err and to give the
# calibration events that are not all right
STRESS_NOISE = (3.0, 3.5, 4.0, 4.5)
STRESS_CREW = (6, 4, 7, 3)

BINS = (0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0001)
FLOORS = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
# The floor suggested for PEEBOT_POST_MIN_CONFIDENCE weighs a wrong post against held right
# ones: a person approves a held use in seconds, a wrong post is public. It is the floor with
# the least (WRONG_POST_COST x posted wrong + held right), the lowest of equals.
WRONG_POST_COST = 10
# the posting floor the provisional section judges (PEEBOT_POST_MIN_CONFIDENCE's default)
POST_FLOOR = DEFAULT_POST_MIN_CONFIDENCE


# ------------------------------------------------------------------ part 1: real recordings


def plot_event(frame: pd.DataFrame, event: Event, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.dates import date2num

    item = PLOT_ITEM.get(event.processor, event.item_id)
    span = PLOT_SPAN.get(event.processor, timedelta(minutes=15))
    lo, hi = event.start - span, (event.end or event.start) + span
    rows = frame[(frame["item_id"] == item)]
    before = rows[rows["ts"] < pd.Timestamp(lo)].tail(1)
    rows = pd.concat(
        [before, rows[(rows["ts"] >= pd.Timestamp(lo)) & (rows["ts"] <= pd.Timestamp(hi))]]
    )
    fig, ax = plt.subplots(figsize=(4.8, 2.6), dpi=80)
    if not rows.empty:
        ts = [max(t, pd.Timestamp(lo)) for t in rows["ts"]]
        ax.step(
            [*ts, pd.Timestamp(hi)],
            [*rows["value"].tolist(), rows["value"].iloc[-1]],
            where="post",
            lw=1,
        )
    ax.axvspan(date2num(event.start), date2num(event.end or event.start), color="orange", alpha=0.3)
    ax.set_title(
        f"{event.event_type} {event.start:%Y-%m-%d %H:%M:%S}Z c={event.confidence:.2f}", fontsize=8
    )
    ax.set_ylabel(item, fontsize=7)
    ax.tick_params(labelsize=6)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def describe(e: Event) -> str:
    m = e.metadata
    parts = []
    for k in ("level_before", "level_after", "delta", "volume_ml", "drain_pct_per_hour", "reason"):
        if m.get(k) is not None:
            parts.append(f"{k}={m[k]}")
    if m.get("flags"):
        parts.append("flags=" + ",".join(m["flags"]))
    return " ".join(parts)


def check_2023(events: list[Event]) -> str:
    """Whether the urine events of 2023 are exactly the held rises, of the right kinds."""
    urine = {e.start: e for e in events if e.processor == "urine_tank"}
    found = missing = wrong = 0
    for when, kind in RISES_2023:
        e = urine.pop(datetime.fromisoformat(when).replace(tzinfo=UTC), None)
        if e is None:
            missing += 1
        elif kind is not None and e.event_type != kind:
            wrong += 1
        else:
            found += 1
    extra = len(urine)
    ok = found == len(RISES_2023) and extra == 0
    return (
        f"2023 held rises: {found}/{len(RISES_2023)} found, {missing} missed, {wrong} of the"
        f" wrong kind, {extra} other events: {'ALL HELD RISES, NOTHING ELSE' if ok else 'NOT MET'}"
    )


def run_real(out: Path | None, provisional: bool) -> list[ProvisionalSeen]:
    """Prints the events of each real recording; returns the 2023 recording's uses as the
    live pass sees them: provisional (right: it starts at a held rise of `RISES_2023` that
    is a use), then with the whole hold (hold_s = hold_window_s)."""
    print("== real recordings ==")
    seen: list[ProvisionalSeen] = []
    for name, files, year in REAL:
        paths = [DATA / f for f in files]
        if not all(p.exists() for p in paths):
            print(f"{name}: missing files, skipped")
            continue
        readings = [r for p in paths for r in read_recording(p, year=year).readings]
        frame = to_frame(readings)
        span = f"{frame['ts'].min():%Y-%m-%d %H:%M} .. {frame['ts'].max():%Y-%m-%d %H:%M} UTC"
        print(f"-- {name}: {len(frame)} readings, {span}")
        found: list[Event] = []
        for p in PROCESSORS:
            for e in p.detect(frame):
                found.append(e)
                print(
                    f"  {e.start:%Y-%m-%d %H:%M:%S} {e.event_type:<18} c={e.confidence:.2f} {describe(e)}"
                )
                if out is not None:
                    folder = out / name
                    folder.mkdir(parents=True, exist_ok=True)
                    plot_event(frame, e, folder / f"{e.start:%Y%m%dT%H%M%S}_{e.event_type}.png")
        if name == "issp-2023":
            print("  " + check_2023(found))
            if provisional:
                uses = {
                    datetime.fromisoformat(when).replace(tzinfo=UTC)
                    for when, kind in RISES_2023
                    if kind != "bulk_transfer"
                }
                for e, hold in provisional_uses(frame):
                    seen.append(ProvisionalSeen(-1, name, e, hold, e.start in uses))
                for e in found:
                    if e.processor == "urine_tank" and e.event_type == "urination":
                        hold = float(e.metadata.get("hold_s", FULL_HOLD_S))
                        seen.append(ProvisionalSeen(-1, name, e, hold, e.start in uses))
    if out is not None:
        print(f"(PNGs under {out})")
    return seen


# ------------------------------------------------------------------ part 2: simulation


@dataclass(frozen=True)
class SimDay:
    label: str  # plain | patterns | noise
    seed: int
    crew: int
    noise: float
    extra: tuple[tuple[str, Any], ...] = ()


def sim_days(days: int, noise_days: int, stress_days: int) -> list[SimDay]:
    out = []
    for d in range(days):
        seed, crew, noise = SIM_DAYS[d % len(SIM_DAYS)]
        seed += 1000 * (d // len(SIM_DAYS))
        out.append(SimDay("plain", seed, crew, noise))
    for d in range(days):
        seed, crew, noise = SIM_DAYS[d % len(SIM_DAYS)]
        seed += 500 + 1000 * (d // len(SIM_DAYS))
        out.append(SimDay("patterns", seed, crew, noise, tuple(PATTERNS.items())))
    for d in range(noise_days):
        extra = {k: v for k, v in NOISE_ONLY.items() if k != "crew"}
        out.append(
            SimDay(
                "noise",
                9000 + d,
                NOISE_ONLY["crew"],
                NOISE_LEVELS[d % len(NOISE_LEVELS)],
                tuple(extra.items()),
            )
        )
    for d in range(stress_days):
        out.append(
            SimDay(
                "stress",
                5000 + d,
                STRESS_CREW[d % len(STRESS_CREW)],
                STRESS_NOISE[d % len(STRESS_NOISE)],
                tuple(PATTERNS.items()),
            )
        )
    return out


def simulate_day(day: SimDay, start: datetime, hours: float):
    from peebot_sim.config import SimConfig
    from peebot_sim.model import TelemetryModel

    model = TelemetryModel(
        SimConfig(
            seed=day.seed,
            start=start,
            crew=day.crew,
            noise=day.noise,
            random_events=True,
            items=SIM_ITEMS,
            **dict(day.extra),
        )
    )
    rows_item: list[str] = []
    rows_t: list[float] = []
    rows_v: list[float] = []
    rows_s: list[int] = []
    for item, fields in model.initial_fields().items():  # the first snapshot
        if item in SIM_ITEMS:
            rows_item.append(item)
            rows_t.append(start.timestamp())
            rows_v.append(float(fields["Value"]))
            rows_s.append(int(fields["Status.Class"]))
    for u in model.generate(start + timedelta(hours=hours)):
        rows_item.append(u.item_id)
        rows_t.append(u.t)
        rows_v.append(float(u.value))
        rows_s.append(int(u.status_class))
    frame = pd.DataFrame(
        {
            "item_id": pd.Series(rows_item, dtype="object"),
            "ts": pd.to_datetime(np.array(rows_t) * 1e9, utc=True),
            "value": np.array(rows_v),
            "status_class": pd.array(rows_s, dtype="Int64"),
        }
    ).sort_values("ts", kind="stable", ignore_index=True)
    return frame, model.truth, model.los_intervals()


def detect_windowed(
    processor: Processor,
    frame: pd.DataFrame,
    start: datetime,
    end: datetime,
    step: timedelta,
    horizon: datetime,
) -> list[Event]:
    sub_all = frame[frame["item_id"].isin(processor.items)]
    out: list[Event] = []
    w = start
    while w < end:
        w_end = min(w + step, end)
        sub = window_frame(sub_all, w, w_end, processor.lookback, processor.lookahead)
        out += processor.detect_window(
            sub, w, w_end, horizon=min(w_end + processor.lookahead, horizon)
        )
        w = w_end
    keys = [e.event_key for e in out]
    if len(keys) != len(set(keys)):
        raise AssertionError(f"{processor.name}: an event owned by two windows")
    return out


def match(
    truths: list, events: list[Event], los: list[tuple[datetime, datetime]]
) -> list[tuple[Any, Event | None]]:
    """Greedy one-to-one matching, nearest start first."""
    pairs = []
    for ti, t in enumerate(truths):
        hi = t.end + timedelta(seconds=60)
        for s, e in los:
            if s < t.end + timedelta(seconds=5) and e > t.start:
                hi = max(hi, e + timedelta(seconds=60))
        for ei, ev in enumerate(events):
            if t.start - timedelta(seconds=30) <= ev.start <= hi:
                pairs.append((abs((ev.start - t.start).total_seconds()), ti, ei))
    pairs.sort()
    used_t: dict[int, int] = {}
    used_e: set[int] = set()
    for _, ti, ei in pairs:
        if ti in used_t or ei in used_e:
            continue
        used_t[ti] = ei
        used_e.add(ei)
    return [(t, events[used_t[ti]] if ti in used_t else None) for ti, t in enumerate(truths)]


def in_los(t, los: list[tuple[datetime, datetime]]) -> bool:
    """Whether a truth event overlaps a LOS (its rise cannot be watched)."""
    return any(s < t.end and e > t.start for s, e in los)


def pct(values: Iterable[float], q: float) -> float:
    arr = np.array(list(values), dtype=float)
    return float(np.percentile(arr, q)) if arr.size else math.nan


# A post states the time and the size of the rise: an event "says it right" when it starts
# within this long of the truth's start and its size is within the tolerance below.
RIGHT_START_S = 60.0
RIGHT_SIZE_PCT = 1.5
RIGHT_SIZE_SHARE = 0.25


def says_it_right(e: Event, t: Any) -> bool:
    """Whether a matched event of the right kind also has the time and size right (a use
    hidden by a LOS is seen minutes late; two uses in a row read as one of twice the size)."""
    amount = t.level_after - t.level_before
    size_ok = abs(float(e.metadata.get("delta", 0.0)) - amount) <= max(
        RIGHT_SIZE_PCT, RIGHT_SIZE_SHARE * amount
    )
    return size_ok and abs((e.start - t.start).total_seconds()) <= RIGHT_START_S


def pattern_of(t) -> str:
    if t.kind == "bulk_transfer":
        return "bulk_transfer"
    return str(t.meta.get("pattern") or "use")


@dataclass
class Detected:
    """One urine detection on a simulated day and what it turned out to be."""

    day: int
    label: str
    event: Event
    true: bool  # matched a truth of its own kind
    pattern: str  # the matched truth's pattern, or what a false one is put down to
    right: bool = False  # true, and what a post would say is right (`says_it_right`)

    @property
    def raw(self) -> float:
        return float(self.event.metadata.get("raw_score", self.event.confidence))


@dataclass
class TruthRecord:
    """One truth rise (use or transfer) of a simulated day and the detection matched to it."""

    day: int
    label: str
    pattern: str
    truth: Any
    event: Event | None
    right_kind: bool  # matched by an event of its kind
    hidden: bool  # overlaps a LOS: the rise itself could not be watched


@dataclass
class PatternScore:
    truth: int = 0
    detected: int = 0
    tp: int = 0
    errors: list[float] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.tp / self.detected if self.detected else math.nan

    @property
    def recall(self) -> float:
        return self.tp / self.truth if self.truth else math.nan


@dataclass
class SimRun:
    records: list[Detected] = field(default_factory=list)
    truths: list[TruthRecord] = field(default_factory=list)
    dips_seen: dict[str, int] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)
    upa: list[int] = field(default_factory=lambda: [0, 0, 0])
    los: list[int] = field(default_factory=lambda: [0, 0, 0])
    drain_err: list[float] = field(default_factory=list)
    draws: int = 0
    refills: int = 0
    window_diff: int = 0
    t_gen: float = 0.0
    t_det: float = 0.0
    provisional: list[ProvisionalSeen] | None = None  # None: not measured (--skip-provisional)
    t_prov: float = 0.0


def run_day(run: SimRun, d: int, day: SimDay, window_min: int, base: datetime) -> None:
    urine = get_processor("urine_tank")
    upa = get_processor("upa_cycle")
    signal = get_processor("signal")
    water = get_processor("clean_water")
    step = timedelta(minutes=window_min)
    start = base + timedelta(days=d)
    end = start + timedelta(days=1)
    c0 = time.perf_counter()
    frame, truth, los = simulate_day(day, start, hours=24.5)
    c1 = time.perf_counter()
    horizon = start + timedelta(hours=24.5)
    events = detect_windowed(urine, frame, start, end, step, horizon)
    whole = {
        (e.event_key, e.event_type)
        for e in urine.detect(frame, horizon=horizon)
        if start <= e.start < end
    }
    run.window_diff += len(whole ^ {(e.event_key, e.event_type) for e in events})
    upa_events = detect_windowed(upa, frame, start, end, step, horizon)
    sig_events = detect_windowed(signal, frame, start, end, step, horizon)
    water_events = detect_windowed(water, frame, start, end, step, horizon)
    run.draws += sum(e.event_type == "clean_water_draw" for e in water_events)
    run.refills += sum(e.event_type == "clean_water_refill" for e in water_events)
    run.t_det += time.perf_counter() - c1
    run.t_gen += c1 - c0
    truth = [t for t in truth if start <= t.start < end]
    rises = [t for t in truth if t.kind in ("urination", "bulk_transfer")]
    dips = [t for t in truth if t.kind == "dip" and t.meta.get("seen")]
    run.dips_seen[day.label] = run.dips_seen.get(day.label, 0) + len(dips)
    if run.provisional is not None:
        c2 = time.perf_counter()
        for seen_use, hold in provisional_uses(frame, start, end):
            right = provisional_right(seen_use, rises, los)
            run.provisional.append(ProvisionalSeen(d, day.label, seen_use, hold, right))
        run.t_prov += time.perf_counter() - c2
    pairs = match(rises, events, los)
    matched: dict[int, Any] = {}
    for t, e in pairs:
        want = "bulk_transfer" if t.kind == "bulk_transfer" else "urination"
        ok = e is not None and e.event_type == want
        run.truths.append(TruthRecord(d, day.label, pattern_of(t), t, e, ok, in_los(t, los)))
        if e is not None:
            matched[id(e)] = t
            right = ok and says_it_right(e, t)
            run.records.append(Detected(d, day.label, e, ok, pattern_of(t), right))
    for e in events:
        if id(e) in matched:
            continue
        near_dip = any(
            t.start - timedelta(seconds=30) <= e.start <= t.end + timedelta(seconds=120)
            for t in dips
        )
        run.records.append(Detected(d, day.label, e, False, "dip" if near_dip else "noise"))
    # UPA cycles: same kind within 10 s
    ut = [t for t in truth if t.kind in ("upa_start", "upa_stop")]
    run.upa[0] += len(ut)
    run.upa[1] += len(upa_events)
    for t in ut:
        if t.kind == "upa_start":
            rate = [
                e.metadata.get("drain_pct_per_hour")
                for e in upa_events
                if e.event_type == "upa_cycle_start"
                and abs((e.start - t.start).total_seconds()) <= 10
            ]
            if rate and rate[0] is not None and t.meta.get("drain_s_per_pct"):
                run.drain_err.append(abs(rate[0] + 3600.0 / t.meta["drain_s_per_pct"]))
        kind = "upa_cycle_start" if t.kind == "upa_start" else "upa_cycle_stop"
        hi = t.start + timedelta(seconds=10)
        for s, e in los:  # a change during a LOS is seen when the signal returns
            if s <= t.start < e:
                hi = e + timedelta(seconds=10)
        lo = t.start - timedelta(seconds=10)
        if any(e.event_type == kind and lo <= e.start <= hi for e in upa_events):
            run.upa[2] += 1
    # LOS: a los event within 15 s of each truth LOS start
    lt_starts = [s for s, _ in los if start <= s < end]
    run.los[0] += len(lt_starts)
    det_los = [e for e in sig_events if e.event_type == "los"]
    run.los[1] += len(det_los)
    for s in lt_starts:
        if any(abs((e.start - s).total_seconds()) <= 15 for e in det_los):
            run.los[2] += 1
    uses_t = sum(t.kind == "urination" for t in rises)
    uses_d = sum(e.event_type == "urination" for e in events)
    uses_tp = sum(
        1 for r in run.records if r.day == d and r.true and r.event.event_type == "urination"
    )
    tr_t = len(rises) - uses_t
    tr_d = len(events) - uses_d
    tr_tp = sum(
        1 for r in run.records if r.day == d and r.true and r.event.event_type != "urination"
    )
    slow = sum(1 for t in rises if t.meta.get("pattern"))
    run.lines.append(
        f"{d + 1:>3} {day.label:<8} {day.seed:>5} {day.crew:>4} {day.noise:>5}"
        f"  {uses_t:>5}/{uses_d}/{uses_tp:<8} {slow:>4}  {len(dips):>4}"
        f"  {tr_t:>5}/{tr_d}/{tr_tp:<10}  {len(ut):>3}  {len(lt_starts)}"
    )


def score(records: Sequence[Detected], truths: Sequence[TruthRecord], labels: set[str]):
    """Per pattern: truth, detected, tp (detections of the right kind)."""
    rows: dict[str, PatternScore] = {}
    for name in ("use", "slow_after_upa_stop", "bulk_transfer", "dip", "noise"):
        rows[name] = PatternScore()
    for tr in truths:
        if tr.label in labels:
            rows[tr.pattern].truth += 1
    for r in records:
        if r.label not in labels:
            continue
        rows[r.pattern].detected += 1
        if r.true:
            rows[r.pattern].tp += 1
            truth_start = next(
                (tr.truth.start for tr in truths if tr.event is r.event), r.event.start
            )
            rows[r.pattern].errors.append((r.event.start - truth_start).total_seconds())
    return rows


def print_pattern_table(title: str, rows: dict[str, PatternScore], dips: int) -> None:
    print(title)
    print(
        f"  {'pattern':<22}{'truth':>6}{'det':>6}{'tp':>6}{'precision':>11}{'recall':>8}"
        f"{'start err med':>15}{'p90':>8}"
    )
    for name, sc in rows.items():
        errs = [abs(x) for x in sc.errors]
        truth = dips if name == "dip" else sc.truth
        prec = f"{sc.precision:>11.3f}" if name not in ("dip", "noise") else f"{'-':>11}"
        rec = f"{sc.recall:>8.3f}" if name not in ("dip", "noise") else f"{'-':>8}"
        print(
            f"  {name:<22}{truth:>6}{sc.detected:>6}{sc.tp:>6}{prec}{rec}"
            f"{pct(errs, 50):>13.1f} s{pct(errs, 90):>6.1f} s"
        )


def use_totals(records: Sequence[Detected], truths: Sequence[TruthRecord], labels: set[str]):
    """Uses (all patterns): truth, detected, tp, precision, recall."""
    truth = sum(1 for tr in truths if tr.label in labels and tr.pattern != "bulk_transfer")
    det = [r for r in records if r.label in labels and r.event.event_type == "urination"]
    tp = sum(r.true for r in det)
    prec = tp / len(det) if det else math.nan
    rec = tp / truth if truth else math.nan
    return truth, len(det), tp, prec, rec


def reliability(records: Sequence[Detected], conf) -> None:
    """Bins of confidence: count, mean confidence, how many matched a truth of their kind,
    how many said it right (the fraction calibration aims at)."""
    print(
        f"  {'confidence':<13}{'count':>7}{'mean c':>8}{'matched':>9}{'right':>7}{'frac right':>12}"
    )
    cs = np.array([conf(r) for r in records])
    matched = np.array([r.true for r in records])
    ok = np.array([r.right for r in records])
    for lo, hi in itertools.pairwise(BINS):
        sel = (cs >= lo) & (cs < hi)
        n = int(sel.sum())
        if n:
            print(
                f"  [{lo:.2f}, {min(hi, 1.0):.2f}{']' if hi > 1 else ')'}{n:>7}"
                f"{cs[sel].mean():>8.3f}{int(matched[sel].sum()):>9}{int(ok[sel].sum()):>7}"
                f"{ok[sel].mean():>12.3f}"
            )
        else:
            print(f"  [{lo:.2f}, {min(hi, 1.0):.2f}{']' if hi > 1 else ')'}{0:>7}")
    line = "  events with c >= x, fraction right:"
    for x in (0.3, 0.5, 0.7, 0.9, 0.95):
        sel = cs >= x
        line += f"  {x:.2f}: {ok[sel].mean() if sel.any() else math.nan:.3f} ({int(sel.sum())})"
    print(line)


def floor_evidence(records: Sequence[Detected], days: int) -> float:
    """What each candidate posting floor would do with the uses of the simulated days;
    returns the suggested floor (see WRONG_POST_COST)."""
    uses = [r for r in records if r.event.event_type == "urination"]
    cs = np.array([r.event.confidence for r in uses])
    ok = np.array([r.right for r in uses])
    print(
        f"  {'floor':>6}{'posted right':>14}{'posted wrong':>14}{'held right':>12}{'held wrong':>12}"
        f"{'post precision':>16}{'post recall':>13}{'held/day':>10}"
    )
    suggested, best = math.nan, math.inf
    for f in FLOORS:
        post = cs >= f
        pt, pf = int((post & ok).sum()), int((post & ~ok).sum())
        ht, hf = int((~post & ok).sum()), int((~post & ~ok).sum())
        prec = pt / (pt + pf) if pt + pf else math.nan
        rec = pt / (pt + ht) if pt + ht else math.nan
        if WRONG_POST_COST * pf + ht < best:
            suggested, best = f, WRONG_POST_COST * pf + ht
        print(
            f"  {f:>6.2f}{pt:>14}{pf:>14}{ht:>12}{hf:>12}{prec:>16.3f}{rec:>13.3f}"
            f"{(ht + hf) / days:>10.2f}"
        )
    right_c = np.sort(cs[ok])
    wrong_c = np.sort(cs[~ok])
    print(
        "  uses that say it right, confidence quantiles (1/5/10/50 %):",
        " ".join(f"{np.percentile(right_c, q):.3f}" for q in (1, 5, 10, 50))
        if right_c.size
        else "-",
    )
    print("  uses that do not, every confidence:", " ".join(f"{c:.3f}" for c in wrong_c) or "-")
    print(
        f"  suggested PEEBOT_POST_MIN_CONFIDENCE: {suggested:.2f} (least {WRONG_POST_COST} x"
        " posted wrong + held right: a wrong post costs ten held right ones)"
    )
    return suggested


def run_sim(
    days: int,
    noise_days: int,
    stress_days: int,
    window_min: int,
    fit: bool,
    provisional: bool = True,
    real_provisional: Sequence[ProvisionalSeen] = (),
) -> dict[str, Any]:
    base = datetime(2026, 1, 5, tzinfo=UTC)
    plan = sim_days(days, noise_days, stress_days)
    run = SimRun(provisional=[] if provisional else None)
    print(
        f"== simulation: {len(plan)} days ({days} plain, {days} with the patterns of issue 16,"
        f" {noise_days} of noise alone, {stress_days} of stress), {window_min}-min windows =="
    )
    print(
        "day label     seed crew noise  uses(truth/det/tp) slow  dips"
        "  transfers(truth/det/tp)  upa  los"
    )
    for d, day in enumerate(plan):
        run_day(run, d, day, window_min, base)
        print(run.lines[-1])
    print()
    for r in run.records:
        if not r.true:
            e = r.event
            print(
                f"  false {e.event_type} day {r.day + 1} {e.start:%m-%d %H:%M:%S} ({r.pattern})"
                f" c={e.confidence:.2f} {describe(e)}"
            )
    shown = 0
    for tr in run.truths:
        t, got_event = tr.truth, tr.event
        if not tr.right_kind and shown < 20:
            shown += 1
            got = "missed" if got_event is None else f"reported as {got_event.event_type}"
            print(
                f"  {got} {tr.pattern} day {tr.day + 1} {t.start:%m-%d %H:%M:%S}"
                f" {t.level_before:.1f}->{t.level_after:.1f} upa={t.meta.get('upa_state')}"
                f"{' (in a LOS)' if tr.hidden else ''}"
            )
    print()
    dips_all = sum(run.dips_seen.values())
    print_pattern_table(
        "per pattern, plain, pattern and noise days:",
        score(run.records, run.truths, {"plain", "patterns", "noise"}),
        dips_all - run.dips_seen.get("stress", 0),
    )
    print_pattern_table(
        "per pattern, days with the patterns of issue 16:",
        score(run.records, run.truths, {"patterns"}),
        run.dips_seen.get("patterns", 0),
    )
    print_pattern_table(
        "per pattern, stress days (sensor noise x3-x4.5, not in the goals):",
        score(run.records, run.truths, {"stress"}),
        run.dips_seen.get("stress", 0),
    )
    noise_uses = sum(
        1 for r in run.records if r.label == "noise" and r.event.event_type == "urination"
    )
    print(
        f"noise alone ({noise_days} days, {run.dips_seen.get('noise', 0)} dips):"
        f" {noise_uses} uses reported"
    )
    print()
    results: dict[str, Any] = {}
    print(
        f"{'uses (all patterns)':<28}{'truth':>6}{'det':>6}{'tp':>6}{'precision':>11}{'recall':>8}"
    )
    for name, labels in (
        ("plain days", {"plain"}),
        ("days with the patterns", {"patterns"}),
        ("patterns + noise days", {"patterns", "noise"}),
        ("plain, pattern, noise days", {"plain", "patterns", "noise"}),
        ("stress days", {"stress"}),
    ):
        truth, det, tp, prec, rec = use_totals(run.records, run.truths, labels)
        results[name] = (prec, rec)
        print(f"{name:<28}{truth:>6}{det:>6}{tp:>6}{prec:>11.3f}{rec:>8.3f}")
    watched = [tr for tr in run.truths if tr.pattern != "bulk_transfer" and not tr.hidden]
    print(
        f"{'uses outside a LOS, all days':<28}{len(watched):>6}{'':>6}"
        f"{sum(tr.right_kind for tr in watched):>6}{'':>11}"
        f"{sum(tr.right_kind for tr in watched) / max(len(watched), 1):>8.3f}"
    )
    transfers_as_uses = sum(
        1
        for tr in run.truths
        if tr.pattern == "bulk_transfer"
        and tr.event is not None
        and tr.event.event_type == "urination"
    )
    uses_as_transfers = sum(
        1
        for tr in run.truths
        if tr.pattern != "bulk_transfer"
        and tr.event is not None
        and tr.event.event_type == "bulk_transfer"
    )
    print(
        f"transfers reported as uses: {transfers_as_uses}   uses reported as transfers: {uses_as_transfers}"
    )
    errors = [
        (tr.event.start - tr.truth.start).total_seconds()
        for tr in run.truths
        if tr.event is not None and tr.right_kind and not tr.hidden and tr.pattern == "use"
    ]
    print(
        f"use start error (detected - true, ordinary uses outside LOS): median {pct([abs(x) for x in errors], 50):.1f} s,"
        f" mean {np.mean(errors) if errors else math.nan:+.1f} s, max {max(errors, default=math.nan):+.1f} s"
    )
    print(f"upa cycles: truth {run.upa[0]}, detected {run.upa[1]}, matched {run.upa[2]}")
    print(
        f"upa drain rate after a start: median |detected - true| {pct(run.drain_err, 50):.2f} %/h"
        f" over {len(run.drain_err)} starts (true rates 12-15 %/h; uses during the window add to it)"
    )
    print(
        f"clean water (no truth in the model; it dispenses ~3x/day): {run.draws} draws,"
        f" {run.refills} refills in {len(plan)} days"
    )
    print(f"los: truth {run.los[0]}, detected {run.los[1]}, matched {run.los[2]}")
    print(
        f"urine events that differ between {window_min}-min windows and one whole-day pass: {run.window_diff}"
    )
    print(f"time: simulate {run.t_gen:.1f} s, detect {run.t_det:.1f} s")
    print()
    print(
        "reliability of the confidence (urine events on all simulated days; matched = a truth of"
        f" its kind; right = matched, start within {RIGHT_START_S:.0f} s and size within"
        f" max({RIGHT_SIZE_PCT} %, {RIGHT_SIZE_SHARE:.0%}) of the truth's):"
    )
    reliability(run.records, lambda r: r.event.confidence)
    print()
    print("posting floor (PEEBOT_POST_MIN_CONFIDENCE) over the uses of all simulated days:")
    floor_evidence(run.records, len(plan))
    if run.provisional is not None:
        print()
        print(
            "provisional (live) events by hold so far: count, fraction true, confidence"
            f" (every peak re-detected on the readings before peak + {PROVISIONAL_HOLDS_S[0]}"
            f"..{PROVISIONAL_HOLDS_S[-1]} s, every {PROVISIONAL_HOLDS_S[1] - PROVISIONAL_HOLDS_S[0]} s;"
            " count = looks, events = distinct uses; right as in the reliability table):"
        )
        provisional_table(run.provisional + list(real_provisional), run.records)
        print(f"  posting floor {POST_FLOOR:.2f}, before the full hold:")
        provisional_posts(run.provisional + [s for s in real_provisional if not s.full], POST_FLOOR)
        print(f"  time: {run.t_prov:.1f} s")
    prec, rec = results["patterns + noise days"]
    goals = prec >= 0.99 and rec >= 0.97 and noise_uses == 0 and transfers_as_uses == 0
    print()
    print(
        "goals (uses on the days with the patterns and of noise: precision >= 0.99, recall >= 0.97;"
        f" no use from noise alone; no transfer as a use): {'MET' if goals else 'NOT MET'}"
    )
    if fit:
        fit_calibration(run.records)
        if run.provisional is not None:
            fit_short_hold_factor(run.provisional, [s for s in real_provisional if not s.full])
    return {"goals": goals, "records": run.records}


def fit_calibration(records: Sequence[Detected]) -> None:
    """Isotonic calibration of raw score -> P(true): fit on even days, check on odd days."""
    fit_set = [r for r in records if r.day % 2 == 0]
    check_set = [r for r in records if r.day % 2 == 1]
    xs = np.array([r.raw for r in fit_set])
    ys = np.array([float(r.right) for r in fit_set])
    points = fit_isotonic(xs, ys)
    print()
    print(f"== calibration fit on {len(fit_set)} events of the even days ==")
    print("RAW_POINTS = (")
    for x, y in points:
        print(f"    ({x:.4f}, {y:.4f}),")
    print(")")
    print(f"held-out check on {len(check_set)} events of the odd days (fitted mapping):")
    reliability(check_set, lambda r: calibrated_confidence(r.raw, points))
    print("held-out check with the stored RAW_POINTS:")
    reliability(check_set, lambda r: calibrated_confidence(r.raw, RAW_POINTS))


# ------------------------------------------------------------------ provisional (live) events

# The live pass re-detects the newest minutes every few seconds with whatever data ingest has
# written: a use is first stored once min_hold_s of level follows its peak, flagged
# `short_hold` until hold_window_s has. To see those provisional events as the live pass
# does, every peak candidate (a reading above every reading of the last max_step_gap_s: a
# climb's peak is always one) is detected again at horizons peak + PROVISIONAL_HOLDS_S, on
# the readings before the horizon only.
PROVISIONAL_HOLDS_S = tuple(range(20, 60, 4))
HOLD_BUCKETS = ((20, 30), (30, 40), (40, 50), (50, 60))
# look-back of a provisional detection: the climb, its walk-back and baseline (~4 min) and
# the slow path's joins fit; the live pass's 30 min changes nothing closer to the horizon
PROVISIONAL_LOOKBACK_S = 900.0
FULL_HOLD_S = get_processor("urine_tank").params.hold_window_s


@dataclass
class ProvisionalSeen:
    """One provisional use as the live pass would store it at one horizon."""

    day: int  # -1: the 2023 recording
    label: str  # plain | patterns | noise | stress | issp-2023
    event: Event
    hold_s: float  # horizon - peak
    right: bool  # what a post would say is right (`says_it_right` for simulated days)

    @property
    def key(self) -> tuple[int, str]:
        return (self.day, self.event.event_key)

    @property
    def raw_full(self) -> float:
        """The raw score without the short-hold factor (what the full hold would weigh)."""
        raw = float(self.event.metadata.get("raw_score", self.event.confidence))
        if "short_hold" in self.event.metadata["flags"]:
            raw /= get_processor("urine_tank").params.short_hold_factor
        return raw

    @property
    def full(self) -> bool:
        """The use with its whole hold (the 2023 recording's stored events)."""
        return "short_hold" not in self.event.metadata["flags"]


def peak_candidates(frame: pd.DataFrame, gap_s: float) -> np.ndarray:
    """Epoch seconds of the tank readings above every reading of the last gap_s (after
    repeats are dropped): each climb's peak is one, at any horizon."""
    secs, vals = item_series(frame, TANK_ITEM)
    secs, vals = drop_repeats(secs, vals)
    out = []
    lo = 0
    for i in range(1, secs.size):
        while secs[lo] <= secs[i] - gap_s:
            lo += 1
        if vals[i] > vals[i - 1] and (lo == i or vals[i] > vals[lo:i].max()):
            out.append(secs[i])
    return np.array(out)


def provisional_uses(
    frame: pd.DataFrame, lo: datetime | None = None, hi: datetime | None = None
) -> list[tuple[Event, float]]:
    """(event, hold so far) of every provisional use the live pass would store for peaks in
    [lo, hi): for each peak candidate and hold in PROVISIONAL_HOLDS_S, the urine detector on
    the readings before peak + hold (and horizon there), keeping the `short_hold` uses whose
    peak is that candidate."""
    urine = get_processor("urine_tank")
    sub = frame[frame["item_id"].isin(urine.items)].reset_index(drop=True)
    ts = to_epoch_seconds(sub["ts"])
    items = sub["item_id"].to_numpy()
    positions = {item: np.flatnonzero(items == item) for item in urine.items}
    out: list[tuple[Event, float]] = []
    peaks = peak_candidates(sub, urine.params.max_step_gap_s)
    if lo is not None:
        peaks = peaks[peaks >= lo.timestamp()]
    if hi is not None:
        peaks = peaks[peaks < hi.timestamp()]
    for peak in peaks:
        start_at = int(np.searchsorted(ts, peak - PROVISIONAL_LOOKBACK_S, side="left"))
        asof = []
        for pos in positions.values():  # each item's value in force at the look-back's start
            k = int(np.searchsorted(pos, start_at)) - 1
            if k >= 0:
                asof.append(int(pos[k]))
        for hold in PROVISIONAL_HOLDS_S:
            h = peak + hold
            end_at = int(np.searchsorted(ts, h, side="left"))
            rows = sub.iloc[sorted(asof) + list(range(start_at, end_at))]
            for e in urine.detect(rows, horizon=from_epoch_seconds(h)):
                if (
                    e.event_type == "urination"
                    and "short_hold" in e.metadata["flags"]
                    and e.end is not None
                    and abs(e.end.timestamp() - peak) < 1e-3
                ):
                    out.append((e, float(hold)))
    return out


def provisional_right(e: Event, truths: list, los: list[tuple[datetime, datetime]]) -> bool:
    """Whether a provisional use says right what a truth use of the day is (the match window
    of `match`, then `says_it_right`)."""
    for t in truths:
        if t.kind != "urination":
            continue
        hi = t.end + timedelta(seconds=60)
        for s, en in los:
            if s < t.end + timedelta(seconds=5) and en > t.start:
                hi = max(hi, en + timedelta(seconds=60))
        if t.start - timedelta(seconds=30) <= e.start <= hi and says_it_right(e, t):
            return True
    return False


def provisional_table(seen: Sequence[ProvisionalSeen], finals: Sequence[Detected]) -> None:
    """Per set of days and hold so far: provisional uses (one per event and horizon), the
    fraction right, their confidence; then the uses with the whole hold (the stored events
    the bench scores above) for comparison."""
    print(
        f"  {'days':<16}{'hold so far':<13}{'count':>6}{'events':>7}{'right':>7}{'frac right':>11}"
        f"{'conf mean':>10}{'conf min..max':>15}{'raw mean':>9}"
    )
    sets = (
        ("plain+patterns", {"plain", "patterns"}),
        ("noise alone", {"noise"}),
        ("stress", {"stress"}),
        ("issp-2023", {"issp-2023"}),
    )
    for name, labels in sets:
        rows = [
            (f"[{lo}, {hi}) s", [s for s in seen if s.label in labels and lo <= s.hold_s < hi])
            for lo, hi in HOLD_BUCKETS
        ]
        for bucket, sel in rows:
            _provisional_row(name, bucket, [(s.event, s.right, s.key) for s in sel])
        full = [
            (r.event, r.right, (r.day, r.event.event_key))
            for r in finals
            if r.label in labels and r.event.event_type == "urination"
        ]
        full += [(s.event, s.right, s.key) for s in seen if s.label in labels and s.full]
        _provisional_row(name, f">= {FULL_HOLD_S:.0f} s (full)", full)


def _provisional_row(name: str, bucket: str, rows: list[tuple[Event, bool, Any]]) -> None:
    if not rows:
        print(f"  {name:<16}{bucket:<13}{0:>6}")
        return
    cs = np.array([e.confidence for e, _, _ in rows])
    raw = np.array([float(e.metadata.get("raw_score", e.confidence)) for e, _, _ in rows])
    right = np.array([r for _, r, _ in rows])
    print(
        f"  {name:<16}{bucket:<13}{len(rows):>6}{len({k for _, _, k in rows}):>7}"
        f"{int(right.sum()):>7}{right.mean():>11.3f}{cs.mean():>10.3f}"
        f"{f'{cs.min():.2f}..{cs.max():.2f}':>15}{raw.mean():>9.3f}"
    )


def provisional_outcomes(
    seen: Sequence[ProvisionalSeen],
    floor: float,
    conf: Callable[[ProvisionalSeen], float] = lambda s: s.event.confidence,
) -> tuple[int, int, int, int, list[float]]:
    """What the live pass would post before the full hold, at `floor`: a provisional use
    posts at its first look at or above the floor, saying what that look says. Returns
    (posted right, posted wrong, waited right, waited wrong, holds when posted right); a
    use that waits is right or wrong as its last look."""
    by_key: dict[tuple[int, str], list[ProvisionalSeen]] = {}
    for s in seen:
        by_key.setdefault(s.key, []).append(s)
    posted_right = posted_wrong = waited_right = waited_wrong = 0
    holds: list[float] = []
    for looks in by_key.values():
        looks.sort(key=lambda s: s.hold_s)
        first = next((s for s in looks if conf(s) >= floor), None)
        if first is None:
            waited_right += looks[-1].right
            waited_wrong += not looks[-1].right
        elif first.right:
            posted_right += 1
            holds.append(first.hold_s)
        else:
            posted_wrong += 1
    return posted_right, posted_wrong, waited_right, waited_wrong, holds


def provisional_posts(
    seen: Sequence[ProvisionalSeen],
    floor: float,
    conf: Callable[[ProvisionalSeen], float] = lambda s: s.event.confidence,
) -> None:
    """`provisional_outcomes` per set of days."""
    for name, labels in (
        ("plain+patterns", {"plain", "patterns"}),
        ("noise alone", {"noise"}),
        ("stress", {"stress"}),
        ("issp-2023", {"issp-2023"}),
    ):
        pr, pw, wr, ww, holds = provisional_outcomes(
            [s for s in seen if s.label in labels], floor, conf
        )
        if pr + pw + wr + ww == 0:
            continue
        print(
            f"  {name:<16}{pr + pw + wr + ww:>4} provisional uses: {pr} posted right, {pw} posted"
            f" wrong, {wr + ww} wait for the full hold ({ww} of them wrong)"
            + (f"; posted after a hold of median {pct(holds, 50):.0f} s" if holds else "")
        )


SHORT_HOLD_FACTORS = tuple(round(0.5 + 0.02 * k, 2) for k in range(36))  # 0.50 .. 1.20


def fit_short_hold_factor(seen: Sequence[ProvisionalSeen], real: Sequence[ProvisionalSeen]) -> None:
    """UrineParams.short_hold_factor: for each candidate, what the live pass would post
    before the full hold at the floor (`provisional_posts`) on the even days; the factor with
    the least WRONG_POST_COST x posted wrong + waited right (the lowest of equals) is the
    fit; then checked on the odd days and on the 2023 recording."""
    factor = get_processor("urine_tank").params.short_hold_factor
    even = [s for s in seen if s.day % 2 == 0]
    odd = [s for s in seen if s.day % 2 == 1]

    def conf(f: float) -> Callable[[ProvisionalSeen], float]:
        return lambda s: calibrated_confidence(s.raw_full * f, RAW_POINTS)

    print()
    print(
        f"== short_hold_factor fit on {len({s.key for s in even})} provisional uses of the even"
        f" days (stored: {factor}) =="
    )
    print(f"  {'factor':>7}  {'even: posted right/wrong, waited right/wrong, cost':<52}odd: same")
    best, best_cost = math.nan, math.inf
    for f in SHORT_HOLD_FACTORS:
        e = provisional_outcomes(even, POST_FLOOR, conf(f))
        o = provisional_outcomes(odd, POST_FLOOR, conf(f))
        cost = WRONG_POST_COST * e[1] + e[2]
        if cost < best_cost:
            best, best_cost = f, cost
        print(
            f"  {f:>7.2f}  {e[0]:>4} {e[1]:>3} {e[2]:>4} {e[3]:>3}  cost {cost:<29}"
            f"{o[0]:>4} {o[1]:>3} {o[2]:>4} {o[3]:>3}  cost {WRONG_POST_COST * o[1] + o[2]}"
        )
    print(
        f"fitted short_hold_factor: {best:.2f} (least {WRONG_POST_COST} x posted wrong + waited right)"
    )
    for name, check in (("the odd days", odd), ("the 2023 recording", list(real))):
        print(f"held-out check on {name} with {best:.2f}:")
        provisional_posts(check, POST_FLOOR, conf(best))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--noise-days", type=int, default=4)
    ap.add_argument("--stress-days", type=int, default=8)
    ap.add_argument("--window-min", type=int, default=60)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--no-png", action="store_true")
    ap.add_argument("--skip-real", action="store_true")
    ap.add_argument("--skip-sim", action="store_true")
    ap.add_argument("--fit-calibration", action="store_true")
    ap.add_argument(
        "--skip-provisional",
        action="store_true",
        help="do not re-detect each peak at the live pass's horizons (saves ~10 s a day)",
    )
    args = ap.parse_args(argv)
    real_provisional: list[ProvisionalSeen] = []
    if not args.skip_real:
        real_provisional = run_real(None if args.no_png else args.out, not args.skip_provisional)
        print()
    if not args.skip_sim:
        run_sim(
            args.days,
            args.noise_days,
            args.stress_days,
            args.window_min,
            args.fit_calibration,
            not args.skip_provisional,
            real_provisional,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
