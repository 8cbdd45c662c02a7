"""The model and recording feeds served through TLCP to the real client."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from peebot_iss.catalog import TIME_ITEM, URINE_TANK, load_catalog
from peebot_iss.timestamps import decode_timestamp
from peebot_sim.feeds import CounterFeed, ModelFeed, RecordingFeed
from peebot_sim.model import ESSENTIAL_ITEMS, SimConfig, TruthEvent
from tests.support.tlcp_harness import (
    make_test_client,
    read_sent_log,
    run_server_in_thread,
    subscribe,
)
from tests.support.waiting import wait_until


def test_model_feed_serves_every_item_and_runs_fast(tmp_path) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    config = SimConfig(
        seed=3,
        start=start,
        random_events=False,
        initial_level=30.3,
        scenario=["use@+40s:3"],
    )
    truth = tmp_path / "truth.jsonl"
    feed = ModelFeed(config, speed=120, truth_path=truth)
    items = [c.item_id for c in load_catalog()]
    with run_server_in_thread(feed, sent_log=tmp_path / "sent.jsonl") as srv:
        client = make_test_client(srv.url)
        _, listener = subscribe(client, items)
        client.connect()
        try:
            listener.wait_for(lambda li: len(li.updates) >= len(items))
            snap = listener.updates[: len(items)]
            assert {u["item"] for u in snap} == set(items) and all(u["snapshot"] for u in snap)
            wall0 = time.time()
            # the scheduled use (+40 s simulated) shows within a second or two of wall time
            listener.wait_for(
                lambda li: any(int(v or 0) >= 33 for v in li.values(URINE_TANK)), timeout=60
            )
            ticks = [u for u in listener.updates if u["item"] == TIME_ITEM]
            first, last = ticks[0], ticks[-1]
            sim_span = (
                decode_timestamp(last["fields"]["TimeStamp"], start.year)
                - decode_timestamp(first["fields"]["TimeStamp"], start.year)
            ).total_seconds()
            wall_span = max(last["t"] - first["t"], time.time() - wall0)
            assert sim_span > 20 * wall_span  # speed 120, minus start-up slack
            # the truth file gets the use once it is over
            wait_until(lambda: truth.exists() and truth.read_text().strip(), timeout=60)
        finally:
            client.disconnect()
    rows = [TruthEvent.from_json(json.loads(x)) for x in truth.read_text().splitlines()]
    assert [r.kind for r in rows] == ["urination"]
    assert rows[0].start == start + timedelta(seconds=40)
    sent = read_sent_log(tmp_path / "sent.jsonl")
    assert len(sent) >= len(listener.updates)


def test_model_feed_thins_analog_noise_at_high_speed() -> None:
    start = datetime(2026, 3, 1, tzinfo=UTC)
    slow = ModelFeed(SimConfig(seed=1, start=start), speed=1)
    fast = ModelFeed(SimConfig(seed=1, start=start), speed=600)
    assert slow.model.config.analog_interval_scale == 1.0
    scale = fast.model.config.analog_interval_scale
    assert scale > 1.0
    # measured: one simulated hour at speed 600 is 6 s of wall time
    start = fast.model.start
    n = sum(1 for _ in fast.model.generate(start + timedelta(hours=1)))
    assert n / 6 < 2600, f"{n / 6:.0f} updates/s at speed 600"
    essential = sum(
        1 for u in slow.model.generate(start + timedelta(hours=1)) if u.item_id in ESSENTIAL_ITEMS
    )
    fast_essential = sum(
        1
        for u in ModelFeed(SimConfig(seed=1, start=start), speed=600).model.generate(
            start + timedelta(hours=1)
        )
        if u.item_id in ESSENTIAL_ITEMS
    )
    assert fast_essential == essential  # never thinned


def _read_wallclock_file(path: Path, item: str) -> list[tuple[str, datetime, str]]:
    rows = []
    for line in path.read_text().splitlines():
        stamp, value = line.split()
        when = datetime.strptime(stamp, "%Y-%m-%d-%H:%M:%S").replace(tzinfo=UTC)
        rows.append((item, when, value))
    return rows


def test_recording_feed_replays_the_2023_recording(shared_data: Path) -> None:
    """The replay waits for the client's subscription (a recording played to nobody loses its
    beginning), then every reading arrives in order with its recorded time."""
    recorded = shared_data / "issp-2023" / "public" / "data"
    tank = _read_wallclock_file(recorded / "NODE3000005.txt", URINE_TANK)
    upa = _read_wallclock_file(recorded / "NODE3000004.txt", "NODE3000004")
    readings = tank[:200] + upa
    span = (max(r[1] for r in readings) - min(r[1] for r in readings)).total_seconds()
    feed = RecordingFeed(readings, speed=span / 1.5)  # the whole recording in ~1.5 s
    with run_server_in_thread(feed) as srv:
        client = make_test_client(srv.url)
        _, listener = subscribe(client, [URINE_TANK, "NODE3000004", TIME_ITEM])
        client.connect()
        try:
            assert feed.finished.wait(60)
            # published is not delivered: wait for the last reading of each item to arrive
            listener.wait_for(
                lambda li: len(li.values(URINE_TANK)) >= 200 and len(li.values("NODE3000004")) >= 3,
                timeout=60,
            )
        finally:
            client.disconnect()
    got = [
        (decode_timestamp(u["fields"]["TimeStamp"], 2023), u["fields"]["Value"])
        for u in listener.updates
        if u["item"] == URINE_TANK
    ]
    expected = [(when, value) for _, when, value in tank[:200]]
    assert [v for _, v in got] == [v for _, v in expected]
    # TimeStamp carries ~0.4 ms resolution
    assert all(
        abs((a - b).total_seconds()) < 0.001 for (a, _), (b, _) in zip(got, expected, strict=True)
    )
    assert listener.values("NODE3000004") == ["16", "32", "16"]
    ticks = [u for u in listener.updates if u["item"] == TIME_ITEM]
    assert ticks and all(u["fields"]["Status.Class"] == "24" for u in ticks)


def test_counter_last_sequence(tmp_path) -> None:
    log = tmp_path / "sent.jsonl"
    assert CounterFeed.last_sequence(log) is None
    log.write_text(
        '{"item": "TIME_000001", "fields": {"Value": "4000"}}\n'
        '{"item": "AIRLOCK000001", "fields": {"Value": "7"}}\n'
        "garbage\n"
        '{"item": "AIRLOCK000002", "fields": {"Value": "8"}}\n'
    )
    assert CounterFeed.last_sequence(log) == 8
