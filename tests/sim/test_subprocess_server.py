"""`peebot simulate` as a subprocess: END,48 on SIGTERM makes the real client reconnect to the
restarted server; the counter script and its sent log resume across restarts."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.support.tlcp_harness import (
    StatusRecorder,
    make_test_client,
    read_sent_log,
    run_server_subprocess,
    subscribe,
)
from tests.support.waiting import wait_until


def _counter_values(rows: list[dict]) -> list[int]:
    return [int(r["fields"]["Value"]) for r in rows if not r["item"].startswith("TIME_")]


def test_sigterm_sends_end_48_and_client_reconnects_after_restart(tmp_path) -> None:
    sent_log = tmp_path / "sent.jsonl"
    args = [
        "--script",
        "counter",
        "--items",
        "3",
        "--rate",
        "20",
        "--count",
        "100000",
        "--sent-log",
        str(sent_log),
    ]
    with run_server_subprocess(args) as srv:
        status = StatusRecorder()
        client = make_test_client(srv.url)
        client.addListener(status)
        items = ["AIRLOCK000001", "AIRLOCK000002", "AIRLOCK000003"]
        _, listener = subscribe(client, items)
        client.connect()
        try:
            listener.wait_for(lambda li: len(li.updates) >= 10)
            mark = len(status.statuses)
            killed_at = time.time()
            assert srv.terminate() == 0  # graceful: END,48, exit code 0
            # END,48 is noticed at once, not after the keepalive timers (>= 2.5 s here).
            status.wait_for_status("DISCONNECTED:WILL-RETRY", timeout=60, after=mark)
            # noticed through END, not after the keepalive timers (1 + 0.5 + 1 s of silence)
            assert "END,48 sent to 1 session" in srv.output()
            assert status.statuses[mark][1] == "DISCONNECTED:WILL-RETRY"
            assert status.statuses[mark][0] - killed_at < 2.4
            assert status.server_errors == []  # 48 is not terminal

            before = len(listener.updates)
            first_run_last = _counter_values(read_sent_log(sent_log))[-1]
            srv.start()
            status.wait_for_status("CONNECTED:WS-STREAMING", timeout=60, after=mark)
            listener.wait_for(lambda li: len(li.updates) >= before + 6)
        finally:
            client.disconnect()
    new = listener.updates[before:]
    # Resubscribed with a fresh snapshot (one per item that has a value), then new values.
    values = [int(u["fields"]["Value"]) for u in new if not u["snapshot"]]
    assert values and min(values) > first_run_last  # the counter resumed after the log
    assert "peebot simulate: ISS Live (ISSLIVE) at" in srv.output()


def test_sigkill_then_restart_client_comes_back(tmp_path) -> None:
    sent_log = tmp_path / "sent.jsonl"
    args = [
        "--script",
        "counter",
        "--items",
        "2",
        "--rate",
        "50",
        "--count",
        "100000",
        "--sent-log",
        str(sent_log),
        "--keepalive-ms",
        "500",
    ]
    with run_server_subprocess(args) as srv:
        status = StatusRecorder()
        client = make_test_client(srv.url)
        client.addListener(status)
        _, listener = subscribe(client, ["AIRLOCK000001", "AIRLOCK000002"])
        client.connect()
        try:
            listener.wait_for(lambda li: len(li.updates) >= 5)
            mark = len(status.statuses)
            srv.kill()
            srv.start()
            # No END: the client notices only through its keepalive timers, then reconnects.
            status.wait_for_status("CONNECTED:WS-STREAMING", timeout=60, after=mark + 1)
            n = len(listener.updates)
            listener.wait_for(lambda li: len(li.updates) >= n + 5)
        finally:
            client.disconnect()
    rows = read_sent_log(sent_log)
    seqs = _counter_values([r for r in rows if not r["snapshot"]])
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)  # one sequence, no repeats
    received = {int(u["fields"]["Value"]) for u in listener.updates if not u["snapshot"]}
    assert received <= set(seqs)


def _simulate(*args: str) -> list[str]:
    return [sys.executable, "-m", "peebot.cli", "simulate", "--port", "0", *args]


def test_simulator_exits_nonzero_when_its_feed_dies(tmp_path: Path) -> None:
    """The truth file cannot be written (its folder is a file): the feed task dies, and the
    server must not stay up serving nothing: it stops and says why in one line."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    proc = subprocess.run(
        _simulate("--truth", str(blocker / "truth.jsonl"), "--no-random-events"),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stderr
    assert "Error: the feed stopped (FileExistsError" in proc.stderr
    assert "server stopped" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_simulator_creates_the_truth_files_folder(tmp_path: Path) -> None:
    truth = tmp_path / "new" / "home" / "truth.jsonl"
    args = [
        "--truth",
        str(truth),
        "--no-random-events",
        "--scenario",
        "use@+10s",
        "--speed",
        "60",
        "--start",
        "-30m",
    ]
    with run_server_subprocess(args) as srv:
        wait_until(
            lambda: truth.exists() and "urination" in truth.read_text(),
            timeout=60,
            message=lambda: f"the use in {truth}\n{srv.output()[-2000:]}",
        )
        assert srv.terminate() == 0
