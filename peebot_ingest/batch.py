"""A batch: what one database transaction writes, and what it did.

Every write path (the daemon's `BufferedWriter`, `BulkLoader` for replays, `peebot inject`)
commits `Batch`es through the `DatabaseSink`, one transaction each, and counts the
`BatchResult`s in `WriterCounters`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from peebot_ingest.records import Entry, FeedTransition, Rejection, ValidatedReading


@dataclass
class Batch:
    readings: list[ValidatedReading] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    transitions: list[FeedTransition] = field(default_factory=list)
    # written back from the journal: (segment name, entries of it committed with this batch)
    journal_mark: tuple[str, int] | None = None

    def add(self, entry: Entry) -> None:
        if isinstance(entry, ValidatedReading):
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
