"""Ground truth: what the simulator really did, one record per event, as JSON lines.

The detection bench and tests score detectors against these records.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

# `dip`: a one-sample dip of the tank sensor (noise, not an event; kept so a bench can tell
# which false detections came from one)
TRUTH_KINDS = ("urination", "bulk_transfer", "upa_start", "upa_stop", "los", "dip")


@dataclass
class TruthEvent:
    kind: str  # one of TRUTH_KINDS
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


def write_truth_lines(path: str | Path, events: Iterable[TruthEvent]) -> int:
    """Write events as JSON lines; returns how many."""
    n = 0
    with Path(path).open("w", encoding="utf-8") as fh:
        for ev in events:
            fh.write(json.dumps(ev.to_json()) + "\n")
            n += 1
    return n


def read_truth_lines(path: str | Path) -> list[TruthEvent]:
    """The events of a JSON-lines truth file."""
    text = Path(path).read_text(encoding="utf-8")
    return [TruthEvent.from_json(json.loads(line)) for line in text.splitlines() if line.strip()]
