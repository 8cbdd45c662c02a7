"""`peebot status`: PeeBot on one screen, read from the databases (so it works from any
machine, whether or not the daemon runs here). The parts live in `peebot/status/`."""

from __future__ import annotations

import json

import click

from peebot.commands import one_line_errors


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--no-dagster", is_flag=True, help="Skip reading Dagster's instance (faster).")
@one_line_errors
def status(as_json: bool, no_dagster: bool) -> None:
    """PeeBot on one screen: database mode, size and schema version; ingest lag, signal and
    readings per minute; the latest events and counts by type; pending and recent posts;
    the Dagster daemon's heartbeat and sensor states."""
    import psycopg

    from peebot.status.collect import collect
    from peebot.status.render import render
    from peebot_ingest import db as database

    url = database.resolve_database_url()
    try:
        health = collect(url, with_dagster=not no_dagster)
    except psycopg.errors.UndefinedTable as exc:
        raise click.ClickException(
            f"the database at {database.describe_url(url)} is not migrated yet "
            f"(run `peebot db migrate`): {str(exc).splitlines()[0]}"
        ) from exc
    if as_json:
        click.echo(json.dumps(health, default=str, indent=2))
        return
    render(health)
