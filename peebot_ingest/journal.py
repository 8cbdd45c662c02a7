"""The on-disk spill journal: what the writer could not put in the database yet.

Past its memory bound, the writer moves its oldest entries here as one segment file (JSON
lines, written to a temporary name, fsynced, then renamed, so a segment is either whole or
absent). Segments are written back oldest first when the database returns and deleted once
all of their entries are committed. A segment left by a previous run (the database was
still away at exit) is picked up at the next start.

Replaying a segment twice (a crash between a commit and the segment's deletion) writes
nothing twice: each chunk written back commits, in the same transaction, a mark of how far
into its segment the database has got (`processor_state` 'ingest', `journal`), and a
segment taken up again skips what its mark covers. Segment names are unique (a sequence
number and a random token), so a mark never matches another segment. Readings would be
deduplicated by the database anyway; rejections and feed transitions have no natural key.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from peebot_ingest.records import (
    Entry,
    FeedTransition,
    Rejection,
    ValidatedReading,
    micros_since_epoch,
    utc_from_micros,
)
from peebot_ingest.storable import clean_text

_SUFFIX = ".jsonl"


def encode_entry(entry: Entry) -> str:
    """One journal line (JSON, short keys) of a writer entry."""
    if isinstance(entry, ValidatedReading):
        obj: dict[str, Any] = {
            "k": "r",
            "i": entry.item_id,
            "t": entry.ts_us,
            "v": entry.value,
            "c": entry.status_class,
            "d": entry.calibrated_data,
            "e": entry.event_id.hex(),
            "a": entry.received_at,
            "m": entry.metadata,
            "s": entry.source,
        }
    elif isinstance(entry, Rejection):
        obj = {
            "k": "x",
            "s": entry.source,
            "i": entry.item_id,
            "why": entry.reason,
            "p": entry.raw_payload,
            "a": entry.received_at,
        }
    elif isinstance(entry, FeedTransition):
        obj = {
            "k": "f",
            "kind": entry.kind,
            "state": entry.state,
            "a": entry.changed_at,
            "t": None if entry.feed_ts is None else micros_since_epoch(entry.feed_ts),
            "detail": entry.detail,
        }
    else:
        raise TypeError(f"cannot journal {type(entry).__name__}")
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def decode_entry(line: str) -> Entry:
    """The entry of a journal line; ValueError, KeyError or TypeError if unreadable."""
    obj = json.loads(line)
    kind = obj["k"]
    if kind == "r":
        return ValidatedReading(
            obj["i"],
            int(obj["t"]),
            float(obj["v"]),
            obj["c"],
            obj["d"],
            bytes.fromhex(obj["e"]),
            float(obj["a"]),
            obj["m"],
            obj["s"],
        )
    if kind == "x":
        return Rejection(obj["s"], obj["i"], obj["why"], obj["p"], float(obj["a"]))
    if kind == "f":
        ts = None if obj["t"] is None else utc_from_micros(obj["t"])
        return FeedTransition(obj["kind"], obj["state"], float(obj["a"]), ts, obj["detail"])
    raise ValueError(f"unknown journal entry kind {kind!r}")


class Journal:
    """The segment files in one folder, and how much of each this run has committed."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self._counts: dict[Path, int] = {}
        self._done: dict[Path, int] = {}  # entries of a segment already committed (this run)
        self._seq = 0
        if self.directory.is_dir():
            for path in self.segments():
                with path.open("rb") as fh:
                    self._counts[path] = sum(1 for line in fh if line.strip())
                self._seq = max(self._seq, _seq_of(path))

    def segments(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob(f"*{_SUFFIX}"))

    @property
    def entries(self) -> int:
        return sum(self._counts.values()) - sum(self._done.values())

    def append(self, entries: list[Entry]) -> Path:
        """Write entries as a new segment; returns once it is on disk."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self._seq += 1
        path = self.directory / f"{self._seq:012d}-{uuid.uuid4().hex[:12]}{_SUFFIX}"
        tmp = path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for entry in entries:
                fh.write(encode_entry(entry))
                fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(self.directory)
        self._counts[path] = len(entries)
        return path

    def oldest(self) -> Path:
        return min(self._counts)

    def skip(self, path: Path, done: int) -> None:
        """The database already holds the first `done` entries of this segment."""
        self._done[path] = max(self._done.get(path, 0), min(done, self._counts.get(path, 0)))

    def done(self, path: Path) -> int:
        """Entries of this segment committed so far (as far as this run knows)."""
        return self._done.get(path, 0)

    def read(self, path: Path, chunk_size: int) -> Iterator[list[Entry]]:
        """Chunks of a segment not yet committed. Resume the iterator only after the chunk
        is committed: that is what marks it done."""
        skip = self._done.get(path, 0)
        chunk: list[Entry] = []
        with path.open(encoding="utf-8", errors="replace") as fh:
            for n, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                if skip:
                    skip -= 1
                    continue
                try:
                    entry = decode_entry(line)
                except (ValueError, KeyError, TypeError) as exc:
                    entry = Rejection(
                        "journal",
                        None,
                        f"unreadable journal line {path.name}:{n}: {type(exc).__name__}: {exc}",
                        {"line": clean_text(line.rstrip("\n"))},
                        time.time(),
                    )
                chunk.append(entry)
                if len(chunk) >= chunk_size:
                    yield chunk
                    self._done[path] = self._done.get(path, 0) + len(chunk)
                    chunk = []
        if chunk:
            yield chunk
            self._done[path] = self._done.get(path, 0) + len(chunk)

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        self._counts.pop(path, None)
        self._done.pop(path, None)


def _seq_of(path: Path) -> int:
    try:
        return int(path.stem.split("-", 1)[0])
    except ValueError:
        return 0


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
