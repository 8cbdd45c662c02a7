"""The sensors that launch `post_events_job`: `posting_sensor` polls the outbox,
`post_after_detection_sensor` reacts to each detection run that left posts due.

`run_key` is a digest of the due rows' (id, status, attempts, not_before): the same batch can
never launch twice, while a row that changed (deferred, retried, reconciled) makes a new batch.
No launch while a posting run is queued or in progress (it would find the other run's rows).

The poll alone (every `PEEBOT_POST_SENSOR_INTERVAL_S`, 30 s) was most of the time between an
event row and its post. The run-status sensor reacts to each successful detection run (the
watermark pass or the live pass: runs tagged `peebot/kind` detection or live) and asks at once
for the same batch the poll would (same `run_key`), so the two never post anything twice: the
outbox's `sending` state and backend lock make each post exactly-once whatever launches the
run; the poll stays for deferred rows coming due and retries.
"""

# No `from __future__ import annotations`: Dagster reads the sensor's annotations at runtime.

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import psycopg

from peebot_dagster.defs.posting.jobs import post_events_job
from peebot_dagster.defs.tags import KIND_TAG, POSTS_TAG, kind
from peebot_dagster.resources import NOT_CONFIGURED, PostgresResource
from peebot_dagster.settings import get_settings

ACTIVE_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def due_batch(
    conn: psycopg.Connection[Any], backends: Sequence[str], now: datetime
) -> list[tuple[int, str, str, int, datetime | None]]:
    """(id, backend, status, attempts, not_before) of every row a run would act on now."""
    rows = conn.execute(
        """
        SELECT id, backend, status, attempts, not_before FROM social_post
         WHERE backend = ANY(%(backends)s) AND (
               (status = 'pending' AND (not_before IS NULL OR not_before <= %(now)s))
            OR (status = 'failed' AND not_before IS NOT NULL AND not_before <= %(now)s)
            OR status = 'sending')
         ORDER BY id
        """,
        {"backends": list(backends), "now": now},
    ).fetchall()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def waiting_posts(conn: psycopg.Connection[Any], backends: Sequence[str], now: datetime) -> str:
    """A tail for the skip reason, `; N waiting (why) until HH:MM:SS UTC`, for rows deferred
    into the future ("" when none): a post held back by the minimum gap must say so, not
    look forgotten."""
    row = conn.execute(
        """
        SELECT count(*), min(not_before), min(last_error) FROM social_post
         WHERE backend = ANY(%(backends)s) AND status = 'pending' AND not_before > %(now)s
        """,
        {"backends": list(backends), "now": now},
    ).fetchone()
    if not row or not row[0]:
        return ""
    count, until, why = row
    reason = f" ({why})" if why else ""
    return f"; {count} waiting{reason} until {until.astimezone(UTC):%H:%M:%S} UTC"


def batch_run_key(batch: Sequence[tuple[Any, ...]]) -> str:
    text = ";".join(f"{i}:{b}:{s}:{a}:{nb.isoformat() if nb else '-'}" for i, b, s, a, nb in batch)
    return "posts-" + hashlib.sha256(text.encode()).hexdigest()[:24]


def _active_runs(context: dg.SensorEvaluationContext | dg.RunStatusSensorContext) -> int:
    try:
        instance = context.instance
    except Exception:  # a bare test context without an instance
        return 0
    runs = instance.get_runs(
        filters=dg.RunsFilter(job_name=post_events_job.name, statuses=ACTIVE_STATUSES), limit=1
    )
    return len(runs)


@dg.sensor(
    job=post_events_job,
    minimum_interval_seconds=get_settings().post_sensor_interval_s,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Launch post_events_job when outbox rows are pending and due.",
)
def posting_sensor(
    context: dg.SensorEvaluationContext, db: PostgresResource
) -> dg.RunRequest | dg.SkipReason:
    if not db.configured:
        return dg.SkipReason(NOT_CONFIGURED)
    backends = get_settings().post_backends
    if _active_runs(context):
        return dg.SkipReason("a posting run is already queued or in progress")
    now = datetime.now(UTC)
    with db.connect() as conn:
        batch = due_batch(conn, backends, now)
        waiting = waiting_posts(conn, backends, now)
    if not batch:
        return dg.SkipReason(f"nothing pending and due for {', '.join(backends)}" + waiting)
    ids = [str(r[0]) for r in batch]
    return dg.RunRequest(
        run_key=batch_run_key(batch),
        tags={
            **kind("posting"),
            POSTS_TAG: ",".join(ids[:40]) + (",..." if len(ids) > 40 else ""),
        },
    )


# the kinds of run (tag `peebot/kind`) that store events, and so may enqueue posts
DETECTION_KINDS = ("detection", "live")


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    request_job=post_events_job,
    name="post_after_detection_sensor",
    minimum_interval_seconds=get_settings().post_trigger_interval_s,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Launch post_events_job right after a detection run that left posts due.",
)
def post_after_detection_sensor(
    context: dg.RunStatusSensorContext, db: PostgresResource
) -> dg.RunRequest | dg.SkipReason:
    if not db.configured:
        return dg.SkipReason(NOT_CONFIGURED)
    run = context.dagster_run
    what = run.tags.get(KIND_TAG)
    if what not in DETECTION_KINDS:
        return dg.SkipReason(f"run {run.run_id[:8]} is not a detection run")
    if _active_runs(context):
        return dg.SkipReason("a posting run is already queued or in progress")
    backends = get_settings().post_backends
    with db.connect() as conn:
        batch = due_batch(conn, backends, datetime.now(UTC))
    if not batch:
        return dg.SkipReason(f"{what} run {run.run_id[:8]} left nothing due")
    return dg.RunRequest(
        run_key=batch_run_key(batch),
        tags={**kind("posting"), "peebot/after": run.run_id},
    )
