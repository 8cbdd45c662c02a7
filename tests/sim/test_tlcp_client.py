"""The real lightstreamer-client-lib against our TLCP server, over WebSocket and HTTP streaming."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from peebot_iss.catalog import FIELDS
from peebot_sim.feeds import ScriptedFeed
from peebot_sim.model import make_fields
from peebot_sim.tlcp import encode_update, escape_value
from tests.support.tlcp_harness import (
    StatusRecorder,
    make_test_client,
    read_sent_log,
    run_server_in_thread,
    subscribe,
)
from tests.support.waiting import wait_until

TRANSPORTS = ["WS-STREAMING", "HTTP-STREAMING"]
WHEN = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

# Values the escaping rules must carry through unchanged (None is TLCP null).
AWKWARD = [
    "a|b",
    "100%",
    "#",
    "$",
    "^3",
    "",
    None,
    "x,y,z",
    "héllo ✓ 宇宙",
    "line1\r\nline2",
    " spaced ",
    "%7C",
    "#hash$",
]


def test_escape_rules() -> None:
    assert escape_value(None) == "#"
    assert escape_value("") == "$"
    assert escape_value("a|b%") == "a%7Cb%25"
    assert escape_value("#x") == "%23x"
    assert escape_value("$") == "%24"
    assert escape_value("^1") == "%5E1"
    assert escape_value("x#") == "x#"
    assert escape_value("a\r\nb") == "a%0D%0Ab"
    assert encode_update(1, 2, ["1", "b", None], ["1", "a", None]) == "U,1,2,|b|"
    assert encode_update(1, 2, ["1", "", None], None) == "U,1,2,1|$|#"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_snapshot_updates_and_unchanged_fields(transport: str, tmp_path) -> None:
    feed = ScriptedFeed(
        initial={
            "NODE3000005": make_fields(WHEN, "41"),
            "NODE3000004": make_fields(WHEN, "16", calibrated="NORMAL"),
        }
    )
    sent_log = tmp_path / "sent.jsonl"
    with run_server_in_thread(feed, keepalive_ms=500, sent_log=sent_log) as srv:
        status = StatusRecorder()
        client = make_test_client(srv.url, transport=transport, keepalive_ms=300)
        client.addListener(status)
        _, listener = subscribe(client, ["NODE3000005", "NODE3000004"])
        client.connect()
        try:
            status.wait_for_status(f"CONNECTED:{transport}")
            listener.wait_for(lambda li: len(li.updates) >= 2)
            snap = {u["item"]: u for u in listener.updates[:2]}
            assert all(u["snapshot"] for u in snap.values())
            assert snap["NODE3000005"]["fields"]["Value"] == "41"
            assert snap["NODE3000004"]["fields"]["CalibratedData"] == "NORMAL"
            assert set(snap["NODE3000005"]["changed"]) == set(FIELDS)

            # Only Value changes: TimeStamp and the rest go out empty (unchanged).
            feed.publish("NODE3000005", {"Value": "42"})
            listener.wait_for(lambda li: len(li.updates) >= 3)
            upd = listener.updates[2]
            assert upd["item"] == "NODE3000005" and not upd["snapshot"]
            assert upd["changed"] == {"Value": "42"}
            assert upd["fields"]["TimeStamp"] == snap["NODE3000005"]["fields"]["TimeStamp"]

            # A full new reading changes TimeStamp, Value and CalibratedData.
            later = datetime(2026, 3, 1, 12, 0, 5, tzinfo=UTC)
            sent = feed.publish_value("NODE3000005", "43", later)
            listener.wait_for(lambda li: len(li.updates) >= 4)
            upd = listener.updates[3]
            assert upd["fields"] == sent
            assert set(upd["changed"]) == {"TimeStamp", "Value", "CalibratedData"}

            # No data for longer than the client's stall + reconnect timeouts (0.3 + 0.5 + 1 s):
            # only PROBEs keep the session alive, so there must be no reconnect. The barrier is
            # the server's count of keepalives sent on this one session (5 x 500 ms), not a
            # sleep: on a busy machine it simply takes longer.
            n_status = len(status.statuses)
            assert srv.server is not None
            (session,) = srv.call(lambda: list(srv.server.hub.sessions.values()))
            probes = srv.call(lambda: session.probes_sent)
            wait_until(
                lambda: srv.call(lambda: session.probes_sent) >= probes + 5,
                timeout=60,
            )
            assert status.statuses[n_status:] == []
            assert client.getStatus() == f"CONNECTED:{transport}"
            assert srv.call(lambda: list(srv.server.hub.sessions)) == [session.sid]
        finally:
            client.disconnect()
    rows = read_sent_log(sent_log)
    values = [r["fields"]["Value"] for r in rows if r["item"] == "NODE3000005"]
    assert values == ["41", "42", "43"]
    assert [r["snapshot"] for r in rows if r["item"] == "NODE3000005"] == [True, False, False]


@pytest.mark.parametrize("transport", [*TRANSPORTS, "HTTP-POLLING"])
def test_awkward_values_round_trip(transport: str) -> None:
    feed = ScriptedFeed(items=["ODD1"])
    with run_server_in_thread(feed) as srv:
        client = make_test_client(srv.url, transport=transport)
        _, listener = subscribe(client, ["ODD1"], fields=["Value", "CalibratedData"])
        client.connect()
        try:
            listener.wait_for(lambda li: li.subscribed)
            for i, value in enumerate(AWKWARD):
                feed.publish("ODD1", {"Value": value, "CalibratedData": f"#{i}|{value}"})
            listener.wait_for(lambda li: len(li.updates) >= len(AWKWARD))
            got = [u["fields"]["Value"] for u in listener.updates]
            assert got == AWKWARD
            cal = [u["fields"]["CalibratedData"] for u in listener.updates]
            assert cal == [f"#{i}|{v}" for i, v in enumerate(AWKWARD)]
        finally:
            client.disconnect()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_unknown_item_is_a_subscription_error(transport: str) -> None:
    feed = ScriptedFeed(items=["NODE3000005"], initial={"NODE3000005": make_fields(WHEN, "7")})
    with run_server_in_thread(feed) as srv:
        client = make_test_client(srv.url, transport=transport)
        sub_bad, bad = subscribe(client, ["NODE3000005", "NO_SUCH_ITEM"])
        _, good = subscribe(client, ["NODE3000005"])
        client.connect()
        try:
            code, message = bad.wait_for(lambda li: li.errors and li.errors[0])
            assert code == 21 and "NO_SUCH_ITEM" in message
            good.wait_for(lambda li: li.updates)
            assert good.updates[0]["fields"]["Value"] == "7"
            assert not sub_bad.isActive() or not sub_bad.isSubscribed()
            assert bad.updates == []
        finally:
            client.disconnect()


def test_unknown_adapter_set_is_refused() -> None:
    feed = ScriptedFeed(items=["X"])
    with run_server_in_thread(feed) as srv:
        status = StatusRecorder()
        client = make_test_client(srv.url, adapter_set="NOPE")
        client.addListener(status)
        client.connect()
        try:
            wait_until(lambda: status.server_errors, timeout=60)
            assert status.server_errors[0][0] == 2
            status.wait_for_status("DISCONNECTED")
        finally:
            client.disconnect()


def test_unsubscribe_stops_updates() -> None:
    feed = ScriptedFeed(items=["A"], initial={"A": {"Value": "1"}})
    with run_server_in_thread(feed) as srv:
        client = make_test_client(srv.url)
        sub, listener = subscribe(client, ["A"], fields=["Value"])
        client.connect()
        try:
            listener.wait_for(lambda li: li.updates)
            client.unsubscribe(sub)
            listener.wait_for(lambda li: li.unsubscribed)
            hub = srv.server.hub
            wait_until(lambda: srv.call(lambda: all(not s.subs for s in hub.sessions.values())))
            feed.publish("A", {"Value": "2"}, wait=True)
            _, second = subscribe(client, ["A"], fields=["Value"])
            second.wait_for(lambda li: li.updates)
            assert second.updates[0]["fields"]["Value"] == "2"
            assert [u["fields"]["Value"] for u in listener.updates] == ["1"]
        finally:
            client.disconnect()


def test_http_stream_rebinds_when_content_length_is_used_up() -> None:
    feed = ScriptedFeed(items=["A"])
    with run_server_in_thread(feed) as srv:
        client = make_test_client(srv.url, transport="HTTP-STREAMING")
        client.connectionOptions.setContentLength(4000)  # a LOOP every ~150 updates
        _, listener = subscribe(client, ["A"], fields=["Value"])
        client.connect()
        try:
            listener.wait_for(lambda li: li.subscribed)
            for i in range(600):
                feed.publish("A", {"Value": f"value-{i:04d}"})
                if i % 50 == 0:
                    time.sleep(0.02)
            listener.wait_for(lambda li: len(li.updates) >= 600, timeout=60)
        finally:
            client.disconnect()
    assert listener.values("A") == [f"value-{i:04d}" for i in range(600)]


def _post(url: str, path: str, body: str) -> str:
    import urllib.request

    req = urllib.request.Request(
        f"{url}/lightstreamer/{path}?LS_protocol=TLCP-2.5.0",
        data=body.encode(),
        headers={"Content-Type": "text/plain; charset=utf-8"},
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return resp.read().decode()


def test_raw_http_create_recovery_and_errors() -> None:
    feed = ScriptedFeed(items=["A"])
    with run_server_in_thread(feed, keepalive_ms=1500) as srv:
        created = _post(
            srv.url,
            "create_session.txt",
            "LS_polling=true&LS_polling_millis=0&LS_idle_millis=0&LS_adapter_set=ISSLIVE&LS_cid=x",
        )
        lines = created.split("\r\n")
        assert lines[0].startswith("CONOK,") and lines[0].endswith(",50000,1500,*")
        assert lines[1] == "LOOP,0"
        sid = lines[0].split(",")[1]
        # a recovery request is refused with CONERR,4 (the client then makes a new session)
        recovery = _post(srv.url, "bind_session.txt", f"LS_session={sid}&LS_recovery_from=4")
        assert recovery.startswith("CONERR,4,")
        assert _post(srv.url, "bind_session.txt", "LS_session=nope").startswith("CONERR,20,")
        refused = _post(srv.url, "create_session.txt", "LS_polling=true&LS_adapter_set=OTHER")
        assert refused.startswith("CONERR,2,")
        control = _post(
            srv.url,
            "control.txt",
            f"LS_reqId=1&LS_op=add&LS_subId=1&LS_mode=MERGE&LS_group=A&LS_schema=Value"
            f"&LS_session={sid}\r\n"
            f"LS_reqId=2&LS_op=add&LS_subId=2&LS_mode=MERGE&LS_group=B&LS_schema=Value"
            f"&LS_session={sid}\r\n"
            f"LS_reqId=3&LS_op=add&LS_subId=3&LS_mode=DISTINCT&LS_group=A&LS_schema=Value"
            f"&LS_session={sid}",
        )
        assert control.split("\r\n")[:3] == [
            "REQOK,1",
            "REQERR,2,21,Bad Item name: B",
            "REQERR,3,24,Only MERGE mode is supported",
        ]


def test_in_thread_restart_keeps_state_and_client_reconnects() -> None:
    feed = ScriptedFeed(items=["A", "B"])
    with run_server_in_thread(feed) as srv:
        status = StatusRecorder()
        client = make_test_client(srv.url)
        client.addListener(status)
        _, listener = subscribe(client, ["A", "B"], fields=["Value"])
        client.connect()
        try:
            listener.wait_for(lambda li: li.subscribed)
            feed.publish_many([("A", {"Value": "1"}), ("B", {"Value": "2"})], wait=True)
            listener.wait_for(lambda li: len(li.updates) >= 2)
            mark = len(status.statuses)
            port = srv.port
            srv.restart()  # END,48, then the same feed on the same port
            assert srv.port == port
            status.wait_for_status("DISCONNECTED:WILL-RETRY", after=mark)
            status.wait_for_status("CONNECTED:WS-STREAMING", after=mark + 1)
            listener.wait_for(lambda li: len(li.updates) >= 4)
        finally:
            client.disconnect()
    again = listener.updates[2:4]
    assert all(u["snapshot"] for u in again)
    assert {u["item"]: u["fields"]["Value"] for u in again} == {"A": "1", "B": "2"}
