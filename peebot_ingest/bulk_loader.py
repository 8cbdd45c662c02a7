"""`BulkLoader`: the bulk path (replay, benchmarks).

Readings stream into the database as they come (`StreamedBatch`), so the server stores them
while the caller validates the next ones; a batch commits every `batch_rows` readings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from peebot_ingest.batch import Batch, BatchResult, WriterCounters
from peebot_ingest.records import Entry, ValidatedReading
from peebot_ingest.sink import DatabaseSink
from peebot_ingest.streamed_batch import StreamedBatch


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
        self._held: list[ValidatedReading] = []  # added one by one, not sent yet

    def add(self, entry: Entry) -> None:
        if type(entry) is ValidatedReading:
            self._held.append(entry)
            if len(self._held) >= self.CHUNK:
                self._send()
        else:
            self._open().add_other(entry)  # type: ignore[arg-type]

    def extend(self, entries: Iterable[Entry]) -> None:
        for entry in entries:
            if type(entry) is ValidatedReading:
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
                self._stream.abort()
                self._stream = None
            self.sink.close()
        return self.counters
