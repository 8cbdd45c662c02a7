"""Readings into PostgreSQL by binary COPY: the statements and the hot loop of every write.

A batch expected to hold no duplicate goes by COPY straight into `telemetry_reading` (the
direct way); otherwise into the session's temporary `ingest_stage` table and from there by
one `INSERT ... SELECT ... ON CONFLICT DO NOTHING` (the staging way, duplicates = staged -
inserted). See docs/ARCHITECTURE.md, "Ingest".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg

from peebot_ingest import speedups
from peebot_ingest.records import ValidatedReading

DIRECT_TABLE = "telemetry_reading"
STAGE_TABLE = "ingest_stage"

_COLUMNS = "channel_id, ts, value, calibrated_data, status_class, event_id, ingested_at, metadata"
STAGE_DDL = (
    f"CREATE TEMP TABLE IF NOT EXISTS {STAGE_TABLE} ("
    "channel_id integer, ts timestamptz, value double precision, calibrated_data text, "
    "status_class smallint, event_id uuid, ingested_at timestamptz, metadata text"
    ") ON COMMIT DELETE ROWS"
)
INSERT_STAGED = (
    f"INSERT INTO {DIRECT_TABLE} ({_COLUMNS}) "
    "SELECT channel_id, ts, value, calibrated_data, status_class, event_id, ingested_at, "
    f"metadata::jsonb FROM {STAGE_TABLE} ON CONFLICT DO NOTHING"
)
# Binary COPY data carries no type: the server reads each field as its column's type. So the
# reading's time goes as an int8 of microseconds since 2000-01-01 UTC, which is timestamptz's
# binary form; the 16 event id bytes go through psycopg's (C) bytea dumper unchanged, which is
# uuid's binary form, and so does the metadata on the direct path as jsonb's binary form (a
# version byte and the JSON text; the staging table keeps text and casts in the INSERT).
_STAGE_TYPES = ["int4", "int8", "float8", "text", "int2", "bytea", "timestamptz", "text"]
PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 UTC in microseconds since 1970
_DIRECT_TYPES = [*_STAGE_TYPES[:-1], "bytea"]


# The binary COPY format's header (signature, flags, no extension) and end-of-data marker,
# sent around rows the compiled loop encodes (psycopg adds them around `write_row`'s rows).
SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
TRAILER = b"\xff\xff"


class ReadingCopy:
    """An open binary COPY of reading rows into `DIRECT_TABLE` or `STAGE_TABLE` (`open_copy`).

    Rows are encoded by the compiled loop (`speedups`) when it is built, else by psycopg's
    `write_row` one at a time: the same bytes. A run of readings the compiled loop does not
    take (a field of an unexpected type, e.g. an int receipt time) goes by `write_row`,
    which adapts it or says what is wrong."""

    def __init__(self, copy: psycopg.Copy, direct: bool) -> None:
        self.copy = copy
        self.direct = direct
        self._started = False  # the header is sent (by us or by psycopg)
        self._row_mode = False  # psycopg sent rows: it sends the end marker itself

    def write(self, readings: list[ValidatedReading], channels: dict[str, int]) -> None:
        native = speedups.native
        if native is not None and readings:
            try:
                data = native.copy_rows(readings, channels, self.direct)
            except (TypeError, OverflowError):
                pass
            else:
                self.copy.write(data if self._started else SIGNATURE + data)
                self._started = True
                return
        write_rows(self.copy, readings, channels, direct=self.direct)
        self._row_mode = self._started = True

    def finish(self) -> None:
        """Before the COPY ends: the end marker, unless psycopg sends it."""
        if self._started and not self._row_mode:
            self.copy.write(TRAILER)


@contextmanager
def open_copy(cur: psycopg.Cursor[Any], table: str) -> Iterator[ReadingCopy]:
    """A binary COPY of the reading columns into `DIRECT_TABLE` or `STAGE_TABLE`."""
    with cur.copy(f"COPY {table} ({_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
        rows = ReadingCopy(copy, direct=table == DIRECT_TABLE)
        yield rows
        rows.finish()


def copy_readings(
    cur: psycopg.Cursor[Any],
    table: str,
    readings: list[ValidatedReading],
    channels: dict[str, int],
) -> None:
    """One whole COPY of `readings` into `table`."""
    with open_copy(cur, table) as copy:
        copy.write(readings, channels)


def write_rows(
    copy: psycopg.Copy,
    readings: list[ValidatedReading],
    channels: dict[str, int],
    *,
    direct: bool,
) -> None:
    """Readings as COPY rows by psycopg, one `write_row` each (the Python loop)."""
    copy.set_types(_DIRECT_TYPES if direct else _STAGE_TYPES)
    write_row = copy.write_row
    fromts = datetime.fromtimestamp  # peebot_iss.utc.utc_from_epoch, without a call per row
    last_received = None
    ingested_at = None
    # tuple unpacking is cheaper than field access
    for item, ts_us, value, klass, calibrated, event, received, meta, _ in readings:
        if received != last_received:  # a replay stamps all its rows alike
            last_received = received
            ingested_at = fromts(received, UTC)
        if direct and meta is not None:
            meta = b"\x01" + meta.encode()  # type: ignore[assignment]
        write_row(
            (
                channels[item],
                ts_us - PG_EPOCH_US,
                value,
                calibrated,
                klass,
                event,
                ingested_at,
                meta,
            )
        )
