"""Readers for telemetry recordings (pure parsing, no database).

Three formats, told apart by content (not by file name):

* **ISS TimeStamp lines** (ISS Mimic archive, ISS-telemetry-recorder): one
  `<TimeStamp> <Value>` per line, e.g. `6844.98852916665 29.6900005340576 `. The item is
  the file name's stem (`NODE3000008.txt` -> `NODE3000008`). The TimeStamp has no year, so
  one is needed (`year=`); a TimeStamp far below the previous one is a New Year rollover
  and moves to the next year.
* **Wall-clock lines** (pdiggidy/ISSP, 2023): `YYYY-MM-DD-HH:MM:SS <Value>`, the recorder's
  UTC clock. Item from the file name as above.
* **The project's CSV export**: header `item_id,ts,value,status_class,calibrated_data`
  (ts ISO 8601 UTC; status_class and calibrated_data may be empty). This is the format
  `peebot export` writes and `peebot replay` reads back.

Lines that cannot be read are reported as `RecordingError(file, line, reason)` and skipped;
nothing is silently dropped. Blank lines are ignored.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from peebot_iss.timestamps import TimeStampError, decode_timestamp, parse_timestamp
from peebot_iss.utc import as_utc

CSV_HEADER = ("item_id", "ts", "value", "status_class", "calibrated_data")

FORMAT_TIMESTAMP = "iss_timestamp"
FORMAT_WALLCLOCK = "wallclock"
FORMAT_CSV = "csv_export"

_WALLCLOCK = re.compile(r"^(\d{4})-(\d{2})-(\d{2})-(\d{2}):(\d{2}):(\d{2}(?:\.\d+)?)$")
_ITEM_ID = re.compile(r"^[A-Z0-9_]+$")
# A TimeStamp this many hours below the previous one means the day-of-year counter wrapped.
_ROLLOVER_DROP_HOURS = 24.0 * 300


class RecordingFormatError(ValueError):
    """The file is in none of the known formats (or needs a year it was not given)."""


@dataclass(frozen=True)
class RecordedReading:
    """One reading as a recording file has it (before validation)."""

    item_id: str
    ts: datetime  # UTC
    value: float
    status_class: int | None = None
    calibrated_data: str | None = None
    raw: str = ""  # the line as read, without the newline
    line: int = 0  # 1-based line number in its file
    source: str = ""  # the file it came from


@dataclass(frozen=True)
class RecordingError:
    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass
class Recording:
    path: str
    format: str
    readings: list[RecordedReading] = field(default_factory=list)
    errors: list[RecordingError] = field(default_factory=list)

    @property
    def items(self) -> list[str]:
        return sorted({r.item_id for r in self.readings})


def item_from_path(path: str | Path) -> str:
    stem = Path(path).name.split(".")[0].upper()
    if not _ITEM_ID.match(stem):
        raise RecordingFormatError(f"{path}: cannot take an item id from the file name")
    return stem


def detect_format(lines: Sequence[str]) -> str:
    """The format of a file from its first non-blank line."""
    for line in lines:
        text = line.strip().lstrip("\ufeff")
        if not text:
            continue
        if text.replace(" ", "").lower().startswith("item_id,ts,value"):
            return FORMAT_CSV
        first = text.split()[0]
        if _WALLCLOCK.match(first):
            return FORMAT_WALLCLOCK
        try:
            parse_timestamp(first)
        except TimeStampError:
            break
        return FORMAT_TIMESTAMP
    raise RecordingFormatError("not a known recording format (first line not recognised)")


def read_recording(path: str | Path, year: int | None = None) -> Recording:
    """Read one recording file. `year` is required for ISS TimeStamp files."""
    path = Path(path)
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    return parse_recording(text, str(path), year=year)


def read_recordings(paths: Iterable[str | Path], year: int | None = None) -> list[Recording]:
    return [read_recording(p, year=year) for p in paths]


def parse_recording(text: str, name: str, year: int | None = None) -> Recording:
    """Parse a recording's text; `name` is its file name (for the item id and errors)."""
    lines = text.splitlines()
    fmt = detect_format(lines)
    if fmt == FORMAT_CSV:
        return _parse_csv(text, name)
    item_id = item_from_path(name)
    if fmt == FORMAT_WALLCLOCK:
        return _parse_wallclock(lines, name, item_id)
    if year is None:
        raise RecordingFormatError(f"{name}: ISS TimeStamp lines carry no year; pass one (--year)")
    return _parse_timestamp_lines(lines, name, item_id, year)


def _split_value(rest: list[str]) -> tuple[float | None, str]:
    if len(rest) != 1:
        return None, f"expected 2 fields, got {len(rest) + 1}"
    try:
        value = float(rest[0])
    except ValueError:
        return None, f"value {rest[0]!r} is not a number"
    if not math.isfinite(value):
        return None, f"value {rest[0]!r} is not finite"
    return value, ""


def _parse_timestamp_lines(lines: list[str], name: str, item_id: str, year: int) -> Recording:
    rec = Recording(path=name, format=FORMAT_TIMESTAMP)
    current_year = year
    previous: float | None = None
    for n, raw in enumerate(lines, start=1):
        fields = raw.split()
        if not fields:
            continue
        try:
            hours = parse_timestamp(fields[0])
        except TimeStampError as exc:
            rec.errors.append(RecordingError(name, n, str(exc)))
            continue
        value, why = _split_value(fields[1:])
        if value is None:
            rec.errors.append(RecordingError(name, n, why))
            continue
        if previous is not None and previous - hours > _ROLLOVER_DROP_HOURS:
            current_year += 1
        try:
            ts = decode_timestamp(hours, current_year)
        except TimeStampError as exc:
            rec.errors.append(RecordingError(name, n, str(exc)))
            continue
        previous = hours
        rec.readings.append(RecordedReading(item_id, ts, value, raw=raw, line=n, source=name))
    return rec


def _parse_wallclock(lines: list[str], name: str, item_id: str) -> Recording:
    rec = Recording(path=name, format=FORMAT_WALLCLOCK)
    for n, raw in enumerate(lines, start=1):
        fields = raw.split()
        if not fields:
            continue
        m = _WALLCLOCK.match(fields[0])
        if not m:
            rec.errors.append(
                RecordingError(name, n, f"time {fields[0]!r} is not YYYY-MM-DD-HH:MM:SS")
            )
            continue
        try:
            sec = float(m.group(6))
            ts = datetime(
                int(m.group(1)), int(m.group(2)), int(m.group(3)),
                int(m.group(4)), int(m.group(5)), int(sec),
                round((sec - int(sec)) * 1e6), tzinfo=UTC,
            )  # fmt: skip
        except ValueError as exc:
            rec.errors.append(RecordingError(name, n, f"time {fields[0]!r}: {exc}"))
            continue
        value, why = _split_value(fields[1:])
        if value is None:
            rec.errors.append(RecordingError(name, n, why))
            continue
        rec.readings.append(RecordedReading(item_id, ts, value, raw=raw, line=n, source=name))
    return rec


def _parse_iso_utc(text: str) -> datetime:
    ts = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if ts.tzinfo is None:  # an export always has one: a row without is not ours
        raise ValueError(f"ts {text!r} has no UTC offset")
    return as_utc(ts)


def _parse_csv(text: str, name: str) -> Recording:
    rec = Recording(path=name, format=FORMAT_CSV)
    reader = csv.reader(io.StringIO(text))
    header: list[str] | None = None
    for row in reader:
        n = reader.line_num
        if header is None:
            if not any(c.strip() for c in row):
                continue
            header = [c.strip().lstrip("\ufeff") for c in row]
            missing = [c for c in ("item_id", "ts", "value") if c not in header]
            if missing:
                raise RecordingFormatError(f"{name}: CSV header lacks {missing}")
            continue
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(header):
            rec.errors.append(
                RecordingError(name, n, f"expected {len(header)} fields, got {len(row)}")
            )
            continue
        cells = dict(zip(header, row, strict=True))
        item_id = cells["item_id"].strip()
        if not _ITEM_ID.match(item_id):
            rec.errors.append(RecordingError(name, n, f"item_id {item_id!r} is not an item id"))
            continue
        try:
            ts = _parse_iso_utc(cells["ts"])
        except ValueError as exc:
            rec.errors.append(RecordingError(name, n, f"ts {cells['ts']!r}: {exc}"))
            continue
        value, why = _split_value([cells["value"].strip()])
        if value is None:
            rec.errors.append(RecordingError(name, n, why))
            continue
        status_raw = cells.get("status_class", "").strip()
        status: int | None = None
        if status_raw:
            try:
                status = int(float(status_raw))
            except ValueError:
                rec.errors.append(
                    RecordingError(name, n, f"status_class {status_raw!r} is not an integer")
                )
                continue
        calibrated = cells.get("calibrated_data", "").strip() or None
        raw = ",".join(row)
        rec.readings.append(RecordedReading(item_id, ts, value, status, calibrated, raw, n, name))
    if header is None:
        raise RecordingFormatError(f"{name}: empty CSV")
    return rec


def to_frame(readings: Iterable[RecordedReading]) -> pd.DataFrame:
    """Readings as a detector frame: item_id, ts (UTC), value, status_class; sorted by ts."""
    rows = list(readings)
    frame = pd.DataFrame(
        {
            "item_id": pd.Series([r.item_id for r in rows], dtype="object"),
            "ts": pd.to_datetime(pd.Series([r.ts for r in rows], dtype="object"), utc=True),
            "value": pd.Series([r.value for r in rows], dtype="float64"),
            "status_class": pd.Series(
                [pd.NA if r.status_class is None else r.status_class for r in rows],
                dtype="Int64",
            ),
        }
    )
    if frame.empty:
        frame["ts"] = pd.Series([], dtype="datetime64[ns, UTC]")
    return frame.sort_values("ts", kind="stable").reset_index(drop=True)


def format_csv_row(reading: RecordedReading) -> list[str]:
    """One row of the CSV export (the inverse of the CSV reader)."""
    ts = as_utc(reading.ts).isoformat().replace("+00:00", "Z")
    return [
        reading.item_id,
        ts,
        repr(reading.value),
        "" if reading.status_class is None else str(reading.status_class),
        reading.calibrated_data or "",
    ]
