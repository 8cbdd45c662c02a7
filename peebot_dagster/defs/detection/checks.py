"""Asset checks on the detection assets: feed freshness while in signal, no duplicate events,
plausible event rates. All warn (non-blocking): a stale feed or a burst of events is worth
a look, not a reason to stop detecting."""

# No `from __future__ import annotations`: Dagster inspects these annotations at runtime.

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from peebot_dagster import store
from peebot_dagster.defs.detection.assets import asset_name
from peebot_dagster.defs.detection.partitions import minute_partitions
from peebot_dagster.defs.tags import PARTITION_TAG, RANGE_END_TAG, RANGE_START_TAG
from peebot_dagster.detectors.base import Processor
from peebot_dagster.detectors.registry import PROCESSORS
from peebot_dagster.partitions import MINUTE, key_start
from peebot_dagster.resources import PostgresResource
from peebot_dagster.settings import get_settings

# Generous ceilings a day: a crew of 7 visits the toilet maybe 40 times; the UPA cycles a
# few times a day; the feed can flap but hundreds of LOS a day means a broken feed.
DEFAULT_MAX_PER_DAY = {
    "urination": 60,
    "bulk_transfer": 12,
    "upa_cycle_start": 48,
    "upa_cycle_stop": 48,
    "los": 300,
    "aos": 300,
    "clean_water_draw": 48,
    "clean_water_refill": 24,
}
FALLBACK_MAX_PER_DAY = 200
DAY = timedelta(days=1)


def max_per_day(overrides: Mapping[str, int]) -> dict[str, int]:
    """The ceilings: the defaults, with `PEEBOT_MAX_EVENTS_PER_DAY`'s over them."""
    return {**DEFAULT_MAX_PER_DAY, **overrides}


def run_range(tags: Mapping[str, str], now: datetime) -> tuple[datetime, datetime]:
    """The time range the run covered (from its partition tags), or the last day."""
    if RANGE_START_TAG in tags and RANGE_END_TAG in tags:
        return key_start(tags[RANGE_START_TAG]), key_start(tags[RANGE_END_TAG]) + MINUTE
    if PARTITION_TAG in tags:
        start = key_start(tags[PARTITION_TAG])
        return start, start + MINUTE
    return now - DAY, now


def freshness(
    signal: store.SignalState | None, watermark: datetime | None, now: datetime, max_lag: float
) -> tuple[bool, dict[str, Any]]:
    """Fresh unless the feed says it has signal and ingest's newest reading is old."""
    meta: dict[str, Any] = {"max_lag_seconds": max_lag}
    if watermark is not None:
        meta["lag_seconds"] = round((now - watermark).total_seconds(), 1)
        meta["ingest_watermark"] = dg.MetadataValue.timestamp(watermark)
    if signal is None:
        meta["signal"] = "unknown (no feed_status rows)"
        return True, meta
    meta["signal"] = signal.state
    if signal.state != "AOS":
        return True, meta
    if watermark is None:
        return False, meta
    return (now - watermark).total_seconds() <= max_lag, meta


def build_freshness_check(
    asset_key: dg.AssetKey, partitions_def: dg.PartitionsDefinition | None
) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=asset_key,
        name="feed_freshness",
        partitions_def=partitions_def,
        description=(
            "While the feed reports signal (AOS), ingest's newest reading is at most "
            "PEEBOT_FEED_MAX_LAG_SECONDS old."
        ),
    )
    def feed_freshness(db: PostgresResource) -> dg.AssetCheckResult:
        with db.connect(autocommit=True) as conn:
            signal = store.latest_signal(conn)
            watermark = store.ingest_watermark(conn)
        passed, meta = freshness(
            signal, watermark, datetime.now(UTC), get_settings().feed_max_lag_seconds
        )
        return dg.AssetCheckResult(
            passed=passed, severity=dg.AssetCheckSeverity.WARN, metadata=meta
        )

    return feed_freshness


_DUPLICATES_SQL = """
WITH ev AS (
    SELECT event_type, item_id, detected_at, window_key,
           lag(coalesce(ended_at, detected_at)) OVER (
               PARTITION BY event_type, item_id ORDER BY detected_at, id) AS prev_end
    FROM detected_event
    WHERE processor = %(processor)s AND retracted_at IS NULL
      AND detected_at >= %(lo)s AND detected_at < %(hi)s
)
SELECT count(*) FILTER (WHERE detected_at <= prev_end
                          AND detected_at >= %(start)s) AS overlapping,
       count(*) FILTER (WHERE window_key <> to_char(detected_at AT TIME ZONE 'UTC',
                                                    'YYYY-MM-DD-HH24:MI')
                          AND detected_at >= %(start)s) AS misowned,
       count(*) FILTER (WHERE detected_at >= %(start)s) AS checked
FROM ev
"""


def build_duplicates_check(
    asset_key: dg.AssetKey, processor: Processor, partitions_def: dg.PartitionsDefinition | None
) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=asset_key,
        name="no_duplicate_events",
        partitions_def=partitions_def,
        description=(
            "In the run's range, no two live events of one type and item overlap in time "
            "(a double detection), and each is owned by the window of its start minute."
        ),
    )
    def no_duplicate_events(
        context: dg.AssetCheckExecutionContext, db: PostgresResource
    ) -> dg.AssetCheckResult:
        start, end = run_range(context.run.tags, datetime.now(UTC))
        with db.connect(autocommit=True) as conn:
            row = conn.execute(
                _DUPLICATES_SQL,
                {
                    "processor": processor.name,
                    "lo": start - processor.lookback,
                    "hi": end,
                    "start": start,
                },
            ).fetchone()
        overlapping, misowned, checked = (int(v) for v in row) if row else (0, 0, 0)
        return dg.AssetCheckResult(
            passed=overlapping == 0 and misowned == 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"overlapping": overlapping, "misowned": misowned, "checked": checked},
        )

    return no_duplicate_events


def build_rate_check(
    asset_key: dg.AssetKey, processor: Processor, partitions_def: dg.PartitionsDefinition | None
) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=asset_key,
        name="plausible_event_rate",
        partitions_def=partitions_def,
        description=(
            "Live events of each type in the day up to the run's end stay under a ceiling "
            "(PEEBOT_MAX_EVENTS_PER_DAY)."
        ),
    )
    def plausible_event_rate(
        context: dg.AssetCheckExecutionContext, db: PostgresResource
    ) -> dg.AssetCheckResult:
        _, end = run_range(context.run.tags, datetime.now(UTC))
        limits = max_per_day(get_settings().max_events_per_day)
        with db.connect(autocommit=True) as conn:
            counts = dict(
                conn.execute(
                    "SELECT event_type, count(*) FROM detected_event "
                    "WHERE processor = %s AND retracted_at IS NULL "
                    "AND detected_at >= %s AND detected_at < %s GROUP BY event_type",
                    (processor.name, end - DAY, end),
                ).fetchall()
            )
        meta: dict[str, Any] = {}
        too_many = []
        for event_type in sorted(set(processor.event_types) | set(counts)):
            n = int(counts.get(event_type, 0))
            limit = limits.get(event_type, FALLBACK_MAX_PER_DAY)
            meta[f"{event_type}_per_day"] = n
            if n > limit:
                too_many.append(f"{event_type} {n} > {limit}")
        if too_many:
            meta["too_many"] = "; ".join(too_many)
        return dg.AssetCheckResult(
            passed=not too_many, severity=dg.AssetCheckSeverity.WARN, metadata=meta
        )

    return plausible_event_rate


def build_detection_checks(
    processors: Sequence[Processor] = PROCESSORS,
    partitions_def: dg.PartitionsDefinition | None = minute_partitions,
) -> list[dg.AssetChecksDefinition]:
    """The checks, partitioned like their assets. An unpartitioned check on a partitioned
    asset makes Dagster list every partition of the asset (croniter, ~20,000 keys for 14
    days of minutes, 2-3 s a check) each time a range run evaluates it; partitioned, it
    sees only the run's range (docs/ARCHITECTURE.md, "Backfills")."""
    checks: list[dg.AssetChecksDefinition] = []
    for processor in processors:
        key = dg.AssetKey(asset_name(processor))
        checks.append(build_duplicates_check(key, processor, partitions_def))
        checks.append(build_rate_check(key, processor, partitions_def))
        if processor.name == "signal":
            checks.append(build_freshness_check(key, partitions_def))
    return checks


DETECTION_CHECKS = build_detection_checks()
