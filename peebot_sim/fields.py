"""What one feed update is: the six ISS Live fields of a reading, and the model's `Update`.

Kept apart from the physical model so the TLCP feeds and tests can build exact updates
without it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from peebot_iss.timestamps import format_timestamp

AOS_STATUS_CLASS = "24"
LOS_STATUS_CLASS = "0"  # any class other than 24 means loss of signal
STATUS_INDICATOR = "0"
STATUS_COLOR = "GREEN"


class Update:
    """One update as the feed sends it. `fields` (the 6 Lightstreamer strings) is built lazily."""

    __slots__ = ("calibrated", "item_id", "status_class", "t", "value")

    def __init__(
        self, t: float, item_id: str, value: str, status_class: str, calibrated: str
    ) -> None:
        self.t = t  # POSIX seconds of simulated time
        self.item_id = item_id
        self.value = value
        self.status_class = status_class
        self.calibrated = calibrated

    @property
    def sim_time(self) -> datetime:
        return datetime.fromtimestamp(self.t, UTC)

    @property
    def fields(self) -> dict[str, str]:
        return make_fields(self.sim_time, self.value, self.status_class, self.calibrated)

    def __repr__(self) -> str:
        return f"Update({self.sim_time.isoformat()}, {self.item_id}, {self.value!r})"


def make_fields(
    when: datetime, value: str, status_class: str = AOS_STATUS_CLASS, calibrated: str | None = None
) -> dict[str, str]:
    """The six ISS Live fields of a reading."""
    return {
        "TimeStamp": format_timestamp(when),
        "Value": value,
        "Status.Class": status_class,
        "Status.Indicator": STATUS_INDICATOR,
        "Status.Color": STATUS_COLOR,
        "CalibratedData": value if calibrated is None else calibrated,
    }
