"""`peebot db ...`: migrate, status, url, policy, maintain, stop."""

from __future__ import annotations

import click

from peebot.commands import one_line_errors
from peebot_ingest import db as database
from peebot_ingest import migrations
from peebot_ingest import reading_policy as policies


@click.group("db")
def db() -> None:
    """Database: migrate, status, url, policy, maintain, stop."""


@db.command()
@one_line_errors
def migrate() -> None:
    """Apply pending migrations and seed the channel catalogue."""
    url = database.resolve_database_url()
    result = migrations.migrate(url)
    for warning in result.warnings:
        click.echo(warning, err=True)
    applied = ", ".join(result.applied) if result.applied else "nothing to apply"
    click.echo(
        f"{database.describe_url(url)}: schema version {result.current_version}, "
        f"{result.mode} mode ({applied})"
    )


@db.command("status")
@one_line_errors
def status_cmd() -> None:
    """Schema version, storage mode and row counts."""
    url = database.resolve_database_url()
    st = database.status(url)
    click.echo(
        f"database:   {st.url} (PostgreSQL {st.server_version}, {st.size_bytes / 1e6:.1f} MB)"
    )
    click.echo(f"schema:     version {st.version}, {st.mode or 'not migrated'} mode")
    with database.connect(url) as conn:
        policy = policies.reading_policy(conn)
    if policy:
        for line in policy_lines(policy):
            click.echo(line)
    for table, n in st.counts.items():
        click.echo(f"  {table:<20} {n:>12,}" if n >= 0 else f"  {table:<20} {'missing':>12}")


def policy_lines(policy: policies.ReadingPolicy) -> list[str]:
    """The reading policy in force, what retention last did, and TimescaleDB's jobs."""
    lines = [f"policy:     {policy.describe()}"]
    if policy.last_retention_at:
        held = (
            f", {policy.held_back} chunk(s) held back until aggregated" if policy.held_back else ""
        )
        removed = "?" if policy.last_removed is None else f"{policy.last_removed:,}"
        lines.append(
            f"retention:  last run {policy.last_retention_at:%Y-%m-%d %H:%M} UTC removed "
            f"{removed} {policy.removed_unit}{held}"
        )
    if policy.raw_kept_from:
        lines.append(
            f"raw from:   {policy.raw_kept_from:%Y-%m-%d %H:%M} UTC (older readings removed; "
            "detection refuses windows before it)"
        )
    for job in policy.jobs:
        last = f"last {job.last_status or 'never run'}" + (
            f" {job.last_run_at:%Y-%m-%d %H:%M}" if job.last_run_at else ""
        )
        paused = "" if job.scheduled else ", paused"
        lines.append(f"  job {job.job_id:<5} {job.name:<40} every {job.schedule}{paused}, {last}")
    return lines


@db.command()
@one_line_errors
def url() -> None:
    """Print the database URL (starts the embedded server if needed)."""
    click.echo(database.resolve_database_url())


@db.command()
@click.option(
    "--retention-days",
    type=click.IntRange(min=0),
    default=None,
    help="Keep raw readings this many days (0: forever).",
)
@click.option(
    "--compress-after-days",
    type=click.IntRange(min=0),
    default=None,
    help="TimescaleDB: compress chunks this old (0: never).",
)
@one_line_errors
def policy(retention_days: int | None, compress_after_days: int | None) -> None:
    """Show or change the reading retention and compression horizons.

    PEEBOT_RETENTION_DAYS and PEEBOT_COMPRESS_AFTER_DAYS set them at the first migration;
    this changes them later. They apply from the next retention / compression run
    (TimescaleDB's scheduler, `peebot db maintain`, or Dagster's db_maintenance_job)."""
    url = database.resolve_database_url()
    if retention_days is None and compress_after_days is None:
        with database.connect(url) as conn:
            current = policies.reading_policy(conn)
        if current is None:
            raise click.ClickException("the database is not migrated yet: run `peebot db migrate`")
    else:
        current = policies.set_reading_policy(
            url, retention_days=retention_days, compress_after_days=compress_after_days
        )
    for line in policy_lines(current):
        click.echo(line)


@db.command()
@one_line_errors
def maintain() -> None:
    """Aggregate, compress and apply retention now (what TimescaleDB's scheduler does on its
    own; plain storage has no scheduler)."""
    result = policies.maintain(database.resolve_database_url())
    click.echo(
        f"{result.mode}: ran {len(result.steps_run)} step(s) "
        f"({', '.join(result.steps_run) or 'none'})"
    )
    if result.policy:
        for line in policy_lines(result.policy)[:3]:
            click.echo(line)
    if result.failures:
        raise click.ClickException(
            f"{len(result.failures)} maintenance step(s) failed: " + "; ".join(result.failures)
        )


@db.command()
@one_line_errors
def stop() -> None:
    """Stop the embedded PostgreSQL server (no effect with PEEBOT_DATABASE_URL)."""
    if database.stop_embedded():
        click.echo(f"stopped the embedded PostgreSQL in {database.peebot_home() / 'pgdata'}")
    else:
        click.echo("the embedded PostgreSQL is not running")
