"""The detector contract: the frame a detector reads, the events it returns, and a processor.

Frame (`FRAME_COLUMNS`): one row per reading, columns
    item_id       str
    ts            tz-aware UTC datetime64 (the ISS TimeStamp decoded)
    value         float
    status_class  nullable Int64 (pd.NA when the source had none, e.g. a recording)
sorted by ts (stable for equal ts). A caller that detects over a window `[start, end)` passes
the readings of the processor's `items` in `[start - lookback, end + lookahead)` **plus, for
each item, the last reading before `start - lookback`** (the as-of, carried-forward value).
ISS Live only sends on change, so without that row the first value in the frame would look
like a step from nowhere. Detectors never treat the first reading of an item as a change.

A window owns the events that *start* inside it (`Processor.detect_window`). Detectors put
an event's start on a reading chosen only from data near it (within the processor's
look-back/look-ahead), so two overlapping windows that both see a rise give it the same start
and therefore the same `event_key`: a rise straddling two windows is one event, owned by the
window its start falls in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from peebot_iss import utc

FRAME_COLUMNS = ("item_id", "ts", "value", "status_class")

# Status.Class of TIME_000001 while the station has signal (AOS); any other class is LOS.
AOS_STATUS_CLASS = 24


def empty_frame() -> pd.DataFrame:
    """A frame with the detector columns and no rows."""
    return pd.DataFrame(
        {
            "item_id": pd.Series([], dtype="object"),
            "ts": pd.Series([], dtype="datetime64[ns, UTC]"),
            "value": pd.Series([], dtype="float64"),
            "status_class": pd.Series([], dtype="Int64"),
        }
    )


def normalize_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with the contract's dtypes, sorted by ts (stable). Accepts naive UTC ts."""
    missing = [c for c in FRAME_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"detector frame lacks columns {missing}")
    out = frame.loc[:, list(FRAME_COLUMNS)].copy()
    out["item_id"] = out["item_id"].astype("object")
    ts = pd.to_datetime(out["ts"], utc=True)
    out["ts"] = ts.dt.as_unit("ns") if hasattr(ts.dt, "as_unit") else ts
    out["value"] = pd.to_numeric(out["value"], errors="coerce").astype("float64")
    out["status_class"] = pd.to_numeric(out["status_class"], errors="coerce").astype("Int64")
    out = out.dropna(subset=["ts", "value"])
    return out.sort_values("ts", kind="stable").reset_index(drop=True)


def item_series(frame: pd.DataFrame, item_id: str) -> tuple[np.ndarray, np.ndarray]:
    """(epoch seconds float64, values float64) of one item, in time order."""
    rows = frame[frame["item_id"] == item_id]
    if rows.empty:
        return np.empty(0), np.empty(0)
    secs = to_epoch_seconds(rows["ts"])
    return secs, rows["value"].to_numpy(dtype="float64")


def to_epoch_seconds(ts: pd.Series) -> np.ndarray:
    """Seconds since the epoch of a tz-aware datetime column."""
    as_utc = pd.to_datetime(ts, utc=True)
    return (as_utc - pd.Timestamp(0, tz="UTC")).dt.total_seconds().to_numpy(dtype="float64")


def from_epoch_seconds(secs: float) -> datetime:
    """UTC datetime of epoch seconds, rounded to the microsecond."""
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=round(secs * 1e6))


def as_utc(when: datetime | pd.Timestamp) -> datetime:
    """`peebot_iss.utc.as_utc` (a naive time is UTC), for pandas Timestamps too."""
    if isinstance(when, pd.Timestamp):
        when = when.to_pydatetime()
    return utc.as_utc(when)


def format_key_time(when: datetime) -> str:
    """The time part of an event key: UTC, to the millisecond (readings are ~1 s apart)."""
    when = as_utc(when)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Event:
    """One detected event. `start` is the reading that begins it (stable across windows)."""

    event_type: str
    processor: str
    item_id: str
    start: datetime
    end: datetime | None
    confidence: float
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 <= self.confidence <= 1.0 or math.isnan(self.confidence):
            raise ValueError(f"confidence {self.confidence} is outside 0..1")
        object.__setattr__(self, "start", as_utc(self.start))
        if self.end is not None:
            object.__setattr__(self, "end", as_utc(self.end))

    @property
    def event_key(self) -> str:
        return event_key(self.processor, self.item_id, self.start)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (times as ISO 8601 UTC)."""
        return {
            "event_key": self.event_key,
            "event_type": self.event_type,
            "processor": self.processor,
            "item_id": self.item_id,
            "start": self.start.isoformat().replace("+00:00", "Z"),
            "end": None if self.end is None else self.end.isoformat().replace("+00:00", "Z"),
            "confidence": round(self.confidence, 4),
            "metadata": jsonable(self.metadata),
        }


def event_key(processor: str, item_id: str, start: datetime) -> str:
    """Deterministic key: processor + item + start, unique in `detected_event`, so a re-run
    window updates its events instead of adding them (docs/ARCHITECTURE.md, "Window ownership")."""
    return f"{processor}:{item_id}:{format_key_time(start)}"


def jsonable(value: Any) -> Any:
    """Plain JSON types for metadata (numpy scalars, datetimes, tuples, NaN -> None)."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    if isinstance(value, (datetime, pd.Timestamp)):
        return as_utc(value).isoformat().replace("+00:00", "Z")
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA:
        return None
    return value


DetectFn = Callable[..., list[Event]]


@dataclass(frozen=True)
class Processor:
    """A detector with what it needs around a window.

    `detect(frame, params=None, horizon=None)`: all events whose start is in the frame.
    `horizon` is the time up to which the frame is complete (values hold until then); it
    defaults to the last reading. `detect_window` keeps the events the window owns.
    """

    name: str
    items: tuple[str, ...]
    event_types: tuple[str, ...]
    lookback: timedelta
    lookahead: timedelta
    params: Any  # a frozen dataclass of thresholds, with defaults
    detect_fn: DetectFn
    description: str = ""

    def detect(
        self, frame: pd.DataFrame, params: Any = None, horizon: datetime | None = None
    ) -> list[Event]:
        frame = normalize_frame(frame)
        frame = frame[frame["item_id"].isin(self.items)].reset_index(drop=True)
        return self.detect_fn(frame, self.params if params is None else params, horizon=horizon)

    def detect_window(
        self,
        frame: pd.DataFrame,
        start: datetime,
        end: datetime,
        params: Any = None,
        horizon: datetime | None = None,
    ) -> list[Event]:
        """Events that start in `[start, end)`; the frame must cover the look-back/ahead."""
        start, end = as_utc(start), as_utc(end)
        if horizon is None:
            horizon = end + self.lookahead
        events = self.detect(frame, params, horizon=horizon)
        return [e for e in events if start <= e.start < end]

    def params_dict(self, params: Any = None) -> dict[str, Any]:
        p = self.params if params is None else params
        return jsonable(asdict(p)) if is_dataclass(p) and not isinstance(p, type) else {}


def window_frame(
    frame: pd.DataFrame,
    start: datetime,
    end: datetime,
    lookback: timedelta,
    lookahead: timedelta,
    items: Iterable[str] | None = None,
) -> pd.DataFrame:
    """The rows a caller passes for window `[start, end)`: readings in
    `[start - lookback, end + lookahead)` plus each item's last reading before that range.
    (The SQL the Dagster assets run is the database form of this function.)"""
    frame = normalize_frame(frame)
    if items is not None:
        frame = frame[frame["item_id"].isin(list(items))]
    lo = pd.Timestamp(as_utc(start) - lookback)
    hi = pd.Timestamp(as_utc(end) + lookahead)
    inside = frame[(frame["ts"] >= lo) & (frame["ts"] < hi)]
    before = frame[frame["ts"] < lo]
    asof = before.groupby("item_id", sort=False).tail(1)
    out = pd.concat([asof, inside]) if not asof.empty else inside
    return out.sort_values("ts", kind="stable").reset_index(drop=True)


def horizon_seconds(frame: pd.DataFrame, horizon: datetime | None) -> float:
    """Epoch seconds up to which the frame is complete: the given horizon, and never before
    the frame's last reading (of any item: the other items show the feed was still up)."""
    last = float(to_epoch_seconds(frame["ts"]).max()) if not frame.empty else -math.inf
    if horizon is None:
        return last
    return max(as_utc(horizon).timestamp(), last)


def step_mean(
    secs: np.ndarray, values: np.ndarray, lo: float, hi: float
) -> tuple[float, float, float]:
    """Time-weighted mean, standard deviation and covered seconds of the step signal
    (each value holds until the next reading) over `[lo, hi)`. NaNs when nothing covers it."""
    if hi <= lo or secs.size == 0:
        return math.nan, math.nan, 0.0
    i0 = int(np.searchsorted(secs, lo, side="right")) - 1  # reading in force at lo
    i1 = int(np.searchsorted(secs, hi, side="left"))
    if i0 < 0:
        i0 = 0
        lo = max(lo, float(secs[0]))
        if hi <= lo:
            return math.nan, math.nan, 0.0
    seg_t = secs[i0:i1]
    seg_v = values[i0:i1]
    if seg_t.size == 0:
        return math.nan, math.nan, 0.0
    starts = np.maximum(seg_t, lo)
    ends = np.append(seg_t[1:], hi)
    ends = np.minimum(ends, hi)
    w = np.clip(ends - starts, 0.0, None)
    total = float(w.sum())
    if total <= 0:
        v = float(seg_v[-1])
        return v, 0.0, 0.0
    mean = float(np.dot(w, seg_v) / total)
    var = float(np.dot(w, (seg_v - mean) ** 2) / total)
    return mean, math.sqrt(max(var, 0.0)), total


def value_at(secs: np.ndarray, values: np.ndarray, t: float) -> float:
    """The value in force at time t (last reading at or before t), NaN before the first."""
    i = int(np.searchsorted(secs, t, side="right")) - 1
    return float(values[i]) if i >= 0 else math.nan


def drop_repeats(secs: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Readings whose value differs from the previous one (a re-sent identical value, e.g. a
    reconnect snapshot, carries no change)."""
    if secs.size == 0:
        return secs, values
    keep = np.ones(secs.size, dtype=bool)
    keep[1:] = values[1:] != values[:-1]
    return secs[keep], values[keep]
