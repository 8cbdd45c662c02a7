"""`post_events_job`: one op that sends what the outbox has due (see outbox.run_outbox)."""

import dagster as dg

from peebot_dagster.posting import backends as bk
from peebot_dagster.posting import policy as pol
from peebot_dagster.posting.outbox import run_outbox
from peebot_dagster.resources import PostgresResource


@dg.op(
    description=(
        "Reconcile rows left in `sending`, apply the posting policy, mark `sending` and commit, "
        "post, record the external id or a classified failure."
    ),
    tags={"peebot/kind": "posting"},
)
def post_events(context: dg.OpExecutionContext, db: PostgresResource) -> dict[str, int]:
    try:
        settings = pol.PostingSettings.from_env()
        backends = bk.build_backends(settings.backends)
    except (pol.SettingsError, bk.MissingCredentials) as exc:
        raise dg.Failure(description=str(exc)) from None
    try:
        with db.connect() as conn:
            summary = run_outbox(conn, backends, settings=settings)
    finally:
        for backend in backends.values():
            backend.close()
    counts = summary.counts()
    for post_id, reason in summary.skipped.items():
        context.log.info(f"post {post_id} skipped: {reason}")
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
    executor_def=dg.in_process_executor,
    tags={"peebot/kind": "posting"},
    description="Send the pending social posts (outbox), exactly once.",
)
def post_events_job() -> None:
    post_events()
