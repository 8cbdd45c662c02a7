"""The feed client's own process and its channel to the writer, with the real Lightstreamer
client against the project's TLCP server and a real PostgreSQL: the client process killed,
the writer process killed, the channel full (docs/ARCHITECTURE.md, "Ingest")."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from peebot_sim.feeds import CounterFeed, ScriptedFeed
from tests.support.ingest_daemon import db_rows, running_daemon, sent_rows
from tests.support.ingest_process import ingest_env
from tests.support.tlcp_harness import run_server_in_thread
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow


def counter_values(url: str) -> list[int]:
    return [int(r[2]) for r in db_rows(url, exclude_time=True)]


def test_client_process_killed_is_said_and_restarted_nothing_written_twice(
    db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="peebot.ingest.feed")
    feed = CounterFeed(5, rate=100, count=1500)
    log = tmp_path / "sent.jsonl"
    with (
        run_server_in_thread(feed, sent_log=log) as srv,
        running_daemon(db_url, srv.url, tmp_path) as daemon,
    ):
        wait_until(lambda: len(counter_values(db_url)) >= 100, timeout=30)
        assert daemon.feed is not None
        first = daemon.feed.pid
        assert first is not None and first != os.getpid()
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: daemon.feed.restarts == 1, timeout=20)  # type: ignore[union-attr]
        assert daemon.feed.pid not in (None, first)
        wait_until(feed.finished.is_set, timeout=60)
        # the new client's snapshot and stream bring every item's last value
        last = set(range(1500 - 5, 1500))
        wait_until(lambda: last <= set(counter_values(db_url)), timeout=30)
        wait_until(lambda: daemon.state.connection.startswith("CONNECTED"), timeout=10)
    rows = db_rows(db_url)
    assert len(rows) == len(set(rows))  # nothing written twice
    assert set(db_rows(db_url, exclude_time=True)) <= sent_rows(log, exclude_time=True)
    said = [r.getMessage() for r in caplog.records if r.name == "peebot.ingest.feed"]
    died = [m for m in said if "died" in m]
    assert died == [
        f"feed client process {first} died (killed by SIGKILL); starting a new one, which "
        "subscribes again with a snapshot"
    ]


def test_a_stop_while_the_dead_client_is_being_replaced_still_stops_the_daemon(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`stop` (main thread) can land after the dead child is reaped and before its successor
    is started, when there is no child to tell. On a busy machine that window is wide; it is
    made certain here by stopping from inside the restart."""
    feed = CounterFeed(5, rate=100, count=100_000)
    with (
        run_server_in_thread(feed) as srv,
        running_daemon(db_url, srv.url, tmp_path) as daemon,
    ):
        wait_until(lambda: len(counter_values(db_url)) >= 50, timeout=60)
        child = daemon.feed
        assert child is not None and child.pid is not None
        first, start = child.pid, child.start

        def stop_then_start() -> None:
            daemon.stop()
            start()

        monkeypatch.setattr(child, "start", stop_then_start)
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: child.restarts == 1, timeout=60)
        assert child.pid not in (None, first)
    # running_daemon's exit has waited for the daemon's thread to end: it did
    rows = db_rows(db_url)
    assert len(rows) == len(set(rows))


def test_channel_full_blocks_the_client_and_loses_nothing(
    db_url: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    feed = ScriptedFeed()
    start = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)
    items = ["NODE3000005", "NODE3000004", "NODE3000008", "NODE3000009"]
    n = 6000
    err = ""
    with (
        run_server_in_thread(feed) as srv,
        running_daemon(db_url, srv.url, tmp_path, queue_size=10) as daemon,
    ):
        wait_until(lambda: daemon.state.connection.startswith("CONNECTED:WS"), timeout=30)
        feed.publish_value("TIME_000002", "2026", start)
        feed.publish_value(items[0], "-1", start)
        wait_until(lambda: len(db_rows(db_url, exclude_time=True)) == 1, timeout=20)
        with psycopg.connect(db_url) as lock:
            # the writer stalls on its next COPY until this transaction ends
            lock.execute("LOCK TABLE telemetry_reading IN ACCESS EXCLUSIVE MODE")
            for i in range(n):
                feed.publish_value(items[i % 4], str(i), start + timedelta(milliseconds=i + 1))

            def writer_waits() -> bool:
                with psycopg.connect(db_url, autocommit=True) as conn:
                    row = conn.execute(
                        "SELECT count(*) FROM pg_locks WHERE NOT granted "
                        "AND relation = 'telemetry_reading'::regclass"
                    ).fetchone()
                return bool(row and row[0])

            wait_until(writer_waits, timeout=30)

            def client_waits() -> bool:
                nonlocal err
                err += capfd.readouterr().err
                return "feed channel full" in err

            wait_until(client_waits, timeout=60)  # the child says so on its stderr
            lock.rollback()
        wait_until(lambda: len(db_rows(db_url, exclude_time=True)) >= n + 1, timeout=60)
        assert daemon.feed is not None
        wait_until(lambda: daemon.feed.stalls > 0, timeout=10)  # type: ignore[union-attr]
        assert daemon.feed.restarts == 0
    values = sorted(int(float(r[2])) for r in db_rows(db_url, exclude_time=True))
    assert values == list(range(-1, n))  # every one, once


class DaemonProcess:
    """`peebot ingest` as a subprocess with JSON logs."""

    def __init__(
        self, url: str, feed_url: str, tmp: Path, name: str, *, own_group: bool = False
    ) -> None:
        self.log_path = tmp / f"{name}.log"
        env = ingest_env(url, feed_url, tmp)
        self.out = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "peebot.cli", "ingest"],
            env=env,
            cwd=tmp,
            stdout=self.out,
            stderr=subprocess.STDOUT,
            start_new_session=own_group,  # as `peebot up` starts it
        )

    def lines(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    out.append(json.loads(line))
        return out

    def summary(self) -> dict[str, Any]:
        found = [x for x in self.lines() if x.get("event") in ("ingest summary", "ingest final")]
        return found[-1] if found else {}

    def children(self) -> list[int]:
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(p) for p in path.read_text().split()]


def alive(pid: int) -> bool:
    """Running (a zombie nobody reaps has exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@contextlib.contextmanager
def daemon_process(
    url: str, feed_url: str, tmp: Path, name: str, *, own_group: bool = False
) -> Iterator[DaemonProcess]:
    daemon = DaemonProcess(url, feed_url, tmp, name, own_group=own_group)
    try:
        yield daemon
    finally:
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait(30)
        daemon.out.close()


def test_writer_process_killed_the_client_exits_and_the_next_start_dedupes_the_snapshot(
    db_url: str, tmp_path: Path
) -> None:
    feed = CounterFeed(5, rate=200, count=400, time_ticks=False)
    with run_server_in_thread(feed) as srv:
        with daemon_process(db_url, srv.url, tmp_path, "first") as first:
            wait_until(lambda: first.summary().get("connection", "").startswith("CONNECTED"), 60)
            wait_until(feed.finished.is_set, timeout=60)
            wait_until(lambda: 399 in counter_values(db_url), timeout=30)
            children = first.children()  # the client (and multiprocessing's helper, if any)
            cmdlines = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in children]
            assert sum(b"spawn_main" in c for c in cmdlines) == 1, cmdlines
            first.proc.send_signal(signal.SIGKILL)
            first.proc.wait(30)
            for child in children:  # none lingers
                wait_until(lambda: not alive(child), timeout=30)  # noqa: B023
        written = counter_values(db_url)
        with daemon_process(db_url, srv.url, tmp_path, "second") as second:
            # the new subscription's snapshot repeats each item's last value: deduped
            wait_until(lambda: (second.summary().get("duplicates") or 0) >= 5, timeout=60)
            second.proc.send_signal(signal.SIGTERM)
            assert second.proc.wait(60) == 0
            final = second.summary()
    assert final["event"] == "ingest final" and final["written"] == 0
    values = counter_values(db_url)
    assert sorted(values) == sorted(written)  # nothing written twice, nothing new
    assert len(values) == len(set(values)) and max(values) == 399


def test_sigterm_to_the_process_group_stops_both_and_writes_all_received(
    db_url: str, tmp_path: Path
) -> None:
    # `peebot up` stops the daemon with SIGTERM to its process group, which holds the client
    # too: the client must not die first, losing what it holds, nor be restarted
    feed = CounterFeed(5, rate=300, count=100_000, time_ticks=False)  # still sending at the end
    with (
        run_server_in_thread(feed) as srv,
        daemon_process(db_url, srv.url, tmp_path, "group", own_group=True) as daemon,
    ):
        wait_until(lambda: len(counter_values(db_url)) >= 300, timeout=60)
        children = daemon.children()
        os.killpg(daemon.proc.pid, signal.SIGTERM)
        assert daemon.proc.wait(60) == 0
        for child in children:
            wait_until(lambda: not alive(child), timeout=30)  # noqa: B023
        final = daemon.summary()
    assert final["event"] == "ingest final" and final["feed_restarts"] == 0
    assert final["received"] > 0
    assert final["written"] + final["duplicates"] + final["rejected"] == final["received"]
    values = counter_values(db_url)
    assert len(values) == len(set(values))
    said = [str(x.get("event")) for x in daemon.lines() if x.get("logger") == "peebot.ingest.feed"]
    assert not [line for line in said if "feed client process" in line]  # neither died nor cut
