"""Pure detectors: a frame of readings in, a list of events out (no Dagster, no database).

See `base.py` for the frame and event contract and `registry.py` for the processors.
"""

from peebot_dagster.detectors.base import (
    FRAME_COLUMNS,
    Event,
    Processor,
    empty_frame,
    event_key,
    normalize_frame,
    window_frame,
)
from peebot_dagster.detectors.registry import BY_NAME, PROCESSORS, all_items, get_processor

__all__ = [
    "BY_NAME",
    "FRAME_COLUMNS",
    "PROCESSORS",
    "Event",
    "Processor",
    "all_items",
    "empty_frame",
    "event_key",
    "get_processor",
    "normalize_frame",
    "window_frame",
]
