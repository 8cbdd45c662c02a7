"""The batched database writer.

`DatabaseSink` writes one `Batch` in one transaction: unknown items are added to
`telemetry_channel` (in_catalog=false, is_active=false), readings go by binary COPY into a
temporary staging table and then into `telemetry_reading` with one
`INSERT ... SELECT ... ON CONFLICT DO NOTHING` (duplicates = staged - inserted). A batch
expected to hold no duplicate first goes by plain binary COPY straight into
`telemetry_reading` inside a savepoint (faster); one duplicate fails that COPY, the savepoint
rolls it back and the batch takes the staging way. Rejections
into `rejected_update`, feed transitions into `feed_status`, and the ingest watermark in
`processor_state` moves forward. A lost connection surfaces as `DatabaseUnavailable`; the
caller (`BufferedWriter`) keeps the batch and tries again.

`BufferedWriter` is the single-threaded heart of the daemon's writer thread: it collects
readings, flushes by size or age, survives outages by buffering in memory and spilling to
the on-disk `Journal` past a bound, and writes the journal back first when the database
returns, so the order of writes (and the watermark) stays monotonic.

`StreamedBatch` is a batch written while it is collected: its readings go into an open COPY
at once, so PostgreSQL stores them while the caller validates the next ones (one Python
thread and the server keep both cores busy). `BufferedWriter` uses it for a backlog (sent
ahead, committed when due) and `BulkLoader` (replay) for everything.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from operator import itemgetter
from typing import Any, NamedTuple

import psycopg
from psycopg.types.json import Jsonb
from psycopg.types.string import BytesBinaryDumper

from peebot_ingest.db import DatabaseError, connect, one_line
from peebot_ingest.journal import Journal
from peebot_ingest.notify import READINGS_CHANNEL, readings_payload
from peebot_ingest.validate import Reading, Rejection, clean_text, raw_payload

log = logging.getLogger("peebot.ingest.writer")

WATERMARK = "ingest"
JOURNAL_MARK = "journal"  # key in the watermark's state_data: how far a segment got


class FeedTransition(NamedTuple):
    """A row of `feed_status`: a connection status change or a signal transition."""

    kind: str  # connection | signal
    state: str
    changed_at: float  # wall clock, epoch seconds
    feed_ts: datetime | None
    detail: dict[str, Any]


Entry = Reading | Rejection | FeedTransition


class DatabaseUnavailable(RuntimeError):
    """The database cannot be reached right now; try again later."""


@dataclass
class Batch:
    readings: list[Reading] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    transitions: list[FeedTransition] = field(default_factory=list)
    # written back from the journal: (segment name, entries of it committed with this batch)
    journal_mark: tuple[str, int] | None = None

    def add(self, entry: Entry) -> None:
        if isinstance(entry, Reading):
            self.readings.append(entry)
        elif isinstance(entry, Rejection):
            self.rejections.append(entry)
        else:
            self.transitions.append(entry)

    def __len__(self) -> int:
        return len(self.readings) + len(self.rejections) + len(self.transitions)


@dataclass
class BatchResult:
    written: int = 0
    duplicates: int = 0
    rejected: int = 0
    transitions: int = 0
    new_channels: int = 0
    committed_at: float = 0.0


_STAGE_COLUMNS = (
    "channel_id, ts, value, calibrated_data, status_class, event_id, ingested_at, metadata"
)
_INSERT_STAGED = (
    f"INSERT INTO telemetry_reading ({_STAGE_COLUMNS}) "
    "SELECT channel_id, ts, value, calibrated_data, status_class, event_id, ingested_at, "
    "metadata::jsonb FROM ingest_stage"
)
# Binary COPY data carries no type: the server reads each field as its column's type. So the
# 16 event id bytes go through psycopg's (C) bytea dumper unchanged, which is uuid's binary
# form, and so does the metadata on the direct path as jsonb's binary form (a version byte
# and the JSON text; the staging table keeps text and casts in the INSERT).
_STAGE_TYPES = ["int4", "timestamptz", "float8", "text", "int2", "bytea", "timestamptz", "text"]
_DIRECT_TYPES = [*_STAGE_TYPES[:-1], "bytea"]


_ITEM = itemgetter(0)  # Reading.item_id
_TS = itemgetter(1)  # Reading.ts


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


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

    def _open(self) -> psycopg.Connection[Any]:
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
            conn.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS ingest_stage ({_stage_ddl()}) "
                "ON COMMIT DELETE ROWS"
            )
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
        self._open()

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None

    # -- writing ----------------------------------------------------------------------------

    def write(self, batch: Batch) -> BatchResult:
        """Write a batch in one transaction. DatabaseUnavailable leaves nothing written."""
        conn = self._open()
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
            new_items = self._ensure_channels(cur, batch.readings)
            result.new_channels = len(new_items)
            if batch.readings:
                result.written = self._copy_readings(cur, batch.readings, new_items)
                result.duplicates = len(batch.readings) - result.written
            newest, totals = self._write_rest(cur, batch, result)
        return self._committed(result, new_items, newest, totals)

    def _write_rest(
        self, cur: psycopg.Cursor[Any], batch: Batch, result: BatchResult
    ) -> tuple[datetime | None, dict[str, int]]:
        """Inside the batch's transaction, after its readings: rejections, feed transitions
        and the watermark. Returns the watermark and totals to keep once committed."""
        if batch.rejections:
            self._insert_rejections(cur, batch.rejections)
            result.rejected = len(batch.rejections)
        if batch.transitions:
            cur.executemany(
                "INSERT INTO feed_status (kind, state, changed_at, feed_ts, detail) "
                "VALUES (%s, %s, %s, %s, %s)",
                [
                    (t.kind, clean_text(t.state), _dt(t.changed_at), t.feed_ts, Jsonb(t.detail))
                    for t in batch.transitions
                ],
            )
            result.transitions = len(batch.transitions)
        newest = max(map(_TS, batch.readings), default=None)
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
            batch.readings, batch.transitions, newest_after, result.written, self.source
        )
        if payload is not None:
            cur.execute("SELECT pg_notify(%s, %s)", (READINGS_CHANNEL, payload))
        return newest_after, totals

    def _committed(
        self,
        result: BatchResult,
        new_items: dict[str, int],
        newest: datetime | None,
        totals: dict[str, int],
    ) -> BatchResult:
        result.committed_at = time.time()
        # only after the commit: the cache and counters must never run ahead of the database
        self.channels.update(new_items)
        self.newest_ts = newest
        self.totals = totals
        return result

    def journal_done(self, segment: str) -> int:
        """How many entries of this journal segment the database holds (its mark)."""
        conn = self._open()
        try:
            row = conn.execute(
                "SELECT state_data -> %s FROM processor_state WHERE processor_name = %s",
                (JOURNAL_MARK, WATERMARK),
            ).fetchone()
            conn.commit()
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            self.close()
            raise DatabaseUnavailable(one_line(exc)) from exc
        mark = row[0] if row else None
        if isinstance(mark, dict) and mark.get("segment") == segment:
            return int(mark.get("done") or 0)
        return 0

    def refused(self, batch: Batch, exc: psycopg.Error) -> BatchResult:
        """The data itself was refused (should not happen after validation): record the
        readings as rejections rather than retrying a batch that can never succeed."""
        conn = self._open()
        with _suppress_all():
            conn.rollback()
        log.error("database refused a batch (%s); recording it in rejected_update", exc)
        return self._write_refused(conn, batch, one_line(exc))

    def _ensure_channels(
        self, cur: psycopg.Cursor[Any], readings: list[Reading], known: Iterable[str] = ()
    ) -> dict[str, int]:
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

    def _copy_readings(
        self, cur: psycopg.Cursor[Any], readings: list[Reading], new_items: dict[str, int]
    ) -> int:
        channels = self.channels if not new_items else {**self.channels, **new_items}
        if self._expect_no_duplicates:
            # Fast path: most batches hold no duplicate, and a plain binary COPY straight
            # into telemetry_reading is the fastest way in. The unique key still guards it:
            # one duplicate fails the COPY, the savepoint rolls it back, and the batch goes
            # the general way below. Same rows, same counts.
            try:
                with cur.connection.transaction():
                    self._copy(cur, "telemetry_reading", readings, channels)
                return len(readings)
            except psycopg.errors.UniqueViolation:
                pass
        # The general way: binary COPY into the staging table, one INSERT ... SELECT ...
        # ON CONFLICT DO NOTHING; duplicates = staged - inserted.
        self._copy(cur, "ingest_stage", readings, channels)
        cur.execute(_INSERT_STAGED + " ON CONFLICT DO NOTHING")
        inserted = cur.rowcount
        # a batch with duplicates (a snapshot re-send, a replay run twice) tends to be
        # followed by more: stay on the staging path until a batch comes without any
        self._expect_no_duplicates = inserted == len(readings)
        return inserted

    @staticmethod
    def _copy(
        cur: psycopg.Cursor[Any], table: str, readings: list[Reading], channels: dict[str, int]
    ) -> None:
        with _open_copy(cur, table) as copy:
            _write_rows(copy, readings, channels, direct=table == "telemetry_reading")

    def _insert_rejections(self, cur: psycopg.Cursor[Any], rejections: list[Rejection]) -> None:
        cur.executemany(
            "INSERT INTO rejected_update (received_at, source, item_id, reason, raw_payload) "
            "VALUES (%s, %s, %s, %s, %s)",
            [
                (
                    _dt(x.received_at),
                    x.source,
                    x.item_id,
                    clean_text(x.reason),
                    Jsonb(x.raw_payload),
                )
                for x in rejections
            ],
        )

    def _write_refused(
        self, conn: psycopg.Connection[Any], batch: Batch, reason: str
    ) -> BatchResult:
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


def _open_copy(cur: psycopg.Cursor[Any], table: str) -> Any:
    """`cur.copy(...)` of the reading columns into telemetry_reading or ingest_stage."""
    return cur.copy(f"COPY {table} ({_STAGE_COLUMNS}) FROM STDIN (FORMAT BINARY)")


def _write_rows(
    copy: psycopg.Copy, readings: list[Reading], channels: dict[str, int], *, direct: bool
) -> None:
    """Readings as COPY rows (the hot loop of every write)."""
    copy.set_types(_DIRECT_TYPES if direct else _STAGE_TYPES)
    write_row = copy.write_row
    fromts = datetime.fromtimestamp
    last_received = None
    ingested_at = None
    # tuple unpacking is cheaper than field access
    for item, ts, value, klass, calibrated, event, received, meta, _ in readings:
        if received != last_received:  # a replay stamps all its rows alike
            last_received = received
            ingested_at = fromts(received, UTC)
        if direct and meta is not None:
            meta = b"\x01" + meta.encode()  # type: ignore[assignment]
        write_row((channels[item], ts, value, calibrated, klass, event, ingested_at, meta))


def _stage_ddl() -> str:
    return (
        "channel_id integer, ts timestamptz, value double precision, calibrated_data text, "
        "status_class smallint, event_id uuid, ingested_at timestamptz, metadata text"
    )


def reading_payload(r: Reading) -> dict[str, Any]:
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


class _suppress_all:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


# --------------------------------------------------------------------------- buffered writer


@dataclass
class WriterCounters:
    written: int = 0
    duplicates: int = 0
    rejected: int = 0
    transitions: int = 0
    batches: int = 0
    spilled: int = 0
    journal_replayed: int = 0
    outages: int = 0

    def count(self, result: BatchResult) -> None:
        """Add one committed batch."""
        self.written += result.written
        self.duplicates += result.duplicates
        self.rejected += result.rejected
        self.transitions += result.transitions
        self.batches += 1


@dataclass
class WriterConfig:
    # a batch commits at this many entries or this age, whichever first; live, the age
    # decides (a few hundred updates a second); under a backlog, bigger batches spend less
    # of the time waiting for the server to finish a batch (bench/ingest.py run with
    # 5,000 instead gave a writer / COPY ratio of 0.57, against 0.69 with 20,000)
    batch_rows: int = 20_000
    batch_seconds: float = 0.2
    memory_rows: int = 50_000
    retry_initial: float = 0.2
    retry_max: float = 5.0
    # with this many entries not yet sent, send them ahead of the commit (0: never)
    stream_rows: int = 1000


class BufferedWriter:
    """Batches entries, writes them, and rides out database outages.

    Single-threaded: the daemon's writer thread (or the replay/inject command) calls
    `add()` and `maybe_flush()`; `close()` writes everything or, if the database is still
    away, leaves it in the journal for the next start.

    Under a backlog (`stream_rows` or more entries waiting), `maybe_flush()` sends the
    batch's leading entries into an open COPY (`StreamedBatch`) before the batch is due, so
    PostgreSQL stores them while the caller validates more; the batch still commits when it
    is due, by size or age. Entries leave `pending` only once committed: if the database
    goes away meanwhile, the open batch is dropped and they take the usual way (retry,
    memory bound, journal)."""

    def __init__(
        self,
        sink: DatabaseSink,
        journal: Journal,
        config: WriterConfig | None = None,
        *,
        on_commit: Callable[[Batch, BatchResult], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sink = sink
        self.journal = journal
        self.config = config or WriterConfig()
        self.on_commit = on_commit
        self.clock = clock
        self.pending: deque[Entry] = deque()
        self.counters = WriterCounters()
        self.db_up: bool | None = None
        self.last_error = ""
        self._oldest_at: float | None = None  # monotonic time the oldest pending entry arrived
        self._next_try = 0.0
        self._delay = self.config.retry_initial
        self._stream: StreamedBatch | None = None
        self._streamed = 0  # leading pending entries already sent into `_stream`

    # -- intake -----------------------------------------------------------------------------

    def add(self, entry: Entry) -> None:
        if not self.pending:
            self._oldest_at = self.clock()
        self.pending.append(entry)
        if len(self.pending) > self.config.memory_rows:
            self._spill()

    def extend(self, entries: Iterable[Entry]) -> None:
        if not self.pending:
            self._oldest_at = self.clock()
        self.pending.extend(entries)
        if len(self.pending) > self.config.memory_rows:
            self._spill()

    @property
    def backlog(self) -> int:
        """Entries not yet in the database (memory + journal)."""
        return len(self.pending) + self.journal.entries

    # -- flushing ---------------------------------------------------------------------------

    def due(self) -> bool:
        if not self.pending and not self.journal.entries:
            return False
        if self.clock() < self._next_try:
            return False
        if self.journal.entries or len(self.pending) >= self.config.batch_rows:
            return True
        return self._oldest_at is not None and (
            self.clock() - self._oldest_at >= self.config.batch_seconds
        )

    def seconds_until_due(self) -> float:
        """How long the caller may block waiting for input before a flush is due."""
        now = self.clock()
        if now < self._next_try:
            return self._next_try - now
        if not self.pending and not self.journal.entries:
            return self.config.batch_seconds
        if self._oldest_at is None:
            return 0.0
        return max(0.0, self._oldest_at + self.config.batch_seconds - now)

    def maybe_flush(self) -> bool:
        """Write what is due (else send a backlog ahead); False if the database was
        unavailable."""
        if not self.due():
            return self._send_ahead()
        return self.flush(full=False)

    def _send_ahead(self) -> bool:
        rows = self.config.stream_rows
        if not rows or self.db_up is False or self.journal.entries:
            return True
        end = min(len(self.pending), self.config.batch_rows)  # never past one batch
        if end - self._streamed < rows:
            return True
        try:
            if self._stream is None:
                self._stream = StreamedBatch(self.sink)
            _send(self._stream, list(islice(self.pending, self._streamed, end)))
            self._streamed = end
        except (DatabaseUnavailable, DatabaseError) as exc:
            self._drop_stream()
            self._mark_down(str(exc))
            return False
        return True

    def _drop_stream(self) -> None:
        """Forget what was sent ahead (rolled back); it is all still in `pending`."""
        stream, self._stream, self._streamed = self._stream, None, 0
        if stream is not None:
            stream._abort()

    def spill_all(self) -> None:
        """Move everything still pending into the journal (exit with the database away)."""
        self._drop_stream()
        if self.pending:
            chunk = list(self.pending)
            self.pending.clear()
            self.journal.append(chunk)
            self.counters.spilled += len(chunk)

    def flush(self, full: bool = True) -> bool:
        """Write the journal, then memory. `full=False` leaves a partial last batch in memory
        unless it is old enough. False if the database was unavailable (nothing lost)."""
        try:
            if self.journal.entries:
                self._drop_stream()  # (never open then: the journal goes first)
            while self.journal.entries:
                segment = self.journal.oldest()
                # a previous run may have committed part of it and died before removing it
                self.journal.skip(segment, self.sink.journal_done(segment.name))
                for chunk in self.journal.read(segment, self.config.batch_rows):
                    mark = (segment.name, self.journal.done(segment) + len(chunk))
                    self._write(chunk, journal_mark=mark)
                    self.counters.journal_replayed += len(chunk)
                self.journal.remove(segment)
            while self.pending:
                if not full and len(self.pending) < self.config.batch_rows:
                    oldest = self._oldest_at
                    age = 0.0 if oldest is None else self.clock() - oldest
                    if age < self.config.batch_seconds:
                        break
                n = min(len(self.pending), self.config.batch_rows)
                chunk = list(islice(self.pending, n))
                self._write(chunk)
                for _ in range(n):
                    self.pending.popleft()
                self._oldest_at = self.clock() if self.pending else None
        except (DatabaseUnavailable, DatabaseError) as exc:
            # DatabaseError: reachable but not usable (e.g. not migrated yet): keep trying too
            self._mark_down(str(exc))
            return False
        self._mark_up()
        return True

    def _write(self, entries: list[Entry], journal_mark: tuple[str, int] | None = None) -> None:
        stream, self._stream = self._stream, None
        sent, self._streamed = self._streamed, 0
        if stream is not None:  # its first `sent` entries went ahead (never from the journal)
            _send(stream, entries[sent:])
            result = stream.commit()
            batch = stream.batch
        else:
            batch = Batch(journal_mark=journal_mark)
            for entry in entries:
                batch.add(entry)
            result = self.sink.write(batch)
        self.counters.count(result)
        if self.on_commit is not None:
            self.on_commit(batch, result)

    def _mark_down(self, reason: str) -> None:
        now = self.clock()
        if self.db_up is not False:
            self.counters.outages += 1
            log.warning(
                "database unavailable, buffering (memory up to %d entries, then journal %s): %s",
                self.config.memory_rows,
                self.journal.directory,
                reason,
            )
        self.db_up = False
        self.last_error = reason
        self._next_try = now + self._delay
        self._delay = min(self._delay * 2, self.config.retry_max)

    def _mark_up(self) -> None:
        if self.db_up is False:
            log.warning(
                "database is back; backlog written (%d from the journal so far)",
                self.counters.journal_replayed,
            )
        self.db_up = True
        self.last_error = ""
        self._next_try = 0.0
        self._delay = self.config.retry_initial

    def _spill(self) -> None:
        """Move the oldest entries to the journal, down to half the memory bound."""
        self._drop_stream()
        keep = self.config.memory_rows // 2
        n = len(self.pending) - keep
        chunk = [self.pending.popleft() for _ in range(n)]
        self.journal.append(chunk)
        self.counters.spilled += n
        if self.counters.spilled == n:
            log.warning(
                "memory bound of %d entries reached; spilling to the journal in %s",
                self.config.memory_rows,
                self.journal.directory,
            )

    def close(self, *, timeout: float = 10.0) -> bool:
        """Flush everything, retrying for up to `timeout` s; then whatever is left goes to
        the journal (replayed on the next start). True when all of it is in the database."""
        deadline = self.clock() + timeout
        while True:
            self._next_try = 0.0
            if self.flush(full=True):
                self.sink.close()
                return True
            if self.clock() >= deadline:
                break
            time.sleep(min(0.5, max(0.0, deadline - self.clock())))
        self.spill_all()
        log.warning(
            "database still unavailable at exit: %d entries kept in the journal %s",
            self.journal.entries,
            self.journal.directory,
        )
        self.sink.close()
        return False

    def summary(self) -> dict[str, Any]:
        c = self.counters
        return {
            "written": c.written,
            "duplicates": c.duplicates,
            "rejected": c.rejected,
            "pending": len(self.pending),
            "journal": self.journal.entries,
            "db": "up" if self.db_up else ("down" if self.db_up is False else "unknown"),
        }


# --------------------------------------------------------------------------- bulk loads


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
        self.conn = sink._open()
        self.cur = self.conn.cursor()
        self.new_items: dict[str, int] = {}
        self.direct = sink._expect_no_duplicates
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
        self._copy: psycopg.Copy | None = None
        self._refused: psycopg.Error | None = None
        self._rest: tuple[datetime | None, dict[str, int]] = (None, {})  # see _finish

    def add(self, readings: list[Reading]) -> None:
        start = len(self.batch.readings)
        self.batch.readings.extend(readings)
        if self._refused is None:
            self._guard(self._stream, start)

    def add_other(self, entry: Rejection | FeedTransition) -> None:
        self.batch.add(entry)

    def commit(self) -> BatchResult:
        result = BatchResult()
        if self._refused is None:
            self._guard(self._end_segment, len(self.batch.readings))
        if self._refused is None:
            self._guard(self._finish, result)
        if self._refused is None:
            self._guard(lambda _: self._tx.close(), None)  # COMMIT
        if self._refused is not None:
            self._abort()
            return self.sink.refused(self.batch, self._refused)
        return self.sink._committed(result, self.new_items, *self._rest)

    # -- inside ---------------------------------------------------------------------------

    def _guard(self, step: Callable[[Any], None], arg: Any) -> None:
        try:
            step(arg)
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            self._abort()
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
            self.new_items.update(self.sink._ensure_channels(self.cur, readings, self.new_items))
        if self._copy is None:
            self._open = ExitStack()
            if self.direct:
                self._open.enter_context(self.conn.transaction())  # savepoint
            table = "telemetry_reading" if self.direct else "ingest_stage"
            self._copy = self._open.enter_context(_open_copy(self.cur, table))
            self._segment = start
        channels = (
            {**self.sink.channels, **self.new_items} if self.new_items else self.sink.channels
        )
        _write_rows(self._copy, readings, channels, direct=self.direct)

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
            with _suppress_all():
                opened.__exit__(type(exc), exc, exc.__traceback__)

    def _to_staging(self, _: None) -> None:
        """A duplicate failed the direct COPY: the rolled-back segment's readings and the
        rest of the batch go through the staging table."""
        self.direct = False
        rest = self.batch.readings[self._segment :]
        self.new_items.update(self.sink._ensure_channels(self.cur, rest, self.new_items))
        self.sink._copy(self.cur, "ingest_stage", rest, {**self.sink.channels, **self.new_items})
        self.staged += len(rest)
        self._segment = len(self.batch.readings)

    def _finish(self, result: BatchResult) -> None:
        inserted = 0
        if self.staged:
            self.cur.execute(_INSERT_STAGED + " ON CONFLICT DO NOTHING")
            inserted = self.cur.rowcount
        # as DatabaseSink: after a batch with duplicates, stay on the staging path until
        # a batch comes without any
        self.sink._expect_no_duplicates = inserted == self.staged
        result.written = self.written + inserted
        result.duplicates = len(self.batch.readings) - result.written
        result.new_channels = len(self.new_items)
        self._rest = self.sink._write_rest(self.cur, self.batch, result)

    def _abort(self) -> None:
        if self._open is not None:
            self._close_segment(RuntimeError("batch aborted"))
        with _suppress_all():
            self._tx.__exit__(RuntimeError, RuntimeError("batch aborted"), None)  # ROLLBACK


def _send(stream: StreamedBatch, entries: list[Entry]) -> None:
    """Entries into an open batch, in order, each run of readings in one go."""
    run: list[Reading] = []
    for entry in entries:
        if type(entry) is Reading:
            run.append(entry)
            continue
        if run:
            stream.add(run)
            run = []
        stream.add_other(entry)  # type: ignore[arg-type]
    if run:
        stream.add(run)


class BulkLoader:
    """Bulk path (replay, benchmarks): readings stream into the database as they come
    (`StreamedBatch`), so the server stores them while the caller validates the next ones;
    a batch commits every `batch_rows` readings. No outage handling: a
    `DatabaseUnavailable` stops the load and is raised by `add`, `extend` or `close`
    (rerun it: rows already written are skipped as duplicates)."""

    CHUNK = 1000  # readings added one by one are sent this many at a time

    def __init__(
        self,
        sink: DatabaseSink,
        batch_rows: int = 20_000,
        on_commit: Callable[[Batch, BatchResult], None] | None = None,
    ) -> None:
        self.sink = sink
        self.batch_rows = batch_rows
        self.on_commit = on_commit
        self.counters = WriterCounters()
        self._stream: StreamedBatch | None = None
        self._held: list[Reading] = []  # added one by one, not sent yet

    def add(self, entry: Entry) -> None:
        if type(entry) is Reading:
            self._held.append(entry)
            if len(self._held) >= self.CHUNK:
                self._send()
        else:
            self._open().add_other(entry)  # type: ignore[arg-type]

    def extend(self, entries: Iterable[Entry]) -> None:
        for entry in entries:
            if type(entry) is Reading:
                self._held.append(entry)
            else:
                self._open().add_other(entry)  # type: ignore[arg-type]
        self._send()

    def _open(self) -> StreamedBatch:
        if self._stream is None:
            self._stream = StreamedBatch(self.sink)
        return self._stream

    def _send(self) -> None:
        held, self._held = self._held, []
        while held:
            stream = self._open()
            room = self.batch_rows - len(stream.batch.readings)
            stream.add(held[:room])
            held = held[room:]
            if len(stream.batch.readings) >= self.batch_rows:
                self.submit()

    def submit(self) -> None:
        """Commit the batch being written (with what is held)."""
        if self._held:
            self._send()
        stream, self._stream = self._stream, None
        if stream is None:
            return
        result = stream.commit()
        self.counters.count(result)
        if self.on_commit is not None:
            self.on_commit(stream.batch, result)

    def wait(self) -> None:
        """Commit everything added so far."""
        self.submit()

    def close(self) -> WriterCounters:
        """Write the rest; raises the load's error, if any."""
        try:
            self.submit()
        finally:
            if self._stream is not None:
                self._stream._abort()
                self._stream = None
            self.sink.close()
        return self.counters
