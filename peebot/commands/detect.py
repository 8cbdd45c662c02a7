"""`peebot detect FILE... [--year Y]`: run the detectors over recordings, no database.

Reads every file with the recording readers (all formats `peebot replay` accepts), merges
them into one frame (files of one item continue each other) and prints one JSON object per
event per line on stdout, in start order. Read errors go to stderr as `file:line: reason`.
"""

from __future__ import annotations

import json
import sys

import click


@click.command("detect")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--year", type=int, default=None, help="Year of ISS TimeStamp files (no year in them)."
)
@click.option(
    "--processor",
    "processors",
    multiple=True,
    help="Only this processor (repeatable); default: all.",
)
@click.option(
    "--min-confidence", type=float, default=0.0, show_default=True, help="Hide weaker events."
)
def detect(
    files: tuple[str, ...], year: int | None, processors: tuple[str, ...], min_confidence: float
) -> None:
    """Run the detectors over recordings and print the events as JSON lines."""
    from peebot_dagster.detectors.registry import PROCESSORS, get_processor
    from peebot_ingest.recordings import RecordingFormatError, read_recording, to_frame

    try:
        chosen = [get_processor(n) for n in processors] if processors else list(PROCESSORS)
    except KeyError as exc:
        raise click.UsageError(str(exc.args[0])) from None
    readings = []
    for path in files:
        try:
            rec = read_recording(path, year=year)
        except RecordingFormatError as exc:
            raise click.ClickException(str(exc)) from None
        for err in rec.errors:
            click.echo(str(err), err=True)
        readings.extend(rec.readings)
    frame = to_frame(readings)
    events = [e for p in chosen for e in p.detect(frame) if e.confidence >= min_confidence]
    events.sort(key=lambda e: (e.start, e.processor))
    out = sys.stdout
    for e in events:
        out.write(json.dumps(e.to_dict(), sort_keys=False) + "\n")
    out.flush()
