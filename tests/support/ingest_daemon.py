"""The ingest daemon run on a thread of the test, and the rows to compare: what the database
holds, and what the project's TLCP server says it sent (its sent log)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from peebot_ingest.buffered_writer import WriterConfig
from peebot_ingest.daemon import DaemonConfig, IngestDaemon
from peebot_iss.timestamps import decode_timestamp, infer_year
from tests.support.tlcp_harness import read_sent_log

Row = tuple[str, datetime, float]


def db_rows(url: str, *, exclude_time: bool = False) -> list[Row]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT c.item_id, r.ts, r.value FROM telemetry_reading r "
            "JOIN telemetry_channel c ON c.id = r.channel_id ORDER BY r.ts, c.item_id, r.value"
        ).fetchall()
    return [r for r in rows if not (exclude_time and r[0].startswith("TIME_"))]


def sent_rows(log: Path, *, exclude_time: bool = False) -> set[Row]:
    out: set[Row] = set()
    now = datetime.now(UTC)
    for rec in read_sent_log(log):
        fields = rec["fields"]
        if exclude_time and rec["item"].startswith("TIME_"):
            continue
        hours = float(fields["TimeStamp"])
        out.add(
            (rec["item"], decode_timestamp(hours, infer_year(hours, now)), float(fields["Value"]))
        )
    return out


@contextlib.contextmanager
def running_daemon(
    url: str, feed_url: str, tmp: Path, queue_size: int = 50_000, **writer: Any
) -> Iterator[IngestDaemon]:
    config = DaemonConfig(
        database_url=url,
        feed_url=feed_url,
        fast_reconnect=True,
        clock_check=False,
        journal_dir=tmp / "journal",
        summary_seconds=1.0,
        queue_size=queue_size,
        writer=WriterConfig(**{"batch_rows": 500, "batch_seconds": 0.05, **writer}),
    )
    daemon = IngestDaemon(config)
    thread = threading.Thread(target=daemon.run, kwargs={"install_signals": False}, daemon=True)
    thread.start()
    try:
        yield daemon
    finally:
        daemon.stop()
        thread.join(30)
        assert not thread.is_alive(), "daemon did not stop"
