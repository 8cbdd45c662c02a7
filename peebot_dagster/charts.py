"""Small PNG charts of a level for Dagster's metadata: a detection window's events, a day.

Rendered with matplotlib's Agg backend (no display); attached only to rare materializations
(minutes with an event, the daily summary).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pandas as pd

from peebot_dagster.detectors.base import Event
from peebot_dagster.partitions import partition_key
from peebot_dagster.posting.render import EventView
from peebot_dagster.windows import WindowOutcome, level_item

# The unit of each charted level (ISS Live's catalogue: the tanks are in percent).
LEVEL_UNITS = {"NODE3000005": "%", "NODE3000008": "%", "NODE3000009": "%"}


def window_chart_png(
    frame: pd.DataFrame,
    item: str,
    events: list[Event],
    lo: datetime,
    hi: datetime,
    title: str,
) -> bytes:
    """A step chart of `item` over `[lo, hi)` with the events marked (PNG bytes)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import DateFormatter, date2num
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    rows = frame[frame["item_id"] == item]
    before = rows[rows["ts"] < pd.Timestamp(lo)].tail(1)
    inside = rows[(rows["ts"] >= pd.Timestamp(lo)) & (rows["ts"] < pd.Timestamp(hi))]
    xs = [pd.Timestamp(lo), *list(inside["ts"])] if not before.empty else list(inside["ts"])
    ys = list(before["value"]) + list(inside["value"])
    if xs:
        xs.append(pd.Timestamp(hi))
        ys.append(ys[-1])
    # Big enough to read in Dagster's metadata dialog without zooming: 900 x 380 px, 12 pt.
    fig = Figure(figsize=(9, 3.8), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    if xs:
        ax.step([x.to_pydatetime() for x in xs], ys, where="post", linewidth=2)
    for event in events:
        t0, t1 = date2num(event.start), date2num(event.end or event.start)
        ax.axvspan(t0, t1, color="tab:orange", alpha=0.3)
        ax.axvline(t0, color="tab:orange", linewidth=1.5)
    ax.set_title(title, fontsize=13)
    unit = LEVEL_UNITS.get(item, "")
    ax.set_ylabel(f"{item} ({unit})" if unit else item, fontsize=12)
    ax.set_xlabel("time (UTC)", fontsize=12)
    ax.tick_params(labelsize=11)
    ax.xaxis.set_major_formatter(DateFormatter("%H:%M"))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # the tank reports whole percent
    ax.grid(True, alpha=0.3)
    ax.set_xlim(date2num(lo), date2num(hi))
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def event_charts(
    outcome: WindowOutcome, limit: int, margin: timedelta = timedelta(minutes=10)
) -> dict[str, bytes]:
    """One chart per minute that holds an event start (at most `limit`), keyed by minute."""
    item = level_item(outcome.processor)
    if item is None or not outcome.events:
        return {}
    by_minute: dict[str, list[Event]] = {}
    for event in outcome.events:
        by_minute.setdefault(partition_key(event.start), []).append(event)
    charts: dict[str, bytes] = {}
    for key in sorted(by_minute)[:limit]:
        events = by_minute[key]
        lo = min(e.start for e in events) - margin
        hi = max(e.end or e.start for e in events) + margin
        types = ", ".join(sorted({e.event_type for e in events}))
        charts[key] = window_chart_png(outcome.frame, item, events, lo, hi, f"{item} {key} {types}")
    return charts


def day_chart_png(
    day_start: datetime,
    day_end: datetime,
    levels: Sequence[tuple[datetime, float]],
    events: Sequence[EventView],
) -> bytes:
    """A small step chart of the tank level over the day, uses and transfers marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    def num(when: datetime) -> float:
        return float(mdates.date2num(when))

    fig, ax = plt.subplots(figsize=(7, 2.4), dpi=80)
    if levels:
        xs = [num(max(ts, day_start)) for ts, _ in levels] + [num(min(day_end, datetime.now(UTC)))]
        ys = [v for _, v in levels] + [levels[-1][1]]
        ax.step(xs, ys, where="post", color="#c9a400", linewidth=1.2)
    colours = {"urination": "#1f77b4", "bulk_transfer": "#d62728"}
    for e in events:
        if e.event_type in colours:
            ax.axvline(num(e.detected_at), color=colours[e.event_type], linewidth=0.8, alpha=0.7)
    ax.set_xlim(num(day_start), num(day_end))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    ax.set_ylabel("urine tank %")
    ax.set_title(f"{day_start:%Y-%m-%d} UTC", fontsize=9)
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()
