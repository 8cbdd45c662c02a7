"""`peebot replay` (load recordings into the database, or serve them as a live feed) and
`peebot export` (CSV that `replay` reads back)."""

from __future__ import annotations

import contextlib
import csv
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from peebot.commands import one_line_errors

if TYPE_CHECKING:
    from peebot_ingest.reading_policy import ReadingPolicy


@dataclass
class LoadSummary:
    files: int = 0
    lines: int = 0
    loaded: int = 0
    duplicates: int = 0
    rejected: int = 0  # failed validation after parsing
    malformed: int = 0  # lines the reader could not parse
    errors: list[str] = field(default_factory=list)
    oldest: datetime | None = None  # the oldest reading in the files
    # readings in the files older than each horizon passed in (name -> count)
    older: dict[str, int] = field(default_factory=dict)


def _read_all(paths: Sequence[str], year: int | None) -> tuple[list[Any], list[Any], list[str]]:
    """(recordings, line errors, file-level errors)."""
    from peebot_ingest.recordings import RecordingFormatError, read_recording

    recordings = []
    line_errors = []
    file_errors = []
    for path in paths:
        try:
            rec = read_recording(path, year=year)
        except (RecordingFormatError, OSError, UnicodeError) as exc:
            file_errors.append(f"{path}: {exc}")
            continue
        recordings.append(rec)
        line_errors.extend(rec.errors)
    return recordings, line_errors, file_errors


def load_recordings(
    url: str,
    paths: Sequence[str],
    *,
    year: int | None = None,
    strict: bool = False,
    batch_rows: int = 20_000,
    progress: bool = True,
    horizons: dict[str, datetime] | None = None,
) -> LoadSummary:
    """Bulk-load recordings through the ingest writer (same validation and dedupe).
    `horizons` (name -> time): the summary counts the readings older than each."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from peebot_ingest.batch import Batch
    from peebot_ingest.bulk_loader import BulkLoader
    from peebot_ingest.sink import DatabaseSink, DatabaseUnavailable
    from peebot_ingest.validate import Validator

    recordings, line_errors, file_errors = _read_all(paths, year)
    summary = LoadSummary(files=len(recordings))
    summary.malformed = len(line_errors)
    summary.errors = file_errors + [str(e) for e in line_errors]
    if strict and summary.errors:
        raise click.ClickException(
            "--strict: nothing loaded; "
            + f"{len(summary.errors)} problem(s), first: {summary.errors[0]}"
        )
    if file_errors and not recordings:
        raise click.ClickException(file_errors[0])
    validator = Validator(source="replay", clock_check=False)
    now = time.time()
    sink = DatabaseSink(url, source="replay")
    total = sum(len(r.readings) for r in recordings)
    summary.lines = total + len(line_errors)
    times = [r.ts for rec in recordings for r in rec.readings]
    summary.oldest = min(times, default=None)
    summary.older = {
        name: sum(1 for ts in times if ts < when) for name, when in (horizons or {}).items()
    }
    try:
        rejections = _new_line_rejections(sink, line_errors, now)
        if rejections:
            sink.write(Batch(rejections=rejections))
    except DatabaseUnavailable as exc:
        sink.close()
        raise click.ClickException(f"database unavailable: {exc}") from exc
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        disable=not progress,
        transient=True,
        console=_stderr_console(),
    ) as bar:
        task = bar.add_task("replay", total=total)
        loader = BulkLoader(
            sink, batch_rows, on_commit=lambda b, r: bar.advance(task, len(b.readings))
        )
        try:
            for rec in recordings:
                name = Path(rec.path).name
                for r in rec.readings:
                    loader.add(
                        validator.reading(
                            r.item_id,
                            r.ts,
                            r.value,
                            r.status_class,
                            r.calibrated_data,
                            received_at=now,
                            metadata={"file": name, "line": r.line},
                        )
                    )
            counters = loader.close()
        except DatabaseUnavailable as exc:
            with contextlib.suppress(Exception):
                loader.close()
            raise click.ClickException(
                f"database unavailable, replay stopped after {loader.counters.written} new "
                f"rows (run it again: rows already loaded are skipped as duplicates): {exc}"
            ) from exc
    summary.loaded = counters.written
    summary.duplicates = counters.duplicates
    summary.rejected = counters.rejected
    return summary


def _new_line_rejections(sink: Any, line_errors: list[Any], now: float) -> list[Any]:
    """Malformed lines as rejections, minus those a previous replay already recorded."""
    from peebot_ingest.records import Rejection

    if not line_errors:
        return []
    reasons = [str(e) for e in line_errors]
    known = {
        row[0]
        for row in sink.query(
            "SELECT reason FROM rejected_update WHERE source = 'replay' AND reason = ANY(%s)",
            (reasons,),
        )
    }
    return [
        Rejection("replay", None, str(e), {"file": e.file, "line": e.line, "reason": e.reason}, now)
        for e in line_errors
        if str(e) not in known
    ]


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


@click.command("replay")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--year",
    type=int,
    default=None,
    help="Year of ISS TimeStamp files (<ITEM>.txt of '<TimeStamp> <Value>' lines).",
)
@click.option(
    "--into-db",
    "mode",
    flag_value="db",
    default=True,
    help="Bulk-load into the database (default).",
)
@click.option(
    "--serve",
    "mode",
    flag_value="serve",
    help="Stream through the local TLCP server, as a live feed (from the first subscription).",
)
@click.option(
    "--speed",
    type=float,
    default=1.0,
    show_default=True,
    help="--serve: recorded seconds per wall-clock second.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="--serve: address.")
@click.option("--port", default=8080, show_default=True, type=int, help="--serve: port.")
@click.option("--strict", is_flag=True, help="Any malformed line aborts, nothing is loaded.")
@one_line_errors
def replay(
    paths: tuple[str, ...],
    year: int | None,
    mode: str,
    speed: float,
    host: str,
    port: int,
    strict: bool,
) -> None:
    """Load recordings into the database, or serve them as a live ISS feed.

    Formats: per-item `<ITEM>.txt` files of `<TimeStamp> <Value>` lines (ISS Mimic,
    ISS-telemetry-recorder; needs --year), wall-clock `YYYY-MM-DD-HH:MM:SS <Value>` files,
    and the CSV `peebot export` writes. A malformed line is reported with its file and line
    and recorded in rejected_update; it aborts nothing unless --strict. Loading twice adds
    nothing."""
    if mode == "serve":
        _serve(paths, year, speed, host, port, strict)
        return
    from peebot.commands.ingest import prepare_database
    from peebot_ingest import db as database
    from peebot_ingest import reading_policy as policies

    url = prepare_database()
    started = time.monotonic()
    with database.connect(url) as conn:
        policy = policies.reading_policy(conn)
    horizons = policy_horizons(policy, datetime.now(UTC)) if policy else {}
    summary = load_recordings(
        url, paths, year=year, strict=strict, progress=sys.stderr.isatty(), horizons=horizons
    )
    # The refresh policy only looks at the last 2 hours: bring replayed history into
    # telemetry_minute now (retention waits for it anyway).
    policies.refresh_history(url)
    for problem in summary.errors[:20]:
        click.echo(f"malformed: {problem}", err=True)
    if len(summary.errors) > 20:
        click.echo(f"... and {len(summary.errors) - 20} more", err=True)
    elapsed = time.monotonic() - started
    click.echo(
        f"replayed {summary.files} file(s), {summary.lines} line(s) in {elapsed:.1f} s: "
        f"loaded {summary.loaded}, duplicates {summary.duplicates}, "
        f"rejected {summary.rejected + summary.malformed} "
        f"({summary.malformed} malformed line(s))"
    )
    if policy and (note := horizon_note(policy, horizons, summary)):
        click.echo(note)


def policy_horizons(policy: ReadingPolicy, now: datetime) -> dict[str, datetime]:
    """The retention and compression horizons in force (a horizon of 0 days is none)."""
    horizons = {}
    if policy.retention_days:
        horizons["retention"] = now - timedelta(days=policy.retention_days)
    if policy.mode == "timescaledb" and policy.compress_after_days:
        horizons["compression"] = now - timedelta(days=policy.compress_after_days)
    return horizons


def horizon_note(
    policy: ReadingPolicy, horizons: dict[str, datetime], summary: LoadSummary
) -> str | None:
    """One line when what was loaded is older than the retention or compression horizon:
    what happens to it and what remains."""
    parts = []
    old = summary.older.get("retention", 0)
    compressed = summary.older.get("compression", 0)
    if old:
        cutoff = f"{policy.retention_days}-day retention horizon ({horizons['retention']:%Y-%m-%d})"
        if policy.mode == "timescaledb":
            fate = (
                "their raw rows go at the next retention run, telemetry_minute keeps their "
                "minutes for good"
            )
        else:
            fate = "`peebot db maintain` deletes them (plain storage keeps no minute aggregate)"
        parts.append(
            f"{old:,} of the readings are older than the {cutoff}: {fate} "
            "(to keep them: peebot db policy --retention-days 0)"
        )
    elif compressed:
        parts.append(
            f"{compressed:,} of the readings are older than the {policy.compress_after_days}-day "
            "compression horizon: they stay, compressed at the next compression run"
        )
    kept_from = policy.raw_kept_from
    if kept_from and summary.oldest and summary.oldest < kept_from:
        parts.append(
            f"detection refuses windows before {kept_from:%Y-%m-%d %H:%M} UTC, where "
            "retention has removed raw readings"
        )
    return "note: " + "; ".join(parts) if parts else None


def year_readings(readings: Sequence[tuple[str, datetime, str]]) -> list[tuple[str, datetime, str]]:
    """`TIME_000002` (the year) at the start of the recording and at each New Year in it,
    as the live feed has it: TimeStamps carry no year, so a client needs this one."""
    from peebot_iss.catalog import YEAR_ITEM

    if any(item == YEAR_ITEM for item, _, _ in readings):
        return []
    first: dict[int, datetime] = {}
    for _, ts, _ in readings:
        if ts.year not in first or ts < first[ts.year]:
            first[ts.year] = ts
    return [(YEAR_ITEM, ts, str(year)) for year, ts in sorted(first.items())]


def _serve(
    paths: Sequence[str], year: int | None, speed: float, host: str, port: int, strict: bool
) -> None:
    from peebot_sim.feeds import RecordingFeed
    from peebot_sim.tlcp import FeedStopped, TlcpServer, run_server

    recordings, line_errors, file_errors = _read_all(paths, year)
    problems = file_errors + [str(e) for e in line_errors]
    for problem in problems[:20]:
        click.echo(f"malformed: {problem}", err=True)
    if strict and problems:
        raise click.ClickException(f"--strict: {len(problems)} problem(s); nothing served")
    readings = [(r.item_id, r.ts, repr(r.value)) for rec in recordings for r in rec.readings]
    if not readings:
        raise click.ClickException("nothing to serve")
    # the year first: a reading at the same instant as its year item must not be decoded
    # before the client knows the year (the feed's sort by time keeps this order)
    readings = year_readings(readings) + readings
    feed = RecordingFeed(readings, speed)

    def ready(server: TlcpServer) -> None:
        click.echo(
            f"peebot replay: serving {len(readings)} readings at {server.url} (ISSLIVE), "
            f"speed {speed:g}, from the first client's subscription; Ctrl-C to stop",
            err=True,
        )

    try:
        run_server(feed, host=host, port=port, on_ready=ready)
    except FeedStopped as exc:
        raise click.ClickException(f"the recording feed stopped ({exc}); server stopped") from exc


# --------------------------------------------------------------------------- export


def export_rows(
    url: str, start: datetime, end: datetime, items: Sequence[str] | None = None
) -> Iterator[tuple[str, datetime, float, int | None, str | None]]:
    """Readings with start <= ts < end (optionally only `items`), in time order."""
    from peebot_ingest.db import connect

    query = (
        "SELECT c.item_id, r.ts, r.value, r.status_class, r.calibrated_data "
        "FROM telemetry_reading r JOIN telemetry_channel c ON c.id = r.channel_id "
        "WHERE r.ts >= %s AND r.ts < %s"
    )
    params: list[Any] = [start, end]
    if items:
        query += " AND c.item_id = ANY(%s)"
        params.append(list(items))
    query += " ORDER BY r.ts, c.item_id, r.value"
    with connect(url) as conn, conn.cursor(name="peebot_export") as cur:
        cur.itersize = 10_000
        cur.execute(query, params)
        yield from cur


@click.command("export")
@click.option("--from", "start_text", required=True, help="Start (ISO 8601 UTC, inclusive).")
@click.option("--to", "end_text", required=True, help="End (ISO 8601 UTC, exclusive).")
@click.option("--items", multiple=True, help="Item ids (repeat or comma-separate); default all.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True),
    default="-",
    show_default=True,
    help="CSV file ('-' = stdout).",
)
@one_line_errors
def export(start_text: str, end_text: str, items: tuple[str, ...], output: str) -> None:
    """Export readings as CSV (item_id,ts,value,status_class,calibrated_data) that
    `peebot replay` reads back."""
    from peebot.commands.ingest import parse_when
    from peebot_ingest import db as database
    from peebot_ingest.recordings import CSV_HEADER, RecordedReading, format_csv_row

    start = parse_when(start_text)
    end = parse_when(end_text)
    if end <= start:
        raise click.BadParameter("--to must be after --from", param_hint="--to")
    wanted = [i.strip() for chunk in items for i in chunk.split(",") if i.strip()]
    url = database.resolve_database_url()
    n = 0
    with click.open_file(output, "w", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(CSV_HEADER)
        for item_id, ts, value, status_class, calibrated in export_rows(url, start, end, wanted):
            writer.writerow(
                format_csv_row(RecordedReading(item_id, ts, value, status_class, calibrated))
            )
            n += 1
    if output != "-":
        click.echo(f"exported {n} readings to {output}", err=True)
