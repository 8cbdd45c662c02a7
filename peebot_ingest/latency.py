"""Receipt-to-commit latency of the feed's readings, for the daemon's summary line."""

from __future__ import annotations

import bisect


class LatencyHistogram:
    """Receipt-to-commit latency, 1 ms buckets up to 60 s (exact enough, O(1) per reading)."""

    def __init__(self, max_seconds: float = 60.0) -> None:
        self.buckets = [0] * (int(max_seconds * 1000) + 1)
        self.count = 0
        self.max = 0.0

    def add(self, seconds: float) -> None:
        i = int(seconds * 1000)
        if i < 0:
            i = 0
        elif i >= len(self.buckets):
            i = len(self.buckets) - 1
        self.buckets[i] += 1
        self.count += 1
        if seconds > self.max:
            self.max = seconds

    def quantile(self, q: float) -> float | None:
        if not self.count:
            return None
        target = q * self.count
        running = 0
        cumulative = []
        for n in self.buckets:
            running += n
            cumulative.append(running)
        i = bisect.bisect_left(cumulative, target)
        return (i + 0.5) / 1000.0
