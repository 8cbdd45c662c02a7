"""`peebot simulate` as a subprocess: END,48 on SIGTERM makes the real client reconnect to the
restarted server; the counter script and its sent log resume across restarts."""

from __future__ import annotations

import time

from tests.support.tlcp_harness import (
    StatusRecorder,
    make_test_client,
    read_sent_log,
    run_server_subprocess,
    subscribe,
)


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
