"""End to end: the real Lightstreamer client against the project's TLCP server, the daemon,
and a real PostgreSQL. Outages of the feed (server killed) and of the database (a proxy that
drops connections), and SIGTERM to the daemon process."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from peebot_iss.timestamps import decode_timestamp, format_timestamp
from peebot_sim.feeds import CounterFeed, ScriptedFeed
from tests.support.ingest_daemon import Row, db_rows, running_daemon, sent_rows
from tests.support.ingest_process import ingest_env
from tests.support.tcp_proxy import TcpProxy
from tests.support.tlcp_harness import SubprocessServer, read_sent_log, run_server_in_thread
from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]

def test_n_updates_served_give_exactly_n_rows(db_url: str, tmp_path: Path) -> None:
    feed = ScriptedFeed()
    with run_server_in_thread(feed) as srv, running_daemon(db_url, srv.url, tmp_path) as daemon:
        wait_until(srv.has_subscription, timeout=60)  # what is published from now on is served
        start = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)
        # the year, as ISS Live announces it: without it the daemon takes the year from the
        # clock, and from late November on a 3 February TimeStamp reads as next year's
        feed.publish_value("TIME_000002", "2026", start)
        sent: list[Row] = []
        items = ["NODE3000005", "NODE3000004", "NODE3000008", "NEWITEM_7"]
        for i in range(400):
            when = start + timedelta(seconds=i)
            item = items[i % len(items)]
            if item == "NEWITEM_7":
                continue  # not subscribed: the server never sends it
            fields = feed.publish_value(item, str(i * 0.5), when)
            hours = float(fields["TimeStamp"])
            sent.append((item, decode_timestamp(hours, 2026), i * 0.5))
        feed.publish_value("NODE3000005", "not-a-number", start)  # rejected, not dropped
        wait_until(lambda: len(db_rows(db_url, exclude_time=True)) >= len(sent), timeout=60)
        wait_until(lambda: daemon.writer.counters.rejected >= 1, timeout=60)
    rows = db_rows(db_url, exclude_time=True)
    assert sorted(rows) == sorted(sent)
    assert rows[0][1].tzinfo is not None
    with psycopg.connect(db_url) as conn:
        reason = conn.execute("SELECT reason FROM rejected_update").fetchone()[0]
        states = conn.execute("SELECT kind, state FROM feed_status ORDER BY id").fetchall()
        watermark = conn.execute(
            "SELECT last_processed_at FROM processor_state WHERE processor_name = 'ingest'"
        ).fetchone()[0]
    assert "Value" in reason
    assert ("connection", "CONNECTED:WS-STREAMING") in states
    assert watermark == max(r[1] for r in sent)


def _max_seq(log: Path) -> int:
    seqs = [
        int(r["fields"]["Value"]) for r in read_sent_log(log) if not r["item"].startswith("TIME_")
    ]
    return max(seqs, default=-1)


def test_server_killed_and_restarted_nothing_missing_no_duplicates(
    db_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "sent.jsonl"
    args = [
        "--script",
        "counter",
        "--items",
        "5",
        "--rate",
        "200",
        "--count",
        "1600",
        "--sent-log",
        str(log),
        "--keepalive-ms",
        "1000",
    ]
    # the daemon first (its client starts in a process of its own, which takes a while on a
    # loaded machine), then the server: the counter must not be over before the kill
    srv = SubprocessServer(args, env={"PYTHONPATH": str(REPO)})
    with running_daemon(db_url, srv.url, tmp_path) as daemon, contextlib.ExitStack() as stop:
        srv.start()
        stop.callback(srv.terminate)
        wait_until(lambda: len(db_rows(db_url, exclude_time=True)) >= 400, timeout=60)
        srv.kill()  # SIGKILL: no END; the client notices through its keepalive timers
        wait_until(lambda: daemon.state.connection.startswith("DISCONNECTED"), timeout=60)
        srv.start()  # same port; the counter resumes after the last logged sequence number
        wait_until(lambda: _max_seq(log) == 1599, timeout=60)
        wait_until(lambda: set(db_rows(db_url)) >= sent_rows(log), timeout=60)
        sessions = {r["session"] for r in read_sent_log(log)}
    rows = db_rows(db_url)
    assert len(sessions) >= 2, "the client did not reconnect to the restarted server"
    assert len(rows) == len(set(rows))  # nothing written twice
    # every counter update the server sent is stored exactly once ...
    assert set(db_rows(db_url, exclude_time=True)) == sent_rows(log, exclude_time=True)
    # ... and nothing is invented (TIME_000001 ticks keep flowing while the test stops the
    # client, so the last tick or two may have been sent after it went away)
    assert set(rows) <= sent_rows(log)
    assert max(int(r[2]) for r in rows if not r[0].startswith("TIME_")) == 1599


def test_snapshot_resent_on_reconnect_adds_no_rows(db_url: str, tmp_path: Path) -> None:
    feed = ScriptedFeed()
    items = ["NODE3000005", "NODE3000004", "NODE3000008", "TIME_000001"]
    start = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)
    with run_server_in_thread(feed) as srv, running_daemon(db_url, srv.url, tmp_path) as daemon:
        wait_until(srv.has_subscription, timeout=60)
        for i in range(40):
            feed.publish_value(items[i % 4], f"{i}.25", start.replace(second=i))
        wait_until(lambda: len(db_rows(db_url)) == 40, timeout=60)
        sessions_before = daemon.state.connection
        srv.restart()  # END,48, same port, same state: the client reconnects, gets a snapshot
        wait_until(lambda: daemon.writer.counters.duplicates >= 4, timeout=60)
        feed.publish_value("NODE3000005", "99", start.replace(minute=59))
        wait_until(lambda: len(db_rows(db_url)) == 41, timeout=60)
        assert sessions_before.startswith("CONNECTED")
    with psycopg.connect(db_url) as conn:
        states = [
            r[0]
            for r in conn.execute(
                "SELECT state FROM feed_status WHERE kind = 'connection' ORDER BY id"
            )
        ]
    assert len(db_rows(db_url)) == 41
    assert daemon.writer.counters.duplicates == 4  # one snapshot update per item, all known
    assert states.count("CONNECTED:WS-STREAMING") >= 2


def test_database_outage_midstream_every_update_once(
    db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="peebot.ingest.writer")
    proxy = TcpProxy.for_database(db_url)
    feed = CounterFeed(5, rate=300, count=3000)
    log = tmp_path / "sent.jsonl"
    try:
        with (
            run_server_in_thread(feed, sent_log=log) as srv,
            running_daemon(
                proxy.url_for(db_url), srv.url, tmp_path, memory_rows=400, retry_max=0.5
            ) as daemon,
        ):
            wait_until(lambda: len(db_rows(db_url)) >= 300, timeout=60)
            proxy.refuse()  # connections dropped and refused
            wait_until(lambda: daemon.writer.db_up is False, timeout=60)
            wait_until(lambda: daemon.writer.journal.entries > 0, timeout=60)  # spilled
            proxy.resume()
            wait_until(feed.finished.is_set, timeout=60)
            wait_until(lambda: daemon.writer.backlog == 0 and daemon.feed.queued == 0, timeout=60)
            wait_until(lambda: len(db_rows(db_url)) >= len(sent_rows(log)), timeout=60)
            counters = daemon.writer.counters
    finally:
        proxy.close()
    rows = db_rows(db_url)
    assert counters.outages == 1 and counters.spilled > 0 and counters.journal_replayed > 0
    assert len(rows) == len(set(rows))
    assert set(db_rows(db_url, exclude_time=True)) == sent_rows(log, exclude_time=True)
    assert set(rows) <= sent_rows(log)  # a last TIME_000001 tick may race the shutdown
    # (the counter starts before the daemon connects: the sequence starts at the snapshot)
    seqs = sorted(int(r[2]) for r in rows if not r[0].startswith("TIME_"))
    assert seqs == list(range(seqs[0], 3000))
    assert not list((tmp_path / "journal").glob("*.jsonl"))
    said = [r.getMessage() for r in caplog.records if r.name == "peebot.ingest.writer"]
    assert sum("database unavailable" in m for m in said) == 1  # once, however long
    assert sum("database is back" in m for m in said) == 1


def test_sigterm_midstream_everything_received_is_written(db_url: str, tmp_path: Path) -> None:
    feed = CounterFeed(5, rate=400, count=100_000)
    log = tmp_path / "sent.jsonl"
    with run_server_in_thread(feed, sent_log=log) as srv:
        env = ingest_env(
            db_url,
            srv.url,
            tmp_path,
            PEEBOT_SUMMARY_SECONDS="1",
            PEEBOT_INGEST_BATCH_SECONDS="1.0",  # keep a lot in flight when the signal lands
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "peebot.cli", "ingest"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_until(lambda: len(db_rows(db_url)) >= 500, timeout=60)
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err[-2000:]
    final = [
        json.loads(line)
        for line in err.splitlines()
        if line.startswith("{") and '"ingest final"' in line
    ]
    assert final, err[-2000:]
    stats = final[-1]
    rows = db_rows(db_url)
    # the signal landed midstream: at least the 500 rows waited for, not the whole feed (the
    # count may be exactly 500 when the signal follows the commit that made them visible)
    assert 500 <= stats["received"] < 100_000
    assert stats["rejected"] == 0 and stats["queue"] == 0 and stats["pending"] == 0
    assert len(rows) == stats["written"] == stats["received"] - stats["duplicates"]
    # in order and without a gap: the first k of the sequence, all of them sent
    seqs = sorted(int(r[2]) for r in rows if not r[0].startswith("TIME_"))
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert set(rows) <= sent_rows(log)


def test_replay_serve_streams_a_recording_into_the_daemon(db_url: str, tmp_path: Path) -> None:
    from tests.support.tlcp_harness import free_port, port_open

    t0 = datetime(2023, 9, 19, 11, 0, tzinfo=UTC)
    csv = tmp_path / "rec.csv"
    lines = ["item_id,ts,value,status_class,calibrated_data", f"NODE3000005,{t0.isoformat()},40,,"]

    # the rest starts 600 recorded seconds later (3 s of wall time at speed 200); the replay
    # itself starts at the daemon's subscription, its year item first
    def on_the_wire(when: datetime) -> datetime:  # TimeStamps carry ~0.4 ms resolution
        return decode_timestamp(float(format_timestamp(when)), 2023)

    expected = {("NODE3000005", on_the_wire(t0), 40.0)}
    for i in range(100):
        when = t0 + timedelta(seconds=600 + i)
        lines.append(f"NODE3000005,{when.isoformat()},{41 + i % 3},,")
        expected.add(("NODE3000005", on_the_wire(when), float(41 + i % 3)))
    csv.write_text("\n".join(lines) + "\n")
    port = free_port()
    with running_daemon(db_url, f"http://127.0.0.1:{port}", tmp_path):
        proc = subprocess.Popen(
            [sys.executable, "-m", "peebot.cli", "replay", "--serve", "--speed", "200",
             "--port", str(port), str(csv)],
            env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=tmp_path,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            wait_until(lambda: port_open("127.0.0.1", port), timeout=60)
            wait_until(
                lambda: {r for r in db_rows(db_url) if r[0] == "NODE3000005"} >= expected,
                timeout=30,
                message=lambda: "missing "
                + str(sorted(expected - {r for r in db_rows(db_url) if r[0] == "NODE3000005"})[:3]),
            )
        finally:
            proc.terminate()
            proc.wait(15)
    rows = [r for r in db_rows(db_url) if r[0] == "NODE3000005"]
    assert sorted(rows) == sorted(expected)
    assert any(r[0] == "TIME_000001" for r in db_rows(db_url))  # the feed's time ticks


def test_terminal_feed_error_is_retried_until_the_server_accepts(
    db_url: str, tmp_path: Path
) -> None:
    feed = ScriptedFeed()
    with (
        run_server_in_thread(feed, adapter_set="SOMETHING_ELSE") as srv,
        running_daemon(db_url, srv.url, tmp_path) as daemon,
    ):
        daemon.config.reconnect_seconds = 1.0
        # CONERR 2 (unknown adapter set): the client stops for good; the daemon does not
        wait_until(lambda: daemon._last_feed_error.startswith("server error 2"), timeout=60)
        srv.adapter_set = "ISSLIVE"
        srv.restart()
        wait_until(lambda: daemon.state.connection.startswith("CONNECTED:WS"), timeout=60)
        fields = feed.publish_value("NODE3000005", "61", datetime(2026, 1, 2, tzinfo=UTC))
        wait_until(lambda: len(db_rows(db_url)) == 1, timeout=60)
    with psycopg.connect(db_url) as conn:
        states = [
            r[0]
            for r in conn.execute(
                "SELECT state FROM feed_status WHERE kind = 'connection' ORDER BY id"
            )
        ]
    assert any(s.startswith("ERROR: server error 2") for s in states)
    assert states[-2:] == ["CONNECTED:WS-STREAMING", "DISCONNECTED"]
    assert db_rows(db_url)[0][2] == 61.0 and fields["Value"] == "61"


def test_daemon_starts_with_the_database_down_and_catches_up(db_url: str, tmp_path: Path) -> None:
    proxy = TcpProxy.for_database(db_url)
    proxy.refuse()
    feed = ScriptedFeed()
    try:
        with (
            run_server_in_thread(feed) as srv,
            running_daemon(proxy.url_for(db_url), srv.url, tmp_path, retry_max=0.3) as daemon,
        ):
            wait_until(srv.has_subscription, timeout=60)
            when = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)
            for i in range(20):
                feed.publish_value("NODE3000005", str(i), when + timedelta(seconds=i))
            wait_until(lambda: daemon.validated >= 20, timeout=60)
            wait_until(lambda: daemon.writer.db_up is False, timeout=60)
            assert not db_rows(db_url) and len(daemon.writer.pending) >= 20
            proxy.resume()
            wait_until(lambda: len(db_rows(db_url)) == 20, timeout=60)
    finally:
        proxy.close()
    assert [r[2] for r in db_rows(db_url)] == [float(i) for i in range(20)]
