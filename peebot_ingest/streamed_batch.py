"""`StreamedBatch`: a batch written while it is collected.

Its readings go into an open binary COPY at once, so PostgreSQL stores them while the
caller validates the next ones (one Python thread and the server keep both cores busy).
`BufferedWriter` uses it for a backlog (sent ahead, committed when due) and `BulkLoader`
(replay) for everything. It takes the sink's steps one at a time (`sink.DatabaseSink`), so a
streamed batch ends exactly as `DatabaseSink.write` of the same batch would.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import ExitStack
from operator import itemgetter
from typing import Any

import psycopg

from peebot_ingest.batch import Batch, BatchResult
from peebot_ingest.copy_rows import (
    DIRECT_TABLE,
    STAGE_TABLE,
    ReadingCopy,
    copy_readings,
    open_copy,
)
from peebot_ingest.db import one_line
from peebot_ingest.records import Entry, FeedTransition, Rejection, ValidatedReading
from peebot_ingest.sink import (
    BatchSummary,
    DatabaseSink,
    DatabaseUnavailable,
    PendingCommit,
    summarize,
)

_ITEM = itemgetter(0)  # ValidatedReading.item_id
_ONLY_READINGS = {ValidatedReading}


class StreamedBatch:
    """One batch whose readings reach the server while it is still being collected.

    `add()` writes readings into an open binary COPY at once, so PostgreSQL stores them while
    the caller validates the next ones (one thread keeps both cores busy); `commit()` ends
    the COPY and commits the batch as `DatabaseSink.write` would: the same rows, counts,
    rejections, transitions and watermark.

    While batches hold no duplicate, the COPY goes straight into telemetry_reading inside a
    savepoint. A duplicate fails it: the savepoint is rolled back and its readings, and the
    rest of the batch, go through the staging table and `INSERT ... ON CONFLICT DO NOTHING`.
    An item not yet in telemetry_channel ends the open COPY (and its savepoint); the channel
    is added in the batch's transaction, outside any savepoint, and a new COPY starts.
    Data the server refuses turns the whole batch into rejections at `commit()`; a lost
    connection raises `DatabaseUnavailable` (nothing of the batch is committed)."""

    def __init__(self, sink: DatabaseSink) -> None:
        self.sink = sink
        self.batch = Batch()
        self.conn = sink.connection()
        self.cur = self.conn.cursor()
        self.new_items: dict[str, int] = {}
        self.direct = sink.expect_no_duplicates
        self.written = 0  # readings in closed direct segments
        self.staged = 0  # readings in ingest_stage
        self._segment = 0  # where the open segment starts in batch.readings
        self._tx = ExitStack()
        try:
            self._tx.enter_context(self.conn.transaction())
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            sink.close()
            raise DatabaseUnavailable(one_line(exc)) from exc
        self._open: ExitStack | None = None  # the open COPY (and its savepoint)
        self._copy: ReadingCopy | None = None
        self._refused: psycopg.Error | None = None
        self._pending: PendingCommit | None = None  # see _finish

    def add(self, readings: list[ValidatedReading]) -> None:
        start = len(self.batch.readings)
        self.batch.readings.extend(readings)
        if self._refused is None:
            self._guard(self._stream, start)

    def add_other(self, entry: Rejection | FeedTransition) -> None:
        self.batch.add(entry)

    def send(self, entries: list[Entry]) -> None:
        """Entries in order, each run of readings in one go."""
        if set(map(type, entries)) == _ONLY_READINGS:  # the common case, checked in C
            self.add(entries)  # type: ignore[arg-type]
            return
        run: list[ValidatedReading] = []
        for entry in entries:
            if type(entry) is ValidatedReading:
                run.append(entry)
                continue
            if run:
                self.add(run)
                run = []
            self.add_other(entry)  # type: ignore[arg-type]
        if run:
            self.add(run)

    def commit(self) -> BatchResult:
        result = BatchResult()
        # made before the COPY ends, while the server still works through what was sent
        summary = summarize(self.batch.readings)
        if self._refused is None:
            self._guard(self._end_segment, len(self.batch.readings))
        if self._refused is None:
            self._guard(lambda r: self._finish(r, summary), result)
        if self._refused is None:
            self._guard(lambda _: self._tx.close(), None)  # COMMIT
        if self._refused is not None:
            self.abort()
            return self.sink.refused(self.batch, self._refused)
        assert self._pending is not None  # set by _finish
        return self.sink.committed(result, self._pending)

    def abort(self) -> None:
        """Roll the batch back (what was sent of it is forgotten by the server)."""
        if self._open is not None:
            self._close_segment(RuntimeError("batch aborted"))
        with contextlib.suppress(BaseException):
            self._tx.__exit__(RuntimeError, RuntimeError("batch aborted"), None)  # ROLLBACK

    # -- inside ---------------------------------------------------------------------------

    def _guard(self, step: Callable[[Any], None], arg: Any) -> None:
        try:
            step(arg)
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            self.abort()
            self.sink.close()
            raise DatabaseUnavailable(one_line(exc)) from exc
        except psycopg.Error as exc:
            self._close_segment(exc)
            if self.direct and isinstance(exc, psycopg.errors.UniqueViolation):
                self._guard(self._to_staging, None)  # a duplicate: the staging way
            else:  # refused data (the staging table has no unique key)
                self._refused = exc

    def _stream(self, start: int) -> None:
        readings = self.batch.readings[start:]
        if set(map(_ITEM, readings)).difference(self.sink.channels, self.new_items):
            self._end_segment(start)
            self.new_items.update(self.sink.add_channels(self.cur, readings, self.new_items))
        if self._copy is None:
            self._open = ExitStack()
            if self.direct:
                self._open.enter_context(self.conn.transaction())  # savepoint
            table = DIRECT_TABLE if self.direct else STAGE_TABLE
            self._copy = self._open.enter_context(open_copy(self.cur, table))
            self._segment = start
        self._copy.write(readings, self.sink.channel_ids(self.new_items))

    def _end_segment(self, end: int) -> None:
        """End the open COPY; its readings (up to `end`) are then stored in the batch."""
        if self._open is None:
            return
        opened, self._open, self._copy = self._open, None, None
        opened.close()
        if self.direct:
            self.written += end - self._segment
        else:
            self.staged += end - self._segment
        self._segment = end

    def _close_segment(self, exc: BaseException) -> None:
        """Unwind the open COPY after an error (rolls its savepoint back)."""
        opened, self._open, self._copy = self._open, None, None
        if opened is not None:
            with contextlib.suppress(BaseException):
                opened.__exit__(type(exc), exc, exc.__traceback__)

    def _to_staging(self, _: None) -> None:
        """A duplicate failed the direct COPY: the rolled-back segment's readings and the
        rest of the batch go through the staging table."""
        self.direct = False
        rest = self.batch.readings[self._segment :]
        self.new_items.update(self.sink.add_channels(self.cur, rest, self.new_items))
        copy_readings(self.cur, STAGE_TABLE, rest, self.sink.channel_ids(self.new_items))
        self.staged += len(rest)
        self._segment = len(self.batch.readings)

    def _finish(self, result: BatchResult, summary: BatchSummary) -> None:
        inserted = self.sink.insert_staged(self.cur, self.staged)
        result.written = self.written + inserted
        result.duplicates = len(self.batch.readings) - result.written
        self._pending = self.sink.finish_batch(
            self.cur, self.batch, result, self.new_items, summary
        )
