"""`post_events_job`: one op that sends what the outbox has due (posting/sending.py), and
`post_after_detection_hook`, the same sending at the end of a detection run's urine step.

Why a hook as well as a job: launching a run costs a new process that imports the whole code
location (10-30 s on a busy 2-core machine), which was most of the time between an event row
and its post. The hook sends from the detection run itself, seconds after the events
committed. Both go through `run_outbox`, whose `sending` state and per-backend advisory lock
make each post exactly-once whichever of them gets there first.
"""

# No `from __future__ import annotations`: Dagster reads the op's annotations at runtime.

from typing import Any

import dagster as dg

from peebot_dagster.defs.tags import kind
from peebot_dagster.posting.backends.base import MissingCredentials
from peebot_dagster.posting.backends.registry import build_backends
from peebot_dagster.posting.policy import PostingSettings
from peebot_dagster.posting.sending import RunSummary, run_outbox
from peebot_dagster.resources import PostgresResource
from peebot_dagster.settings import get_settings

# the detection steps whose events are posted (only the urine tank's)
POSTING_STEPS = frozenset({"urine_tank_events"})
# a detection run does not wait long for a backend another run is posting on: that run
# sends what is due
HOOK_LOCK_WAIT_S = 2.0


def send_due_posts(
    db: PostgresResource, log: Any, lock_wait_s: float = 30.0
) -> tuple[RunSummary, list[str]]:
    """Run the outbox once and log what each post did; the backends' names are returned too.
    Missing credentials raise `MissingCredentials` before anything is sent."""
    settings = get_settings()
    policy = PostingSettings.from_settings(settings)
    backends = build_backends(policy.backends, settings)
    try:
        with db.connect() as conn:
            summary = run_outbox(conn, backends, settings=policy, lock_wait_s=lock_wait_s)
    finally:
        for backend in backends.values():
            backend.close()
    for post_id, reason in summary.skipped.items():
        log.info(f"post {post_id} skipped: {reason}")
    for post_id, until in summary.deferred.items():
        # a post held back (minimum gap, a backend's rate limit) says so, with until when
        log.info(f"post {post_id} waits until {until:%H:%M:%S} UTC")
    for post_id, error in summary.failed.items():
        log.warning(f"post {post_id} failed: {error}")
    if summary.locked_out:
        log.warning(f"another run holds the lock of: {', '.join(summary.locked_out)}")
    log.info(f"posting run: {summary.counts()}")
    return summary, list(backends)


@dg.op(
    description=(
        "Reconcile rows left in `sending`, apply the posting policy, mark `sending` and commit, "
        "post, record the external id or a classified failure."
    ),
    tags=kind("posting"),
)
def post_events(context: dg.OpExecutionContext, db: PostgresResource) -> dict[str, int]:
    try:
        summary, backends = send_due_posts(db, context.log)
    except MissingCredentials as exc:
        raise dg.Failure(description=str(exc)) from None
    counts = summary.counts()
    context.add_output_metadata(
        {
            **{k: dg.MetadataValue.int(v) for k, v in counts.items()},
            "backends": dg.MetadataValue.text(", ".join(backends)),
        }
    )
    return counts


@dg.job(
    tags=kind("posting"),
    description="Send the pending social posts (outbox), exactly once.",
)
def post_events_job() -> None:
    post_events()


@dg.success_hook(name="post_after_detection_hook", required_resource_keys={"db"})
def post_after_detection_hook(context: dg.HookContext) -> None:
    """After a detection run's urine step stored its events, send what is due from this run.

    A failure here never fails the detection (its events are committed): it is logged with
    its cause, and `post_events_job` (launched by the posting sensors) sends the rows later
    or fails loudly itself."""
    if context.op.name not in POSTING_STEPS:
        return
    try:
        send_due_posts(context.resources.db, context.log, lock_wait_s=HOOK_LOCK_WAIT_S)
    except MissingCredentials as exc:
        context.log.warning(f"posting after detection skipped: {exc}")
    except Exception as exc:  # the detection itself succeeded; the posting job retries
        context.log.warning(f"posting after detection failed: {type(exc).__name__}: {exc}")
