"""The SQL edge: window reads with as-of rows, window replacement, processor_state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import psycopg
import pytest

from peebot_dagster import store
from peebot_dagster.detectors.base import Event
from tests.support.dagster_testing import event_rows, load_readings

T = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)


def frame(rows):
    return pd.DataFrame(rows, columns=["item_id", "ts", "value", "status_class"])


def test_read_window_carries_the_value_in_force(db_url):
    load_readings(
        db_url,
        frame(
            [
                ("NODE3000005", T - timedelta(hours=3), 40.0, None),
                ("NODE3000005", T - timedelta(hours=2), 41.0, None),  # as-of for the tank
                ("NODE3000004", T - timedelta(hours=5), 16.0, None),  # as-of for the UPA
                ("NODE3000005", T - timedelta(minutes=10), 42.0, None),  # in the look-back
                ("NODE3000005", T + 30 * S, 44.0, None),
                ("NODE3000005", T + timedelta(minutes=4), 45.0, None),  # in the look-ahead
                ("NODE3000005", T + timedelta(minutes=6), 46.0, None),  # past it
                ("NODE3000008", T + 10 * S, 70.0, None),  # another item
                ("TIME_000001", T + 5 * S, 1.0, 24),
            ]
        ),
    )
    with psycopg.connect(db_url) as conn:
        got = store.read_window(
            conn,
            ["NODE3000005", "NODE3000004", "TIME_000001"],
            T,
            T + timedelta(minutes=1),
            timedelta(minutes=15),
            timedelta(minutes=5),
        )
    assert list(got.columns) == ["item_id", "ts", "value", "status_class"]
    assert list(zip(got["item_id"], got["value"], strict=True)) == [
        ("NODE3000004", 16.0),
        ("NODE3000005", 41.0),
        ("NODE3000005", 42.0),
        ("TIME_000001", 1.0),
        ("NODE3000005", 44.0),
        ("NODE3000005", 45.0),
    ]
    assert str(got["ts"].dtype) == "datetime64[ns, UTC]" or got["ts"].dt.tz is not None
    assert got["status_class"].tolist()[3] == 24
    with psycopg.connect(db_url) as conn:
        empty = store.read_window(
            conn, ["NODE3000009"], T, T + S, timedelta(minutes=1), timedelta(minutes=1)
        )
    assert empty.empty and list(empty.columns) == ["item_id", "ts", "value", "status_class"]


def ev(start: datetime, rise: float = 3.0, processor: str = "urine_tank") -> Event:
    return Event("urination", processor, "NODE3000005", start, start + 15 * S, 0.9, {"delta": rise})


def replace(url, events, start=T, end=T + timedelta(minutes=1)):
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        return store.replace_window_events(conn, "urine_tank", start, end, events)


def add_post(url, event_key, status, error_kind=None):
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO social_post (event_id, backend, status, text, error_kind) "
            "SELECT id, 'dry_run', %s, 'x', %s FROM detected_event WHERE event_key = %s",
            (status, error_kind, event_key),
        )


def test_replace_inserts_updates_deletes_and_retracts(db_url):
    a, b, c, d = (ev(T + i * 10 * S) for i in range(4))
    first = replace(db_url, [a, b, c, d])
    assert len(first.inserted) == 4 and first.changed
    add_post(db_url, b.event_key, "pending")  # never sent: deleted with its event
    add_post(db_url, c.event_key, "failed", "ambiguous")  # may be out there: kept
    add_post(db_url, d.event_key, "posted")
    a2 = ev(a.start, rise=4.0)  # same key, changed metadata
    e = ev(T + 50 * S)
    second = replace(db_url, [a2, e])
    assert (len(second.inserted), len(second.updated), len(second.unchanged)) == (1, 1, 0)
    assert len(second.deleted) == 1 and len(second.retracted) == 2
    rows = {r["event_key"]: r for r in event_rows(db_url)}
    assert rows[a.event_key]["metadata"] == {"delta": 4.0}
    assert b.event_key not in rows
    assert rows[c.event_key]["retracted"] and rows[d.event_key]["retracted"]
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT count(*) FROM social_post").fetchone()[0] == 2
    # the same again: nothing to do, the retracted ones stay retracted (not re-stamped)
    third = replace(db_url, [a2, e])
    assert not third.changed and len(third.unchanged) == 2
    # the event comes back: un-retracted
    fourth = replace(db_url, [a2, e, d])
    assert len(fourth.updated) == 1 and len(fourth.retracted) == 0
    rows = {r["event_key"]: r for r in event_rows(db_url)}
    assert not rows[d.event_key]["retracted"] and rows[c.event_key]["retracted"]


def test_replace_touches_only_its_window_and_processor(db_url):
    outside = ev(T - 5 * S)
    replace(db_url, [outside], start=T - timedelta(minutes=1), end=T)
    with psycopg.connect(db_url, autocommit=True) as conn, conn.transaction():
        store.replace_window_events(
            conn, "clean_water", T, T + timedelta(minutes=1),
            [Event("clean_water_draw", "clean_water", "NODE3000009", T + S, None, 1.0)],
        )  # fmt: skip
    replace(db_url, [])  # the urine window at T is empty
    keys = {r["event_key"] for r in event_rows(db_url)}
    assert outside.event_key in keys and any(k.startswith("clean_water:") for k in keys)
    with pytest.raises(ValueError, match="outside"):
        replace(db_url, [ev(T + timedelta(minutes=2))])
    with pytest.raises(ValueError, match="not from processor"):
        replace(db_url, [ev(T + S, processor="signal")])
    with pytest.raises(ValueError, match="twice"):
        replace(db_url, [ev(T + S), ev(T + S)])


def test_processor_state_watermark_never_moves_back(db_url):
    with psycopg.connect(db_url, autocommit=True) as conn:
        store.record_processor_run(conn, "urine_tank", T, T + timedelta(hours=1), {"events": 2})
        store.record_processor_run(
            conn, "urine_tank", T - timedelta(days=1), T - timedelta(hours=23), {"events": 0}
        )
        wm, last_run, state = conn.execute(
            "SELECT last_processed_at, last_run_at, state_data FROM processor_state "
            "WHERE processor_name = 'urine_tank'"
        ).fetchone()
    assert wm == T + timedelta(hours=1)
    assert last_run is not None
    assert state["events"] == 0 and state["last_window"]["end"].startswith("2026-11-19T13:00")
