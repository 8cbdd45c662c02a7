"""Assets: the external `telemetry_reading` table and one detection asset per processor."""

from peebot_dagster.assets.detection import (
    DETECTION_ASSETS,
    asset_name,
    build_detection_assets,
)
from peebot_dagster.assets.telemetry import TELEMETRY_READING_KEY, telemetry_reading_spec

__all__ = [
    "DETECTION_ASSETS",
    "TELEMETRY_READING_KEY",
    "asset_name",
    "build_detection_assets",
    "telemetry_reading_spec",
]
