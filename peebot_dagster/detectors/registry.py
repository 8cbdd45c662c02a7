"""All detection processors, by name. Dagster builds one detection asset per entry."""

from __future__ import annotations

from peebot_dagster.detectors.base import Processor
from peebot_dagster.detectors.signal import SIGNAL
from peebot_dagster.detectors.upa import UPA_CYCLE
from peebot_dagster.detectors.urine import URINE_TANK
from peebot_dagster.detectors.water import CLEAN_WATER

PROCESSORS: tuple[Processor, ...] = (URINE_TANK, UPA_CYCLE, SIGNAL, CLEAN_WATER)

BY_NAME: dict[str, Processor] = {p.name: p for p in PROCESSORS}


def get_processor(name: str) -> Processor:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown processor {name!r}; known: {sorted(BY_NAME)}") from None


def all_items() -> tuple[str, ...]:
    """Every item some processor reads."""
    return tuple(sorted({i for p in PROCESSORS for i in p.items}))
