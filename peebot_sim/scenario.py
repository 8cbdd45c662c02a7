"""Scheduled scenario events for the simulator: `use`, `transfer` and `los` at chosen times.

`parse_scenario` reads the `peebot simulate --scenario` text, a JSON file, or a list.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SCENARIO_KINDS = ("use", "transfer", "los")


@dataclass(frozen=True)
class ScenarioEvent:
    """A scheduled event: `use`, `transfer` or `los`, at an offset from the start or a time."""

    kind: str
    at: timedelta | datetime
    amount: float | None = None  # % of the tank (use, transfer)
    duration: timedelta | None = None  # los

    def time(self, start: datetime) -> datetime:
        return self.at if isinstance(self.at, datetime) else start + self.at


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
        if ev.kind not in SCENARIO_KINDS:
            raise ValueError(f"unknown scenario event kind {ev.kind!r} (use, transfer, los)")
    return events
