"""`BufferedWriter`: the single-threaded heart of the daemon's writer thread.

It collects entries, flushes them by size or age, survives database outages by buffering in
memory and spilling to the on-disk `Journal` past a bound, and writes the journal back first
when the database returns, so the order of writes (and the watermark) stays monotonic
(docs/ARCHITECTURE.md, "Ingest").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from peebot_ingest.batch import Batch, BatchResult, WriterCounters
from peebot_ingest.db import DatabaseError
from peebot_ingest.journal import Journal
from peebot_ingest.records import Entry
from peebot_ingest.sink import DatabaseSink, DatabaseUnavailable
from peebot_ingest.streamed_batch import StreamedBatch

log = logging.getLogger("peebot.ingest.writer")


@dataclass
class WriterConfig:
    # a batch commits at this many entries, whichever of the ages below comes first; under
    # a backlog, bigger batches spend less of the time on commits, when the server waits
    # (bench/ingest.py part 1, --batch-rows, with the compiled loops: writer / COPY 0.88-0.89
    # with 20,000, 0.88-0.91 with 50,000, 0.91-0.92 with 100,000; earlier, 5,000 gave 0.57)
    batch_rows: int = 50_000
    # while the writer keeps up (its input drained), a batch commits at this age at the
    # latest, and as soon as the input is drained once `idle_commit_seconds` have passed
    # since the previous commit (0: off): receipt to commit then takes about half that gap
    # plus the commit. bench/ingest.py part (3), 1,000 updates/s: p99 218 ms with a fixed
    # 0.2 s age; see the README, "Ingest performance", for the figures with these
    batch_seconds: float = 0.05
    idle_commit_seconds: float = 0.02
    # with more input waiting (a backlog), only size or this age commits a batch, so a
    # backlog is written in big batches
    backlog_seconds: float = 1.0
    memory_rows: int = 100_000  # twice a batch: a full batch never spills
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
        self.pending: list[Entry] = []  # oldest first
        self.counters = WriterCounters()
        self.db_up: bool | None = None
        self.last_error = ""
        self._oldest_at: float | None = None  # monotonic time the oldest pending entry arrived
        self._last_commit = -float("inf")  # monotonic time of the previous commit
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

    def due(self, more_waiting: bool = False) -> bool:
        """A batch is due: by size; by age (`batch_seconds`, or `backlog_seconds` with
        `more_waiting`); or, with the input drained (not `more_waiting`), once
        `idle_commit_seconds` have passed since the previous commit."""
        if not self.pending and not self.journal.entries:
            return False
        if self.clock() < self._next_try:
            return False
        if self.journal.entries or len(self.pending) >= self.config.batch_rows:
            return True
        return self._age_due(self.clock(), more_waiting) <= 0.0

    def _age_due(self, now: float, more_waiting: bool) -> float:
        """Seconds until the pending entries are due by age (<= 0: due now)."""
        if self._oldest_at is None:
            return 0.0
        if more_waiting:
            return self._oldest_at + self.config.backlog_seconds - now
        by_age = self._oldest_at + self.config.batch_seconds - now
        gap = self.config.idle_commit_seconds
        if gap > 0:
            return min(by_age, self._last_commit + gap - now)
        return by_age

    def seconds_until_due(self) -> float:
        """How long the caller may block waiting for input before a flush is due (with its
        input drained, as it is while it blocks)."""
        now = self.clock()
        if now < self._next_try:
            return self._next_try - now
        if not self.pending and not self.journal.entries:
            return self.config.batch_seconds
        if self.journal.entries:
            return 0.0
        return max(0.0, self._age_due(now, more_waiting=False))

    def maybe_flush(self, more_waiting: bool = False) -> bool:
        """Write what is due (else send a backlog ahead); False if the database was
        unavailable. `more_waiting`: the caller has more input queued (a backlog)."""
        if not self.due(more_waiting):
            return self._send_ahead()
        return self.flush(full=False, more_waiting=more_waiting)

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
            self._stream.send(self.pending[self._streamed : end])
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
            stream.abort()

    def spill_all(self) -> None:
        """Move everything still pending into the journal (exit with the database away)."""
        self._drop_stream()
        if self.pending:
            chunk = list(self.pending)
            self.pending.clear()
            self.journal.append(chunk)
            self.counters.spilled += len(chunk)

    def flush(self, full: bool = True, more_waiting: bool = False) -> bool:
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
                partial = len(self.pending) < self.config.batch_rows
                if not full and partial and self._age_due(self.clock(), more_waiting) > 0.0:
                    break
                n = min(len(self.pending), self.config.batch_rows)
                self._write(self.pending[:n])
                del self.pending[:n]
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
            stream.send(entries[sent:])
            result = stream.commit()
            batch = stream.batch
        else:
            batch = Batch(journal_mark=journal_mark)
            for entry in entries:
                batch.add(entry)
            result = self.sink.write(batch)
        self.counters.count(result)
        self._last_commit = self.clock()
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
        chunk = self.pending[:n]
        del self.pending[:n]
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
