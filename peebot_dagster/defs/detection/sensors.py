"""The detection sensors: the watermark pass and the live pass (docs/ARCHITECTURE.md,
"Watermark pass and live pass").

The watermark sensor runs detection for minutes the ingest daemon has completed. A minute `[m, m+1)` is complete when ingest's watermark (the newest reading written, ISS
time) has passed `m + 1 min + look-ahead` (the largest look-ahead of the detectors), so every
processor sees its whole window. The cursor is the last minute requested. A few pending
minutes become one run each (`run_key` = partition key); after downtime the backlog becomes
bounded range runs (`run_key` = `first...last`, Dagster's range tags) instead of hundreds of
single runs. On its first tick the sensor starts from the recent past, not from the start of
the partitions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg

from peebot_dagster import store
from peebot_dagster.defs.detection.jobs import detection_job, live_detection_job
from peebot_dagster.defs.detection.partitions import minute_partitions
from peebot_dagster.defs.tags import RUN_KEY_TAG, range_run_key, range_tags
from peebot_dagster.detectors.registry import PROCESSORS
from peebot_dagster.partitions import MINUTE, floor_minute, key_start, partition_key
from peebot_dagster.resources import NOT_CONFIGURED, PostgresResource
from peebot_dagster.settings import Settings, get_settings


@dataclass(frozen=True)
class SensorSettings:
    """The watermark sensor's shape (`PEEBOT_SENSOR_*`, parsed by settings.py)."""

    interval_seconds: int = 15
    initial_minutes: int = 10  # first tick: this many recent complete minutes
    max_single_runs: int = 5  # more pending minutes than this: range runs
    # minutes per range run. Creating a run writes a planned event per minute per asset
    # (~10 ms each on PostgreSQL), in the daemon's tick: 4 x 120 x 4 assets is ~20 s a tick
    range_minutes: int = 120
    max_range_runs: int = 4  # range runs per tick (the next tick continues)

    @classmethod
    def from_settings(cls, settings: Settings) -> SensorSettings:
        return cls(
            interval_seconds=settings.sensor_interval_seconds,
            initial_minutes=settings.sensor_initial_minutes,
            max_single_runs=settings.sensor_max_single_runs,
            range_minutes=settings.sensor_range_minutes,
            max_range_runs=settings.sensor_max_range_runs,
        )


@dataclass(frozen=True)
class PlannedRun:
    first: str  # partition keys, inclusive
    last: str

    @property
    def run_key(self) -> str:
        return range_run_key(self.first, self.last)

    @property
    def is_range(self) -> bool:
        return self.first != self.last

    def run_request(self) -> dg.RunRequest:
        if self.is_range:
            return dg.RunRequest(run_key=self.run_key, tags=range_tags(self.first, self.last))
        return dg.RunRequest(run_key=self.run_key, partition_key=self.first)


def last_complete_minute(
    watermark: datetime, lookahead: timedelta, now: datetime | None = None
) -> datetime:
    """Start of the newest minute whose window (plus look-ahead) ingest has fully written,
    and that Dagster already has a partition for (it has ended by the wall clock)."""
    last = floor_minute(watermark - lookahead - MINUTE)
    if now is not None:
        last = min(last, floor_minute(now) - MINUTE)
    return last


def plan_runs(
    watermark: datetime | None,
    cursor: str | None,
    lookahead: timedelta,
    partitions_start: datetime,
    settings: SensorSettings,
    now: datetime | None = None,
) -> tuple[list[PlannedRun], str | None]:
    """The runs to request and the new cursor (pure: no Dagster, no database)."""
    if watermark is None:
        return [], cursor
    last = last_complete_minute(watermark, lookahead, now)
    # first tick: the recent past, not the start of the partitions
    recent = last - (settings.initial_minutes - 1) * MINUTE
    first = key_start(cursor) + MINUTE if cursor else recent
    first = max(first, partitions_start)
    if first > last:
        return [], cursor
    pending = int((last - first) / MINUTE) + 1
    if pending <= settings.max_single_runs:
        runs = [
            PlannedRun(partition_key(first + i * MINUTE), partition_key(first + i * MINUTE))
            for i in range(pending)
        ]
    else:
        runs = []
        chunk_start = first
        while chunk_start <= last and len(runs) < settings.max_range_runs:
            chunk_end = min(chunk_start + (settings.range_minutes - 1) * MINUTE, last)
            runs.append(PlannedRun(partition_key(chunk_start), partition_key(chunk_end)))
            chunk_start = chunk_end + MINUTE
    return runs, runs[-1].last


def existing_run_keys(instance: dg.DagsterInstance, job_name: str, keys: Sequence[str]) -> set[str]:
    """Run keys some run of `job_name` already carries (a moved-back cursor re-plans them)."""
    if not keys:
        return set()
    records = instance.get_run_records(
        filters=dg.RunsFilter(job_name=job_name, tags={RUN_KEY_TAG: list(keys)})
    )
    return {r.dagster_run.tags.get(RUN_KEY_TAG, "") for r in records}


def build_watermark_sensor(
    job: dg.UnresolvedAssetJobDefinition,
    partitions_def: dg.TimeWindowPartitionsDefinition,
    lookahead: timedelta,
    settings: SensorSettings | None = None,
    name: str = "telemetry_watermark_sensor",
) -> dg.SensorDefinition:
    settings = settings or SensorSettings.from_settings(get_settings())
    start = partitions_def.start.astimezone(UTC)

    @dg.sensor(
        name=name,
        job=job,
        minimum_interval_seconds=settings.interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Requests detection runs for minutes the ingest daemon has completed (watermark "
            f"minus the {lookahead} look-ahead); catches up in ranges of up to "
            f"{settings.range_minutes} minutes."
        ),
    )
    def watermark_sensor(context: dg.SensorEvaluationContext, db: PostgresResource):  # type: ignore[no-untyped-def]
        if not db.configured:
            return dg.SkipReason(NOT_CONFIGURED)
        with db.connect(autocommit=True) as conn:
            watermark = store.ingest_watermark(conn)
        if watermark is None:
            return dg.SkipReason("no ingest watermark yet (processor_state 'ingest')")
        runs, cursor = plan_runs(
            watermark, context.cursor, lookahead, start, settings, datetime.now(UTC)
        )
        if not runs:
            return dg.SensorResult(
                skip_reason=f"no new complete minute (ingest watermark {watermark:%H:%M:%S})",
                cursor=cursor,
            )
        seen = existing_run_keys(context.instance, job.name, [r.run_key for r in runs])
        requests = [r.run_request() for r in runs if r.run_key not in seen]
        if seen:
            context.log.info(f"skipping {len(seen)} run key(s) already run: {sorted(seen)[:5]}")
        return dg.SensorResult(
            run_requests=requests,
            cursor=cursor,
            skip_reason=None if requests else "every planned run key already has a run",
        )

    return watermark_sensor


MAX_LOOKAHEAD = max(p.lookahead for p in PROCESSORS)

telemetry_watermark_sensor = build_watermark_sensor(detection_job, minute_partitions, MAX_LOOKAHEAD)


# --------------------------------------------------------------------------- the live pass
#
# The watermark pass waits for the largest look-ahead (30 min), so on its own a toilet use
# would be posted half an hour late. The live pass re-runs the urine tank's newest minutes
# (the minute in progress included) whenever ingest's watermark moves: the detector confirms
# a use once its level has held `min_hold_s` (flag `short_hold` until the full hold window
# is seen), about 35 s after the first step. The same windows are re-run later by the
# watermark pass with the full look-ahead; a window owns its events, so that run updates,
# confirms or withdraws what the live pass found (a posted event is never deleted, only
# marked retracted: docs/ARCHITECTURE.md, "Window ownership").

LIVE_ACTIVE_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


@dataclass(frozen=True)
class LiveSettings:
    """The live pass sensor's shape (`PEEBOT_LIVE_*`, parsed by settings.py)."""

    interval_seconds: int = 5
    minutes: int = 3  # the newest minutes each live run covers (a use can straddle two)
    max_lag_minutes: int = 60  # older watermarks (catch-up, replays) are the final pass's job

    @classmethod
    def from_settings(cls, settings: Settings) -> LiveSettings:
        return cls(
            interval_seconds=settings.live_interval_seconds,
            minutes=settings.live_minutes,
            max_lag_minutes=settings.live_max_lag_minutes,
        )


def plan_live_run(
    watermark: datetime | None,
    cursor: str | None,
    partitions_start: datetime,
    settings: LiveSettings,
    now: datetime,
) -> tuple[PlannedRun | None, str | None, str]:
    """The live run to request (or None with the reason) and the new cursor (the watermark
    the run was planned for, ISO): the newest `minutes`, and every minute since the previous
    run's range, so that consecutive live runs leave no minute out. Pure."""
    if watermark is None:
        return None, cursor, "no ingest watermark yet"
    stamp = watermark.astimezone(UTC).isoformat()
    if cursor is not None and stamp <= cursor:
        return None, cursor, f"ingest watermark {watermark:%H:%M:%S} has not moved"
    if watermark < now - timedelta(minutes=settings.max_lag_minutes):
        return None, stamp, f"ingest watermark {watermark:%H:%M:%S} is too old for the live pass"
    last = min(floor_minute(watermark), floor_minute(now))  # the minute in progress exists
    first = last - (settings.minutes - 1) * MINUTE
    if cursor is not None:
        # From where the previous run's range began: when runs are slow (a busy machine) or
        # the watermark jumps (a fast simulator), the newest `minutes` alone would leave the
        # minutes in between to the watermark pass, half an hour later.
        previous = floor_minute(min(datetime.fromisoformat(cursor), now))
        first = min(first, previous - (settings.minutes - 1) * MINUTE)
    oldest = floor_minute(now) - timedelta(minutes=settings.max_lag_minutes)
    first = max(first, partitions_start, oldest)
    if first > last:
        return None, stamp, "before the first partition"
    return PlannedRun(partition_key(first), partition_key(last)), stamp, ""


def build_live_sensor(
    job: dg.UnresolvedAssetJobDefinition,
    partitions_def: dg.TimeWindowPartitionsDefinition,
    settings: LiveSettings | None = None,
    name: str = "live_detection_sensor",
) -> dg.SensorDefinition:
    settings = settings or LiveSettings.from_settings(get_settings())
    start = partitions_def.start.astimezone(UTC)

    @dg.sensor(
        name=name,
        job=job,
        minimum_interval_seconds=settings.interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"Live pass: re-runs the urine tank's newest {settings.minutes} minutes whenever the "
            "ingest watermark moves, one run at a time; the watermark pass confirms later."
        ),
    )
    def live_sensor(context: dg.SensorEvaluationContext, db: PostgresResource):  # type: ignore[no-untyped-def]
        if not db.configured:
            return dg.SkipReason(NOT_CONFIGURED)
        active = context.instance.get_run_records(
            filters=dg.RunsFilter(job_name=job.name, statuses=LIVE_ACTIVE_STATUSES), limit=1
        )
        if active:
            # one at a time: the next run starts from the newest watermark anyway
            return dg.SkipReason(f"live run {active[0].dagster_run.run_id[:8]} still going")
        with db.connect(autocommit=True) as conn:
            watermark = store.ingest_watermark(conn)
        run, cursor, why = plan_live_run(
            watermark, context.cursor, start, settings, datetime.now(UTC)
        )
        if run is None:
            return dg.SensorResult(skip_reason=why, cursor=cursor)
        request = dg.RunRequest(
            run_key=f"live:{cursor}",
            tags=range_tags(run.first, run.last),
        )
        return dg.SensorResult(run_requests=[request], cursor=cursor)

    return live_sensor


live_detection_sensor = build_live_sensor(live_detection_job, minute_partitions)
