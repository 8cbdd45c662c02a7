"""`post_events_job`: one op that sends what the outbox has due (posting/sending.py)."""

# No `from __future__ import annotations`: Dagster reads the op's annotations at runtime.

import dagster as dg

from peebot_dagster.defs.tags import kind
from peebot_dagster.posting.backends.base import MissingCredentials
from peebot_dagster.posting.backends.registry import build_backends
from peebot_dagster.posting.policy import PostingSettings
from peebot_dagster.posting.sending import run_outbox
from peebot_dagster.resources import PostgresResource
from peebot_dagster.settings import get_settings


@dg.op(
    description=(
        "Reconcile rows left in `sending`, apply the posting policy, mark `sending` and commit, "
        "post, record the external id or a classified failure."
    ),
    tags=kind("posting"),
)
def post_events(context: dg.OpExecutionContext, db: PostgresResource) -> dict[str, int]:
    settings = get_settings()
    policy = PostingSettings.from_settings(settings)
    try:
        backends = build_backends(policy.backends, settings)
    except MissingCredentials as exc:
        raise dg.Failure(description=str(exc)) from None
    try:
        with db.connect() as conn:
            summary = run_outbox(conn, backends, settings=policy)
    finally:
        for backend in backends.values():
            backend.close()
    counts = summary.counts()
    for post_id, reason in summary.skipped.items():
        context.log.info(f"post {post_id} skipped: {reason}")
    for post_id, until in summary.deferred.items():
        # a post held back (minimum gap, a backend's rate limit) says so, with until when
        context.log.info(f"post {post_id} waits until {until:%H:%M:%S} UTC")
    for post_id, error in summary.failed.items():
        context.log.warning(f"post {post_id} failed: {error}")
    if summary.locked_out:
        context.log.warning(f"another run holds the lock of: {', '.join(summary.locked_out)}")
    context.add_output_metadata(
        {
            **{k: dg.MetadataValue.int(v) for k, v in counts.items()},
            "backends": dg.MetadataValue.text(", ".join(backends)),
        }
    )
    context.log.info(f"posting run: {counts}")
    return counts


@dg.job(
    tags=kind("posting"),
    description="Send the pending social posts (outbox), exactly once.",
)
def post_events_job() -> None:
    post_events()
