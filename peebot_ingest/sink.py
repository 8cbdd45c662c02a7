"""`DatabaseSink`: one PostgreSQL connection that writes batches, one transaction each.

A batch's transaction: unknown items are added to `telemetry_channel` (in_catalog=false,
is_active=false), the readings go in by binary COPY (`copy_rows`: straight into
`telemetry_reading` inside a savepoint while batches come without duplicates, else through
the staging table), the rejections into `rejected_update`, the feed transitions into
`feed_status`, the ingest watermark in `processor_state` moves forward, and a NOTIFY
(`notify`) tells listeners what the batch held, delivered at COMMIT
(docs/ARCHITECTURE.md, "Ingest" and "Schema contract"). The channel cache, the watermark and
the totals change only once the transaction has committed.

A lost connection surfaces as `DatabaseUnavailable` and leaves nothing written; the caller
keeps the batch and tries again. Data the server refuses (it should not, after validation)
is recorded as rejections rather than retried forever.

`write` does all of it at once. A batch written while it is collected (`StreamedBatch`)
takes the same steps one at a time through the public methods below, in the order `write`
takes them: `connection`, `add_channels`, COPY, `note_duplicates`, `finish_batch`, COMMIT,
`committed`.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable
from datetime import datetime
from operator import itemgetter
from typing import Any, NamedTuple

import psycopg
from psycopg.types.json import Jsonb
from psycopg.types.string import BytesBinaryDumper

from peebot_ingest.batch import Batch, BatchResult
from peebot_ingest.copy_rows import (
    DIRECT_TABLE,
    INSERT_STAGED,
    STAGE_DDL,
    STAGE_TABLE,
    copy_readings,
)
from peebot_ingest.db import DatabaseError, connect, one_line
from peebot_ingest.notify import READINGS_CHANNEL, readings_payload, shown
from peebot_ingest.records import Rejection, ValidatedReading, utc_from_micros
from peebot_ingest.storable import clean_text, raw_payload
from peebot_iss.utc import utc_from_epoch

log = logging.getLogger("peebot.ingest.writer")

WATERMARK = "ingest"
JOURNAL_MARK = "journal"  # key in the watermark's state_data: how far a segment got

_ITEM = itemgetter(0)  # ValidatedReading.item_id
_TS_US = itemgetter(1)  # ValidatedReading.ts_us


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached right now; try again later."""


class PendingCommit(NamedTuple):
    """What the sink keeps of a batch once its transaction commits (`committed`)."""

    new_items: dict[str, int]  # channels the batch added: item id -> channel id
    newest_ts: datetime | None  # the watermark after it
    totals: dict[str, int]  # running totals after it


class BatchSummary(NamedTuple):
    """What `finish_batch` needs of a batch's readings, made while the server still stores
    them (`StreamedBatch.commit`) rather than after."""

    newest_us: int | None  # the newest reading's time, µs since 1970
    shown: list[ValidatedReading]  # the readings a NOTIFY lists (`notify.shown`)


def summarize(readings: list[ValidatedReading]) -> BatchSummary:
    return BatchSummary(max(map(_TS_US, readings), default=None), shown(readings))


class DatabaseSink:
    """One PostgreSQL connection that writes batches. Not thread-safe: one writer thread."""

    def __init__(self, url: str, *, source: str = "feed", connect_timeout: float = 5.0) -> None:
        self.url = url
        self.source = source
        self.connect_timeout = connect_timeout
        self.conn: psycopg.Connection[Any] | None = None
        self.channels: dict[str, int] = {}
        self.newest_ts: datetime | None = None
        self.totals: dict[str, int] = {"written": 0, "duplicates": 0, "rejected": 0}
        self._expect_no_duplicates = True

    # -- connection -------------------------------------------------------------------------

    def connection(self) -> psycopg.Connection[Any]:
        """The open connection (opened, with the channel cache loaded, if needed).
        DatabaseUnavailable when it cannot be; DatabaseError when it is not migrated."""
        if self.conn is not None and not self.conn.closed:
            return self.conn
        try:
            conn = connect(
                self.url,
                connect_timeout=max(1, int(self.connect_timeout)),
                application_name=f"peebot-ingest-{self.source}",
                keepalives=1,
                keepalives_idle=5,
                keepalives_interval=2,
                keepalives_count=3,
                tcp_user_timeout=15000,
            )
        except DatabaseError as exc:
            raise DatabaseUnavailable(str(exc)) from exc
        try:
            # by oid, bytea resolves to the DB-API `Binary` dumper (Python); raw bytes need
            # only the plain one, which psycopg runs in C
            conn.adapters.register_dumper(bytes, BytesBinaryDumper)
            conn.execute(STAGE_DDL)
            self.channels = dict(conn.execute("SELECT item_id, id FROM telemetry_channel"))
            if self.newest_ts is None:
                row = conn.execute(
                    "SELECT last_processed_at FROM processor_state WHERE processor_name = %s",
                    (WATERMARK,),
                ).fetchone()
                self.newest_ts = row[0] if row else None
            conn.commit()
        except psycopg.OperationalError as exc:
            conn.close()
            raise DatabaseUnavailable(one_line(exc)) from exc
        except psycopg.errors.UndefinedTable as exc:
            conn.close()
            raise DatabaseError(
                "the database has no PeeBot schema; run `peebot db migrate` first"
            ) from exc
        self.conn = conn
        return conn

    def ping(self) -> None:
        """Open the connection if needed; DatabaseUnavailable if it cannot be."""
        self.connection()

    def query(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        """The rows of one read-only query on this connection (its transaction ended)."""
        conn = self.connection()
        try:
            rows = conn.execute(sql, params).fetchall()
            conn.commit()
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            self.close()
            raise DatabaseUnavailable(one_line(exc)) from exc
        return rows

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None

    # -- writing a batch at once -------------------------------------------------------------

    def write(self, batch: Batch) -> BatchResult:
        """Write a batch in one transaction. DatabaseUnavailable leaves nothing written."""
        conn = self.connection()
        try:
            return self._write(conn, batch)
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            self.close()
            raise DatabaseUnavailable(one_line(exc)) from exc
        except psycopg.Error as exc:
            return self.refused(batch, exc)

    def _write(self, conn: psycopg.Connection[Any], batch: Batch) -> BatchResult:
        result = BatchResult()
        with conn.transaction():
            cur = conn.cursor()
            new_items = self.add_channels(cur, batch.readings)
            if batch.readings:
                result.written = self._copy_readings(cur, batch.readings, new_items)
                result.duplicates = len(batch.readings) - result.written
            pending = self.finish_batch(cur, batch, result, new_items)
        return self.committed(result, pending)

    def _copy_readings(
        self,
        cur: psycopg.Cursor[Any],
        readings: list[ValidatedReading],
        new_items: dict[str, int],
    ) -> int:
        channels = self.channel_ids(new_items)
        if self._expect_no_duplicates:
            # Fast path: most batches hold no duplicate, and a plain binary COPY straight
            # into telemetry_reading is the fastest way in. The unique key still guards it:
            # one duplicate fails the COPY, the savepoint rolls it back, and the batch goes
            # the general way below. Same rows, same counts.
            try:
                with cur.connection.transaction():
                    copy_readings(cur, DIRECT_TABLE, readings, channels)
                return len(readings)
            except psycopg.errors.UniqueViolation:
                pass
        # The general way: binary COPY into the staging table, one INSERT ... SELECT ...
        # ON CONFLICT DO NOTHING; duplicates = staged - inserted.
        copy_readings(cur, STAGE_TABLE, readings, channels)
        return self.insert_staged(cur, len(readings))

    def refused(self, batch: Batch, exc: psycopg.Error) -> BatchResult:
        """The data itself was refused (should not happen after validation): record the
        readings as rejections rather than retrying a batch that can never succeed."""
        conn = self.connection()
        with contextlib.suppress(BaseException):
            conn.rollback()
        log.error("database refused a batch (%s); recording it in rejected_update", exc)
        reason = one_line(exc)
        as_rejections = [
            Rejection(
                r.source,
                r.item_id,
                f"database refused the batch: {reason}",
                reading_payload(r),
                r.received_at,
            )
            for r in batch.readings
        ]
        refused = Batch([], batch.rejections + as_rejections, batch.transitions, batch.journal_mark)
        try:
            return self._write(conn, refused)
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            self.close()
            raise DatabaseUnavailable(one_line(exc)) from exc

    # -- the steps of a batch (inside its transaction, in this order) -------------------------

    @property
    def expect_no_duplicates(self) -> bool:
        """Whether the next batch should try the direct COPY (see `note_duplicates`)."""
        return self._expect_no_duplicates

    def add_channels(
        self,
        cur: psycopg.Cursor[Any],
        readings: list[ValidatedReading],
        known: Iterable[str] = (),
    ) -> dict[str, int]:
        """Add the items of `readings` that have no channel yet (nor are in `known`);
        returns their channel ids. The cache learns them only at `committed`."""
        unknown = set(map(_ITEM, readings)).difference(self.channels, known)
        if not unknown:
            return {}
        names = sorted(unknown)
        cur.execute(
            """
            INSERT INTO telemetry_channel (item_id, description, is_active, in_catalog)
            SELECT unnest(%s::text[]), 'first seen on the feed', false, false
            ON CONFLICT (item_id) DO NOTHING
            """,
            (names,),
        )
        rows = cur.execute(
            "SELECT item_id, id FROM telemetry_channel WHERE item_id = ANY(%s)", (names,)
        ).fetchall()
        for item_id, _ in rows:
            log.info("new item %s added to telemetry_channel (not in the catalogue)", item_id)
        return dict(rows)

    def channel_ids(self, new_items: dict[str, int]) -> dict[str, int]:
        """Channel id of every item: the cache and what this batch added."""
        return self.channels if not new_items else {**self.channels, **new_items}

    def insert_staged(self, cur: psycopg.Cursor[Any], staged: int) -> int:
        """Move the staged readings into telemetry_reading, skipping duplicates; returns how
        many were new."""
        inserted = 0
        if staged:
            cur.execute(INSERT_STAGED)
            inserted = cur.rowcount
        self.note_duplicates(staged, inserted)
        return inserted

    def note_duplicates(self, staged: int, inserted: int) -> None:
        """A batch with duplicates (a snapshot re-send, a replay run twice) tends to be
        followed by more: stay on the staging way until a batch comes without any."""
        self._expect_no_duplicates = inserted == staged

    def finish_batch(
        self,
        cur: psycopg.Cursor[Any],
        batch: Batch,
        result: BatchResult,
        new_items: dict[str, int],
        summary: BatchSummary | None = None,
    ) -> PendingCommit:
        """After the batch's readings: its rejections, feed transitions and the watermark.
        `summary`: `summarize(batch.readings)` if already made. Returns what to keep once
        the transaction commits (`committed`)."""
        newest_us, shown_readings = summary or summarize(batch.readings)
        if batch.rejections:
            self._insert_rejections(cur, batch.rejections)
            result.rejected = len(batch.rejections)
        if batch.transitions:
            cur.executemany(
                "INSERT INTO feed_status (kind, state, changed_at, feed_ts, detail) "
                "VALUES (%s, %s, %s, %s, %s)",
                [
                    (
                        t.kind,
                        clean_text(t.state),
                        utc_from_epoch(t.changed_at),
                        t.feed_ts,
                        Jsonb(t.detail),
                    )
                    for t in batch.transitions
                ],
            )
            result.transitions = len(batch.transitions)
        result.new_channels = len(new_items)
        newest = None if newest_us is None else utc_from_micros(newest_us)
        newest_after: datetime | None
        if newest is not None and (self.newest_ts is None or newest > self.newest_ts):
            newest_after = newest
        else:
            newest_after = self.newest_ts
        totals = {
            "written": self.totals["written"] + result.written,
            "duplicates": self.totals["duplicates"] + result.duplicates,
            "rejected": self.totals["rejected"] + result.rejected,
        }
        state: dict[str, Any] = {self.source: totals}
        if batch.journal_mark is not None:
            segment, done = batch.journal_mark
            state[JOURNAL_MARK] = {"segment": segment, "done": done}
        cur.execute(
            """
            INSERT INTO processor_state (processor_name, last_processed_at, last_run_at, state_data)
            VALUES (%s, %s, now(), %s)
            ON CONFLICT (processor_name) DO UPDATE SET
                last_processed_at = GREATEST(processor_state.last_processed_at,
                                             EXCLUDED.last_processed_at),
                last_run_at = now(),
                state_data = processor_state.state_data || EXCLUDED.state_data
            """,
            (WATERMARK, newest_after, Jsonb(state)),
        )
        # delivered by PostgreSQL at COMMIT, never for a batch rolled back
        payload = readings_payload(
            shown_readings, batch.transitions, newest_after, result.written, self.source
        )
        if payload is not None:
            cur.execute("SELECT pg_notify(%s, %s)", (READINGS_CHANNEL, payload))
        return PendingCommit(new_items, newest_after, totals)

    def committed(self, result: BatchResult, pending: PendingCommit) -> BatchResult:
        """The batch's transaction has committed: only now may the cache and counters move
        (they must never run ahead of the database)."""
        result.committed_at = time.time()
        self.channels.update(pending.new_items)
        self.newest_ts = pending.newest_ts
        self.totals = pending.totals
        return result

    def _insert_rejections(self, cur: psycopg.Cursor[Any], rejections: list[Rejection]) -> None:
        cur.executemany(
            "INSERT INTO rejected_update (received_at, source, item_id, reason, raw_payload) "
            "VALUES (%s, %s, %s, %s, %s)",
            [
                (
                    utc_from_epoch(x.received_at),
                    x.source,
                    x.item_id,
                    clean_text(x.reason),
                    Jsonb(x.raw_payload),
                )
                for x in rejections
            ],
        )

    # -- the journal's mark -----------------------------------------------------------------

    def journal_done(self, segment: str) -> int:
        """How many entries of this journal segment the database holds (its mark)."""
        rows = self.query(
            "SELECT state_data -> %s FROM processor_state WHERE processor_name = %s",
            (JOURNAL_MARK, WATERMARK),
        )
        mark = rows[0][0] if rows else None
        if isinstance(mark, dict) and mark.get("segment") == segment:
            return int(mark.get("done") or 0)
        return 0


def reading_payload(r: ValidatedReading) -> dict[str, Any]:
    """A refused reading as a `rejected_update` payload (whatever it holds, storable)."""
    return raw_payload(
        r.item_id,
        {
            "ts": r.ts.isoformat(),
            "value": r.value,
            "status_class": r.status_class,
            "calibrated_data": r.calibrated_data,
            "metadata": r.metadata,
        },
    )
