"""Readings for the writer tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from peebot_ingest.records import ValidatedReading
from peebot_ingest.validate import Validator

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def readings(
    n: int, item: str = "NODE3000005", start: datetime = T0, *, calibrated: bool = False
) -> list[ValidatedReading]:
    """`n` valid readings of one item, a second apart from `start` (values 0..99)."""
    v = Validator(source="replay", clock_check=False)
    out = []
    for i in range(n):
        r = v.reading(
            item,
            start + timedelta(seconds=i),
            float(i % 100),
            24,
            f"{i % 100}" if calibrated else None,
        )
        assert isinstance(r, ValidatedReading)
        out.append(r)
    return out
