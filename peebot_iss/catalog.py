"""The ISS Live channel catalogue (337 items), shipped as package data."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

TIME_ITEM = "TIME_000001"
YEAR_ITEM = "TIME_000002"
URINE_TANK = "NODE3000005"
UPA_STATE = "NODE3000004"

# The fields of every item, in the order a client subscribes to them.
FIELDS: tuple[str, ...] = (
    "TimeStamp",
    "Value",
    "Status.Class",
    "Status.Indicator",
    "Status.Color",
    "CalibratedData",
)
# `Status.Class` of TIME_000001 while the station has signal (acquisition of signal, AOS);
# any other class is loss of signal (docs/ARCHITECTURE.md, "Ingest").
AOS_CLASS = 24

_ENUM_PAIR = re.compile(r"^\s*(-?\d+)\s*=\s*(.*?)\s*$")


@dataclass(frozen=True)
class Channel:
    item_id: str
    discipline: str
    description: str
    units: str
    enum_codes: dict[int, str] = field(default_factory=dict)
    ops_nom: str = ""
    format_spec: str = ""

    @property
    def is_enum(self) -> bool:
        return bool(self.enum_codes)


def parse_enum(text: str) -> dict[int, str]:
    """`'2=STOP; 4=SHUTDOWN'` -> `{2: 'STOP', 4: 'SHUTDOWN'}`; unparseable parts are ignored."""
    codes: dict[int, str] = {}
    for part in text.split(";"):
        m = _ENUM_PAIR.match(part)
        if m:
            codes[int(m.group(1))] = " ".join(m.group(2).split())
    return codes


@cache
def load_catalog() -> tuple[Channel, ...]:
    path = resources.files("peebot_iss") / "data" / "iss_live_items.csv"
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    return tuple(
        Channel(
            item_id=r["public_pui"].strip(),
            discipline=r["discipline"].strip(),
            description=r["description"].strip(),
            units=r["units"].strip(),
            enum_codes=parse_enum(r["enum"] or ""),
            ops_nom=r["ops_nom"].strip(),
            format_spec=r["format_spec"].strip(),
        )
        for r in rows
    )


def catalog_by_id() -> dict[str, Channel]:
    return {c.item_id: c for c in load_catalog()}
