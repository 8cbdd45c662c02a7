"""Where `peebot up`'s minute partitions start: where its data starts.

Dagster's default for the code location is a fixed look-back (`PEEBOT_PARTITIONS_START`, else
`PEEBOT_PARTITIONS_DAYS` = 14 days, docs/ARCHITECTURE.md "Dagster design"), right for a
production database with history. A stack started on a fresh home has no such history: with
14 days of empty minutes every detection asset would read "0% filled, 20,000 missing". So
`up` starts the partitions at the first reading's minute (or, with no reading yet, at the
minute its feed starts), and keeps that choice in the home so it does not move on the next
start. An explicit `PEEBOT_PARTITIONS_START` always wins.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

MINUTE_FMT = "%Y-%m-%d-%H:%M"  # the format PEEBOT_PARTITIONS_START takes
FILE_NAME = "partitions_start"
# never earlier than Dagster's own default look-back: an old database must not give an asset
# more partitions than its UI handles well (~100,000)
MAX_LOOK_BACK = timedelta(days=14)


def choose_start(first_reading: datetime | None, data_start: datetime, now: datetime) -> datetime:
    """The first partition's minute: the first reading's (when there is one), else when the
    feed starts, never more than MAX_LOOK_BACK before `now`. Pure."""
    start = first_reading if first_reading is not None else data_start
    start = max(start.astimezone(UTC), now.astimezone(UTC) - MAX_LOOK_BACK)
    return start.replace(second=0, microsecond=0)


def stack_partitions_start(
    home: Path, first_reading: datetime | None, data_start: datetime, now: datetime
) -> str:
    """The value for PEEBOT_PARTITIONS_START: the one kept in the home, else a new choice,
    written there."""
    kept = home / FILE_NAME
    if kept.exists():
        text = kept.read_text(encoding="utf-8").strip()
        if text:
            return text
    text = choose_start(first_reading, data_start, now).strftime(MINUTE_FMT)
    home.mkdir(parents=True, exist_ok=True)
    kept.write_text(text + "\n", encoding="utf-8")
    return text
