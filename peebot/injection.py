"""One manual reading through the ingest path (validate, enrich, dedupe, write), shared by
`peebot inject` and the dashboard's `POST /api/inject`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from peebot_ingest.batch import Batch
from peebot_ingest.records import ValidatedReading
from peebot_ingest.sink import DatabaseSink
from peebot_ingest.validate import Validator


class InjectRejected(ValueError):
    """Validation refused the reading; it is recorded in `rejected_update`."""


@dataclass(frozen=True)
class Injected:
    written: bool  # False: the same item, value and time were already stored
    item: str
    value: float
    ts: datetime
    event_id: str


def inject_reading(
    url: str,
    item: str,
    value: str,
    when: datetime,
    status_class: int | None = None,
    metadata: dict[str, Any] | None = None,
) -> Injected:
    """Validate and write one reading. Raises InjectRejected (recorded) or the writer's
    DatabaseUnavailable."""
    validator = Validator(source="inject", clock_check=False)
    result = validator.reading(
        item,
        when,
        value,
        status_class,
        received_at=time.time(),
        metadata={"manual": True, **(metadata or {})},
    )
    sink = DatabaseSink(url, source="inject")
    try:
        if isinstance(result, ValidatedReading):
            written = sink.write(Batch(readings=[result])).written
        else:
            sink.write(Batch(rejections=[result]))
    finally:
        sink.close()
    if not isinstance(result, ValidatedReading):
        raise InjectRejected(result.reason)
    return Injected(bool(written), item, result.value, result.ts, str(result.event_uuid))
