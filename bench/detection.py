"""Detection benchmark: real recordings, then simulated days scored against ground truth.

    uv run python bench/detection.py [--days 7] [--window-min 60] [--out bench/out/detection]
                                     [--no-png] [--skip-real] [--skip-sim]

(1) Runs every processor on each real recording in ../shared/data/iss/ (the 2023 urine
    files as one recording, the 2018 water files with year 2018), prints the events and
    saves a small PNG per event (the level around it) under --out.
(2) Generates --days simulated days with the simulator's model
    (`peebot_sim.model`), one seeded model per day with crew size and noise
    varied, and runs the detectors the way Dagster does: windows of --window-min minutes,
    each reading [start - lookback, end + lookahead) plus the carried-forward value, keeping
    the events that start inside the window. It scores uses and transfers against the
    model's truth: precision, recall, start-time error (median, p90), transfers reported as
    uses; and, more briefly, UPA cycles and LOS.

Matching: a detection matches a truth event of the urine tank when its start lies in
[truth start - 30 s, truth end + 60 s], or, for a truth event that overlaps a LOS, up to the
LOS end + 60 s (the rise can only be seen when the signal returns). Each truth event and
each detection is used once (nearest start first).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from peebot_dagster.detectors.base import Event, Processor, window_frame
from peebot_dagster.detectors.registry import PROCESSORS, get_processor
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


# ------------------------------------------------------------------ part 1: real recordings


def plot_event(frame: pd.DataFrame, event: Event, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    ax.axvspan(event.start, event.end or event.start, color="orange", alpha=0.3)
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


def run_real(out: Path | None) -> None:
    print("== real recordings ==")
    for name, files, year in REAL:
        paths = [DATA / f for f in files]
        if not all(p.exists() for p in paths):
            print(f"{name}: missing files, skipped")
            continue
        readings = [r for p in paths for r in read_recording(p, year=year).readings]
        frame = to_frame(readings)
        span = f"{frame['ts'].min():%Y-%m-%d %H:%M} .. {frame['ts'].max():%Y-%m-%d %H:%M} UTC"
        print(f"-- {name}: {len(frame)} readings, {span}")
        for p in PROCESSORS:
            for e in p.detect(frame):
                print(
                    f"  {e.start:%Y-%m-%d %H:%M:%S} {e.event_type:<18} c={e.confidence:.2f} {describe(e)}"
                )
                if out is not None:
                    folder = out / name
                    folder.mkdir(parents=True, exist_ok=True)
                    plot_event(frame, e, folder / f"{e.start:%Y%m%dT%H%M%S}_{e.event_type}.png")
    if out is not None:
        print(f"(PNGs under {out})")


# ------------------------------------------------------------------ part 2: simulation


def simulate_day(seed: int, crew: int, noise: float, start: datetime, hours: float):
    from peebot_sim.model import SimConfig, TelemetryModel

    model = TelemetryModel(
        SimConfig(
            seed=seed, start=start, crew=crew, noise=noise, random_events=True, items=SIM_ITEMS
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


@dataclass
class Score:
    truth: int = 0
    detected: int = 0
    tp: int = 0
    errors: list[float] = field(default_factory=list)
    confused: int = 0  # truth of the other kind matched to this kind

    @property
    def precision(self) -> float:
        return self.tp / self.detected if self.detected else math.nan

    @property
    def recall(self) -> float:
        return self.tp / self.truth if self.truth else math.nan


def match(
    truths: list, events: list[Event], los: list[tuple[datetime, datetime]]
) -> list[tuple[object, Event | None]]:
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


def run_sim(
    days: int, window_min: int, min_conf: float, noise_scale: float = 1.0
) -> dict[str, object]:
    urine = get_processor("urine_tank")
    upa = get_processor("upa_cycle")
    signal = get_processor("signal")
    step = timedelta(minutes=window_min)
    base = datetime(2026, 1, 5, tzinfo=UTC)
    uses, transfers = Score(), Score()
    posted = Score()
    seen = Score()  # uses that do not overlap a LOS
    misses: list[str] = []
    false_pos: list[str] = []
    upa_tp = upa_truth = upa_det = 0
    los_tp = los_truth = los_det = 0
    t_gen = t_det = 0.0
    window_diff = 0
    drain_err: list[float] = []
    water = get_processor("clean_water")
    draws = refills = 0
    print(
        f"== simulation: {days} days, {window_min}-min windows (look-back/ahead per processor) =="
    )
    print("day  seed crew noise  uses(truth/det/tp)  transfers(truth/det/tp)  upa  los")
    for d in range(days):
        seed, crew, noise = SIM_DAYS[d % len(SIM_DAYS)]
        seed += 1000 * (d // len(SIM_DAYS))
        noise *= noise_scale
        start = base + timedelta(days=d)
        end = start + timedelta(days=1)
        c0 = time.perf_counter()
        frame, truth, los = simulate_day(seed, crew, noise, start, hours=24.5)
        c1 = time.perf_counter()
        horizon = start + timedelta(hours=24.5)
        events = detect_windowed(urine, frame, start, end, step, horizon)
        whole = {
            (e.event_key, e.event_type)
            for e in urine.detect(frame, horizon=horizon)
            if start <= e.start < end
        }
        window_diff += len(whole ^ {(e.event_key, e.event_type) for e in events})
        upa_events = detect_windowed(upa, frame, start, end, step, horizon)
        sig_events = detect_windowed(signal, frame, start, end, step, horizon)
        water_events = detect_windowed(water, frame, start, end, step, horizon)
        draws += sum(e.event_type == "clean_water_draw" for e in water_events)
        refills += sum(e.event_type == "clean_water_refill" for e in water_events)
        t_det += time.perf_counter() - c1
        t_gen += c1 - c0
        truth = [t for t in truth if start <= t.start < end]
        rises = [t for t in truth if t.kind in ("urination", "bulk_transfer")]
        pairs = match(rises, events, los)
        matched = {id(e) for _, e in pairs if e is not None}
        day_u = Score()
        day_t = Score()
        for t, e in pairs:
            sc, dsc = (uses, day_u) if t.kind == "urination" else (transfers, day_t)
            sc.truth += 1
            dsc.truth += 1
            if t.kind == "urination" and not in_los(t, los):
                seen.truth += 1
            if e is None:
                misses.append(
                    f"  miss {t.kind} {t.start:%m-%d %H:%M:%S} {t.level_before:.1f}->{t.level_after:.1f} {t.meta.get('upa_state')}"
                )
                continue
            want = "urination" if t.kind == "urination" else "bulk_transfer"
            if e.event_type == want:
                sc.tp += 1
                dsc.tp += 1
                sc.errors.append((e.start - t.start).total_seconds())
                if t.kind == "urination" and not in_los(t, los):
                    seen.tp += 1
                    seen.errors.append((e.start - t.start).total_seconds())
            elif t.kind == "bulk_transfer":
                transfers.confused += 1
            else:
                uses.confused += 1
            if t.kind == "urination" and e.event_type == "urination" and e.confidence >= min_conf:
                posted.tp += 1
            if t.kind == "urination":
                posted.truth += 1
        if any(t.kind == "urination" and e is None for t, e in pairs):
            pass
        for e in events:
            sc, dsc = (uses, day_u) if e.event_type == "urination" else (transfers, day_t)
            sc.detected += 1
            dsc.detected += 1
            if e.event_type == "urination" and e.confidence >= min_conf:
                posted.detected += 1
            if id(e) not in matched:
                false_pos.append(
                    f"  false {e.event_type} {e.start:%m-%d %H:%M:%S} c={e.confidence:.2f} {describe(e)}"
                )
        # UPA cycles: same kind within 10 s
        ut = [t for t in truth if t.kind in ("upa_start", "upa_stop")]
        upa_truth += len(ut)
        upa_det += len(upa_events)
        for t in ut:
            if t.kind == "upa_start":
                rate = [
                    e.metadata.get("drain_pct_per_hour")
                    for e in upa_events
                    if e.event_type == "upa_cycle_start"
                    and abs((e.start - t.start).total_seconds()) <= 10
                ]
                if rate and rate[0] is not None and t.meta.get("drain_s_per_pct"):
                    drain_err.append(abs(rate[0] + 3600.0 / t.meta["drain_s_per_pct"]))
            kind = "upa_cycle_start" if t.kind == "upa_start" else "upa_cycle_stop"
            hi = t.start + timedelta(seconds=10)
            for s, e in los:  # a change during a LOS is seen when the signal returns
                if s <= t.start < e:
                    hi = e + timedelta(seconds=10)
            lo = t.start - timedelta(seconds=10)
            if any(e.event_type == kind and lo <= e.start <= hi for e in upa_events):
                upa_tp += 1
        # LOS: a los event within 15 s of each truth LOS start
        lt = [t for t in truth if t.kind == "los"]
        lt_starts = [s for s, _ in los if start <= s < end]
        los_truth += len(lt_starts)
        det_los = [e for e in sig_events if e.event_type == "los"]
        los_det += len(det_los)
        for s in lt_starts:
            if any(abs((e.start - s).total_seconds()) <= 15 for e in det_los):
                los_tp += 1
        print(
            f"{d + 1:>3} {seed:>5} {crew:>4} {noise:>5}  {day_u.truth:>5}/{day_u.detected}/{day_u.tp:<10}"
            f"  {day_t.truth:>5}/{day_t.detected}/{day_t.tp:<14}  {len(ut):>3}  {len(lt)}"
        )
    print()
    for line in misses[:20]:
        print(line)
    for line in false_pos[:20]:
        print(line)
    print()
    print(
        f"{'kind':<22}{'truth':>6}{'det':>6}{'tp':>6}{'precision':>11}{'recall':>8}{'start err med':>15}{'p90':>7}"
    )
    for name, sc in (("urination", uses), ("bulk_transfer", transfers)):
        errs = [abs(x) for x in sc.errors]
        print(
            f"{name:<22}{sc.truth:>6}{sc.detected:>6}{sc.tp:>6}{sc.precision:>11.3f}{sc.recall:>8.3f}"
            f"{pct(errs, 50):>13.1f} s{pct(errs, 90):>5.1f} s"
        )
    seen_errs = [abs(x) for x in seen.errors]
    print(
        f"{'urination, no LOS':<22}{seen.truth:>6}{'':>6}{seen.tp:>6}{'':>11}{seen.recall:>8.3f}"
        f"{pct(seen_errs, 50):>13.1f} s{pct(seen_errs, 90):>5.1f} s"
    )
    print(
        f"{'urination c>=' + str(min_conf):<22}{posted.truth:>6}{posted.detected:>6}{posted.tp:>6}"
        f"{posted.precision:>11.3f}{posted.recall:>8.3f}"
    )
    print(
        f"transfers reported as uses: {transfers.confused}   uses reported as transfers: {uses.confused}"
    )
    signed = seen.errors
    print(
        f"use start error (detected - true, uses outside LOS): mean {np.mean(signed) if signed else math.nan:+.1f} s,"
        f" max {max(signed, default=math.nan):+.1f} s"
    )
    print(f"upa cycles: truth {upa_truth}, detected {upa_det}, matched {upa_tp}")
    print(
        f"upa drain rate after a start: median |detected - true| {pct(drain_err, 50):.2f} %/h"
        f" over {len(drain_err)} starts (true rates 12-15 %/h; uses during the window add to it)"
    )
    print(
        f"clean water (no truth in the model; it dispenses ~3x/day): {draws} draws,"
        f" {refills} refills in {days} days"
    )
    print(f"los: truth {los_truth}, detected {los_det}, matched {los_tp}")
    print(
        f"urine events that differ between {window_min}-min windows and one whole-day pass: {window_diff}"
    )
    print(f"time: simulate {t_gen:.1f} s, detect {t_det:.1f} s")
    goals = (
        uses.precision >= 0.95
        and uses.recall >= 0.95
        and transfers.confused == 0
        and pct([abs(x) for x in uses.errors], 50) <= 15
    )
    print(
        f"goals (use precision & recall >= 0.95, no transfer as use, median start error <= 15 s): {'MET' if goals else 'NOT MET'}"
    )
    return {"uses": uses, "transfers": transfers, "goals": goals}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--window-min", type=int, default=60)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--no-png", action="store_true")
    ap.add_argument("--skip-real", action="store_true")
    ap.add_argument("--skip-sim", action="store_true")
    ap.add_argument(
        "--noise-scale", type=float, default=1.0, help="multiply every day's noise (stress)"
    )
    ap.add_argument("--min-confidence", type=float, default=0.5, help="the 'would post' cut")
    args = ap.parse_args(argv)
    if not args.skip_real:
        run_real(None if args.no_png else args.out)
        print()
    if not args.skip_sim:
        run_sim(args.days, args.window_min, args.min_confidence, args.noise_scale)
    return 0


if __name__ == "__main__":
    sys.exit(main())
