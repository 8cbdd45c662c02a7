"""enqueue_posts: one row per enabled backend per postable event, in the caller's transaction."""

from __future__ import annotations

import json
from datetime import timedelta

import psycopg
import pytest
from posting_helpers import T0, add_event, posts

from peebot_dagster.posting.outbox import enqueue_posts
from peebot_dagster.posting.policy import PostingSettings
from peebot_dagster.posting.render import EventView, render
from peebot_dagster.settings import SettingsError, get_settings


def settings(*backends: str) -> PostingSettings:
    return PostingSettings(backends=backends or ("dry_run",))


def test_one_row_per_backend_and_event_and_idempotent(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        use = add_event(conn, minute=0)
        bulk = add_event(conn, minute=5, event_type="bulk_transfer", delta=20.0)
        los = add_event(conn, minute=9, event_type="los")
        n = enqueue_posts(conn, [use, bulk, los], settings=settings("dry_run", "x"))
        assert n == 4
        # same transaction: visible here, not elsewhere until commit
        with psycopg.connect(db_url) as other:
            assert other.execute("SELECT count(*) FROM social_post").fetchone() == (0,)
        conn.commit()
        again = enqueue_posts(conn, [use, bulk, los], settings=settings("dry_run", "x"))
        conn.commit()
        assert again == 0
        rows = posts(conn)
    assert sorted((r["event_id"], r["backend"]) for r in rows) == sorted(
        [(use, "dry_run"), (use, "x"), (bulk, "dry_run"), (bulk, "x")]
    )
    assert all(r["status"] == "pending" and r["attempts"] == 0 for r in rows)
    assert all("~200 mL" in r["text"] for r in rows if r["event_id"] == use)


def test_rolled_back_transaction_leaves_no_rows(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        ev = add_event(conn)
        assert enqueue_posts(conn, [ev], settings=settings()) == 1
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM social_post").fetchone() == (0,)


def test_pending_text_rerendered_but_sent_text_never_changes(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        a = add_event(conn, minute=0, key="k:a")
        b = add_event(conn, minute=1, key="k:b")
        enqueue_posts(conn, [a, b], settings=settings())
        conn.execute(
            "UPDATE social_post SET status = 'posted', attempts = 1 WHERE event_id = %s", (b,)
        )
        old = {r["event_id"]: r["text"] for r in posts(conn)}
        new_md = {"level_before": 50.0, "level_after": 53.0, "delta": 3.0, "volume_ml": 240}
        conn.execute(
            "UPDATE detected_event SET metadata = %s WHERE id = ANY(%s)",
            (json.dumps(new_md), [a, b]),
        )
        assert enqueue_posts(conn, [a, b], settings=settings()) == 0
        now = {r["event_id"]: r["text"] for r in posts(conn)}
    assert now[b] == old[b]
    assert now[a] != old[a] and "~240 mL" in now[a]
    ev = EventView("k:a", "urination", T0 + timedelta(minutes=0), new_md)
    assert now[a] == render(ev, "dry_run")


def test_retracted_types_and_env_selection(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEEBOT_POST_BACKENDS", "mastodon, bluesky")
    monkeypatch.setenv("PEEBOT_POST_EVENT_TYPES", "urination,los")
    with psycopg.connect(db_url) as conn:
        use = add_event(conn, minute=0)
        bulk = add_event(conn, minute=2, event_type="bulk_transfer", delta=15)
        los = add_event(conn, minute=3, event_type="los", delta=0)
        gone = add_event(conn, minute=4)
        conn.execute("UPDATE detected_event SET retracted_at = now() WHERE id = %s", (gone,))
        assert enqueue_posts(conn, [use, bulk, los, gone]) == 4
        rows = posts(conn)
    assert {(r["event_id"], r["backend"]) for r in rows} == {
        (use, "mastodon"),
        (use, "bluesky"),
        (los, "mastodon"),
        (los, "bluesky"),
    }


def test_unrenderable_event_is_recorded_as_skipped(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        ev = add_event(conn)
        conn.execute("UPDATE detected_event SET metadata = '{}'::jsonb WHERE id = %s", (ev,))
        assert enqueue_posts(conn, [ev], settings=settings()) == 1
        (row,) = posts(conn)
    assert row["status"] == "skipped"
    assert "no level change" in row["skip_reason"]


def test_unknown_backend_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEEBOT_POST_BACKENDS", "x,myspace")
    with pytest.raises(SettingsError, match="myspace"):
        get_settings()
