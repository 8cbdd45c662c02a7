"""`peebot db ...`: migrate, status, url, maintain, stop."""

from __future__ import annotations

import click

from peebot.commands import one_line_errors
from peebot_ingest import db as database


@click.group("db")
def db() -> None:
    """Database: migrate, status, url, maintain, stop."""


@db.command()
@one_line_errors
def migrate() -> None:
    """Apply pending migrations and seed the channel catalogue."""
    url = database.resolve_database_url()
    result = database.migrate(url)
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
    for table, n in st.counts.items():
        click.echo(f"  {table:<20} {n:>12,}" if n >= 0 else f"  {table:<20} {'missing':>12}")


@db.command()
@one_line_errors
def url() -> None:
    """Print the database URL (starts the embedded server if needed)."""
    click.echo(database.resolve_database_url())


@db.command()
@click.option("--retention-days", type=int, default=None, help="Override PEEBOT_RETENTION_DAYS.")
@one_line_errors
def maintain(retention_days: int | None) -> None:
    """Compression, retention and aggregate refresh, now."""
    result = database.maintain(database.resolve_database_url(), retention_days=retention_days)
    if result.mode == "timescaledb":
        click.echo(
            f"timescaledb: ran {len(result.jobs_run)} jobs ({', '.join(result.jobs_run) or 'none'})"
        )
    else:
        click.echo(f"plain: deleted {result.deleted_readings} readings past retention")


@db.command()
@one_line_errors
def stop() -> None:
    """Stop the embedded PostgreSQL server (no effect with PEEBOT_DATABASE_URL)."""
    if database.stop_embedded():
        click.echo(f"stopped the embedded PostgreSQL in {database.peebot_home() / 'pgdata'}")
    else:
        click.echo("the embedded PostgreSQL is not running")
