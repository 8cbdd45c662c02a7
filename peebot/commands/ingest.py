"""`peebot ingest` (the daemon) and `peebot inject` (one manual reading, same path)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from peebot.commands import one_line_errors
from peebot_iss.utc import as_utc


def parse_when(text: str | None, now: datetime | None = None) -> datetime:
    """`now`, an ISO 8601 time (UTC unless it has an offset) or an ISS TimeStamp (decimal
    hours of the current year, New Year handled)."""
    from peebot_iss.timestamps import TimeStampError, decode_timestamp, infer_year

    now = now or datetime.now(UTC)
    if text is None or text.strip().lower() in ("", "now"):
        return now
    text = text.strip()
    try:
        hours = float(text)
    except ValueError:
        hours = None
    if hours is not None:
        try:
            return decode_timestamp(hours, infer_year(hours, now))
        except TimeStampError as exc:
            raise click.BadParameter(str(exc), param_hint="--at") from None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is not an ISO 8601 time or an ISS TimeStamp", param_hint="--at"
        ) from None
    return as_utc(when)


def prepare_database() -> str:
    """The database URL, migrated when reachable (migrations are idempotent)."""
    from peebot_ingest import db as database
    from peebot_ingest import migrations

    url = database.resolve_database_url()
    for warning in migrations.migrate(url).warnings:
        click.echo(warning, err=True)
    return url


@click.command("ingest")
@click.option("--feed-url", default=None, help="Lightstreamer server [PEEBOT_FEED_URL].")
@click.option("--adapter-set", default=None, help="Adapter set [PEEBOT_FEED_ADAPTER_SET].")
@click.option(
    "--clock-check/--no-clock-check",
    default=None,
    help="Judge staleness and future times against the wall clock [PEEBOT_CLOCK_CHECK]. "
    "Turn off for simulated feeds that run faster than real time.",
)
@click.option(
    "--fast-reconnect/--no-fast-reconnect",
    default=None,
    help="Short keepalive and retry timers (local servers, tests) [PEEBOT_FEED_FAST_RECONNECT].",
)
@click.option(
    "--journal-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Spill journal folder [PEEBOT_JOURNAL_DIR].",
)
@click.option(
    "--summary-seconds",
    type=float,
    default=None,
    help="Period of the one-line summary [PEEBOT_SUMMARY_SECONDS].",
)
@click.option(
    "--log-format",
    type=click.Choice(["kv", "json"]),
    default=None,
    help="Log lines as key=value or JSON [PEEBOT_LOG_FORMAT].",
)
@one_line_errors
def ingest(
    feed_url: str | None,
    adapter_set: str | None,
    clock_check: bool | None,
    fast_reconnect: bool | None,
    journal_dir: str | None,
    summary_seconds: float | None,
    log_format: str | None,
) -> None:
    """Stream ISS Live into the database until SIGTERM or Ctrl-C (then flush and exit).

    Survives database and feed outages: updates are buffered in memory, then in the journal,
    and written once the database is back; the client reconnects by itself. Staleness:
    PEEBOT_STALE_AFTER_SECONDS (wall time without a TIME_000001 update, default 10) and, with
    the clock check on, PEEBOT_STALE_LAG_SECONDS (TimeStamp behind the clock, default 5).
    Exit status 0 when everything received is in the database, 3 when the database was still
    away at exit and the rest waits in the journal (written back at the next start)."""
    import logging

    from peebot_ingest import db as database
    from peebot_ingest import migrations
    from peebot_ingest.daemon import DaemonConfig, IngestDaemon
    from peebot_ingest.logs import configure_logging

    configure_logging(log_format)
    url = database.resolve_database_url()
    try:
        for warning in migrations.migrate(url).warnings:
            logging.getLogger("peebot.ingest").warning(warning.removeprefix("warning: "))
    except database.DatabaseError as exc:
        logging.getLogger("peebot.ingest").warning(
            "database not reachable at start (%s); buffering until it is", exc
        )
    config = DaemonConfig.from_settings(
        url,
        feed_url=feed_url,
        adapter_set=adapter_set,
        clock_check=clock_check,
        fast_reconnect=fast_reconnect,
        journal_dir=Path(journal_dir) if journal_dir else None,
        summary_seconds=summary_seconds,
    )
    code = IngestDaemon(config).run()
    sys.exit(code)


@click.command("inject")
@click.argument("item")
@click.argument("value")
@click.option(
    "--at",
    "at_text",
    default=None,
    help="Time of the reading: ISO 8601 (UTC unless an offset is given), an ISS "
    "TimeStamp, or 'now' (default).",
)
@click.option("--status-class", type=int, default=None, help="Status.Class (24 = signal).")
@one_line_errors
def inject(item: str, value: str, at_text: str | None, status_class: int | None) -> None:
    """Write one manual reading through the ingest path (validate, enrich, dedupe, write).

    Injecting the same ITEM, VALUE and --at twice adds one row."""
    from peebot.injection import InjectRejected, inject_reading
    from peebot_ingest.sink import DatabaseUnavailable

    when = parse_when(at_text)
    url = prepare_database()
    try:
        done = inject_reading(url, item, value, when, status_class)
    except DatabaseUnavailable as exc:
        raise click.ClickException(str(exc)) from exc
    except InjectRejected as exc:
        raise click.ClickException(f"rejected (recorded in rejected_update): {exc}") from exc
    stamp = done.ts.isoformat().replace("+00:00", "Z")
    if done.written:
        click.echo(f"written: {item} = {done.value!r} at {stamp} (event {done.event_id})")
    else:
        click.echo(f"already present: {item} = {done.value!r} at {stamp}, nothing added")
