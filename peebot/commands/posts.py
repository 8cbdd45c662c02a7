"""`peebot posts`: list recent and pending social posts and the review queue; `retry ID`,
`skip ID`, `approve ID` for an operator."""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from typing import Any

import click

from peebot.commands import one_line_errors
from peebot_dagster.posting import outbox
from peebot_ingest import db as database

STATUSES = ("pending", "sending", "posted", "failed", "skipped")


def _when(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if value else "-"


def _detail(row: dict[str, Any]) -> str:
    status = row["status"]
    if status == "posted":
        extra = " (duplicate: was already online)" if row["error_kind"] == "duplicate" else ""
        return f"{row['external_id'] or '?'} at {_when(row['posted_at'])}{extra}"
    if status == "skipped":
        return row["skip_reason"] or ""
    if row.get("approved_at"):
        return f"approved by {row['approved_by']} at {_when(row['approved_at'])}"
    if status == "failed":
        when = (
            f", next try {_when(row['not_before'])}" if row["not_before"] else ", needs an operator"
        )
        return f"{row['error_kind']}: {row['last_error'] or ''}{when}"
    if status == "pending" and row["not_before"]:
        why = f" ({row['last_error']})" if row["last_error"] else ""  # e.g. the minimum gap
        return f"not before {_when(row['not_before'])}{why}"
    return ""


@click.group("posts", invoke_without_command=True)
@click.option("-n", "--limit", type=int, default=30, show_default=True, help="Rows to show.")
@click.option("--status", type=click.Choice(STATUSES), default=None, help="Only this status.")
@click.option(
    "--held",
    is_flag=True,
    help="Only the review queue: posts held below PEEBOT_POST_MIN_CONFIDENCE.",
)
@click.option("--text/--no-text", "show_text", default=False, help="Show each post's text.")
@click.pass_context
@one_line_errors
def posts(ctx: click.Context, limit: int, status: str | None, held: bool, show_text: bool) -> None:
    """List recent and pending social posts with their status, then the review queue."""
    if ctx.invoked_subcommand is not None:
        return
    with database.connect(database.resolve_database_url()) as conn:
        rows = outbox.list_posts(conn, limit=limit, status=status, held=held)
        queue = [] if held else outbox.list_posts(conn, limit=limit, held=True)
        counts = dict(
            conn.execute("SELECT status, count(*) FROM social_post GROUP BY status").fetchall()
        )
    summary = ", ".join(f"{s} {counts.get(s, 0)}" for s in STATUSES)
    click.echo(f"social posts: {summary}")
    if not rows:
        click.echo("no posts yet")
        return
    click.echo(f"{'id':>6}  {'backend':<8} {'status':<8} {'try':>3}  {'event (UTC)':<16}  detail")
    for r in rows:
        click.echo(
            f"{r['id']:>6}  {r['backend']:<8} {r['status']:<8} {r['attempts']:>3}  "
            f"{_when(r['detected_at']):<16}  {r['event_type']}; {_detail(r)}"
        )
        if show_text:
            for line in r["text"].splitlines():
                click.echo(f"{'':>8}| {line}")
    if queue:
        click.echo(f"held for review ({len(queue)}): `peebot posts approve ID` posts one")
        for r in queue:
            click.echo(
                f"{r['id']:>6}  {r['backend']:<8} {_when(r['detected_at']):<16}  "
                f"{r['event_type']} confidence {r['confidence']:.2f}; {r['skip_reason']}"
            )


@posts.command()
@click.argument("post_id", type=int)
@one_line_errors
def retry(post_id: int) -> None:
    """Put a failed or skipped post back in the queue (due now).

    For an ambiguous post this is your decision that it is NOT online: it will be sent.
    """
    with database.connect(database.resolve_database_url()) as conn:
        try:
            previous = outbox.operator_retry(conn, post_id, datetime.now(UTC))
        except (LookupError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"post {post_id}: {previous} -> pending (the posting sensor picks it up)")


@posts.command()
@click.argument("post_id", type=int)
@click.option("--reason", default="skipped by operator", show_default=True)
@one_line_errors
def skip(post_id: int, reason: str) -> None:
    """Never send this post (records the reason)."""
    with database.connect(database.resolve_database_url()) as conn:
        try:
            outbox.operator_skip(conn, post_id, reason, datetime.now(UTC))
        except (LookupError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"post {post_id}: skipped ({reason})")


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name in this environment (a container)
        return "operator"


@posts.command()
@click.argument("post_id", type=int)
@click.option("--by", "approved_by", default=None, help="Who looked at it (default: $USER).")
@one_line_errors
def approve(post_id: int, approved_by: str | None) -> None:
    """Post one event held below the confidence floor, after you looked at it.

    Lifts only the floor: flags, max age, daily cap and minimum gap still apply.
    """
    who = approved_by or _user()
    with database.connect(database.resolve_database_url()) as conn:
        try:
            outbox.approve_held(conn, post_id, who, datetime.now(UTC))
        except (LookupError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"post {post_id}: approved by {who} -> pending (the posting sensor picks it up)")
