"""Builders for crafted reading sequences (imported by the detector tests)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import pandas as pd

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


class FrameBuilder:
    """Accumulates readings as (seconds after T0, value) per item."""

    def __init__(self) -> None:
        self.rows: list[dict[str, object]] = []

    def add(
        self, item: str, points: Iterable[tuple[float, float]], status: int | None = None
    ) -> FrameBuilder:
        for t, v in points:
            self.rows.append(
                {
                    "item_id": item,
                    "ts": at(t),
                    "value": float(v),
                    "status_class": pd.NA if status is None else status,
                }
            )
        return self

    def tank(self, points: Iterable[tuple[float, float]]) -> FrameBuilder:
        return self.add("NODE3000005", points)

    def upa(self, points: Iterable[tuple[float, float]]) -> FrameBuilder:
        return self.add("NODE3000004", points)

    def heartbeat(
        self, t_from: float, t_to: float, status: int = 24, every: float = 1.0
    ) -> FrameBuilder:
        t = t_from
        while t < t_to:
            self.add("TIME_000001", [(t, t)], status=status)
            t += every
        return self

    def frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.rows, columns=["item_id", "ts", "value", "status_class"])
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
        frame["status_class"] = frame["status_class"].astype("Int64")
        return frame.sort_values("ts", kind="stable").reset_index(drop=True)


def climb(t: float, frm: int, to: int, every: float = 5.0) -> list[tuple[float, float]]:
    """frm+1 .. to, one step every `every` seconds starting at t."""
    return [(t + k * every, v) for k, v in enumerate(range(frm + 1, to + 1))]


def flips(t_from: float, t_to: float, low: int, every: float = 7.0) -> list[tuple[float, float]]:
    """low+1, low, low+1, ... every `every` seconds, ending on low."""
    out: list[tuple[float, float]] = []
    t, k = t_from, 0
    while t < t_to:
        out.append((t, low + 1 if k % 2 == 0 else low))
        t += every
        k += 1
    if out and out[-1][1] != low:
        out.append((t, low))
    return out
