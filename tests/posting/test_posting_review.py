"""The confidence floor and the review queue (issue 16): an event below
PEEBOT_POST_MIN_CONFIDENCE is stored and shown but its outbox row is `skipped`
(low_confidence); `peebot posts approve ID` sends it once through the same path."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import responses
from click.testing import CliRunner
from posting_helpers import T0, Clock, add_event, posts, run_once

from peebot.cli import cli
from peebot_dagster.posting.backends.dry_run import DryRunBackend
from peebot_dagster.posting.backends.x import XBackend
from peebot_dagster.posting.outbox import enqueue_posts
from peebot_dagster.posting.policy import PostingSettings
from peebot_dagster.settings import Settings

X_URL = "https://api.twitter.com/2/tweets"


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, ["--env-file", "/nonexistent", "posts", *args])


def store_events(conn: psycopg.Connection[Any], backend: str) -> tuple[int, int]:
    """A sure use (0.97) and a doubtful one (0.42), stored and enqueued in one transaction
    as the detection assets do."""
    sure = add_event(conn, minute=0)
    doubtful = add_event(conn, minute=1, delta=2.0)
    conn.execute("UPDATE detected_event SET confidence = 0.97 WHERE id = %s", (sure,))
    conn.execute("UPDATE detected_event SET confidence = 0.42 WHERE id = %s", (doubtful,))
    enqueue_posts(conn, [sure, doubtful], settings=PostingSettings(backends=(backend,)))
    conn.commit()
    return sure, doubtful


def row_of(conn: psycopg.Connection[Any], event_id: int) -> dict[str, Any]:
    (row,) = [r for r in posts(conn) if r["event_id"] == event_id]
    return row


def test_the_floor_defaults_to_the_bench_choice_and_reads_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert PostingSettings.from_settings(Settings(_env_file=None)).min_confidence == 0.60  # type: ignore[call-arg]
    monkeypatch.setenv("PEEBOT_POST_MIN_CONFIDENCE", "0.8")
    assert PostingSettings.from_settings(Settings(_env_file=None)).min_confidence == 0.8  # type: ignore[call-arg]


def test_held_event_posts_once_after_approve_dry_run(db_env: str, tmp_path: Path) -> None:
    backend = DryRunBackend(tmp_path / "posts.jsonl")
    clock = Clock(T0 + timedelta(minutes=3))
    with psycopg.connect(db_env) as conn:
        sure, doubtful = store_events(conn, "dry_run")
        held = row_of(conn, doubtful)
        assert held["status"] == "skipped"
        assert held["skip_reason"] == "low_confidence: 0.42 < 0.60"
        summary = run_once(conn, {"dry_run": backend}, clock)
        assert summary.posted == [row_of(conn, sure)["id"]]
        assert row_of(conn, doubtful)["status"] == "skipped"  # the run leaves it held
    sent = [json.loads(x) for x in (tmp_path / "posts.jsonl").read_text().splitlines()]
    assert len(sent) == 1

    out = invoke()
    assert out.exit_code == 0, out.output
    assert "held for review (1)" in out.output
    assert any(
        f"{held['id']:>6}" in x and "confidence 0.42" in x and "low_confidence" in x
        for x in out.output.splitlines()
    )
    out = invoke("--held")
    assert out.exit_code == 0 and f"{held['id']:>6}" in out.output
    assert f"{row_of_id(db_env, sure):>6}" not in out.output

    # `retry` is not the way out of the review queue
    out = invoke("retry", str(held["id"]))
    assert out.exit_code == 1 and f"posts approve {held['id']}" in out.output

    out = invoke("approve", str(held["id"]), "--by", "alice")
    assert out.exit_code == 0, out.output
    assert f"post {held['id']}: approved by alice -> pending" in out.output
    out = invoke("approve", str(held["id"]))
    assert out.exit_code == 1 and f"post {held['id']} was already approved" in out.output
    assert len(out.output.strip().splitlines()) == 1

    with psycopg.connect(db_env) as conn:
        approved = row_of(conn, doubtful)
        assert (approved["status"], approved["approved_by"]) == ("pending", "alice")
        assert approved["approved_at"] is not None and approved["skip_reason"] is None
        # re-running enqueue (a re-detection) neither re-holds nor duplicates it
        enqueue_posts(conn, [sure, doubtful], settings=PostingSettings(backends=("dry_run",)))
        conn.commit()
        assert row_of(conn, doubtful)["status"] == "pending"
        first = run_once(conn, {"dry_run": backend}, advanced(clock, 30))
        second = run_once(conn, {"dry_run": backend}, advanced(clock, 30))
        assert first.posted == [held["id"]] and second.posted == []
        assert row_of(conn, doubtful)["status"] == "posted"
        assert len(posts(conn)) == 2
    sent = [json.loads(x) for x in (tmp_path / "posts.jsonl").read_text().splitlines()]
    assert len(sent) == 2

    out = invoke()
    assert "held for review" not in out.output
    assert "approved by alice" not in out.output  # posted rows show their post instead
    for post_id in (held["id"], row_of_id(db_env, sure)):
        out = invoke("approve", str(post_id))
        assert out.exit_code == 1, out.output
        assert len(out.output.strip().splitlines()) == 1
    out = invoke("approve", str(row_of_id(db_env, sure)))
    assert "is posted: not held for review" in out.output
    out = invoke("approve", "999999")
    assert out.exit_code == 1 and "no social post with id 999999" in out.output


def advanced(clock: Clock, minutes: float) -> Clock:
    clock.advance(minutes=minutes)
    return clock


def row_of_id(db_url: str, event_id: int) -> int:
    with psycopg.connect(db_url) as conn:
        return int(row_of(conn, event_id)["id"])


@responses.activate
def test_held_event_posts_once_after_approve_x(db_env: str) -> None:
    responses.add(
        responses.POST, X_URL, json={"data": {"id": "1861000000000000001", "text": "a"}}, status=201
    )
    responses.add(
        responses.POST, X_URL, json={"data": {"id": "1861000000000000002", "text": "b"}}, status=201
    )
    x = XBackend("ck", "cs", "at", "ats", timeout=5)
    clock = Clock(T0 + timedelta(minutes=3))
    with psycopg.connect(db_env) as conn:
        _, doubtful = store_events(conn, "x")
        run_once(conn, {"x": x}, clock)
        assert len(responses.calls) == 1
        held = row_of(conn, doubtful)
        assert (held["status"], held["skip_reason"]) == ("skipped", "low_confidence: 0.42 < 0.60")
        assert conn.execute(
            "SELECT posted_at FROM detected_event WHERE id = %s", (doubtful,)
        ).fetchone() == (None,)

    out = invoke("approve", str(held["id"]))
    assert out.exit_code == 0, out.output
    with psycopg.connect(db_env) as conn:
        # the minimum gap (20 min) still applies to an approved post: deferred, then sent
        run_once(conn, {"x": x}, advanced(clock, 1))
        assert len(responses.calls) == 1 and row_of(conn, doubtful)["status"] == "pending"
        run_once(conn, {"x": x}, advanced(clock, 25))
        run_once(conn, {"x": x}, advanced(clock, 1))
        assert len(responses.calls) == 2
        posted = row_of(conn, doubtful)
        assert (posted["status"], posted["external_id"]) == ("posted", "1861000000000000002")
        assert json.loads(responses.calls[1].request.body) == {"text": posted["text"]}
    out = invoke("approve", str(held["id"]))
    assert out.exit_code == 1 and "already approved" in out.output


def test_a_re_detection_across_the_floor_releases_or_holds_a_row_nobody_acted_on(
    db_env: str, tmp_path: Path
) -> None:
    """The live pass stores a use after seconds of hold (low confidence) and raises its
    confidence as the level keeps holding: the row follows the event until someone or
    something acts on it, and is then sent once."""
    settings = PostingSettings(backends=("dry_run",))

    def redetect(conn: psycopg.Connection[Any], event: int, confidence: float) -> dict[str, Any]:
        conn.execute("UPDATE detected_event SET confidence = %s WHERE id = %s", (confidence, event))
        enqueue_posts(conn, [event], settings=settings)
        conn.commit()
        return row_of(conn, event)

    with psycopg.connect(db_env) as conn:
        _, early = store_events(conn, "dry_run")
        assert row_of(conn, early)["skip_reason"] == "low_confidence: 0.42 < 0.60"
        assert redetect(conn, early, 0.50)["skip_reason"] == "low_confidence: 0.50 < 0.60"
        released = redetect(conn, early, 0.97)
        assert (released["status"], released["skip_reason"]) == ("pending", None)
        assert redetect(conn, early, 0.30)["status"] == "skipped"  # unsent, held again
        assert redetect(conn, early, 0.99)["status"] == "pending"
        backend = DryRunBackend(tmp_path / "posts.jsonl")
        clock = Clock(T0 + timedelta(minutes=5))
        run_once(conn, {"dry_run": backend}, clock)  # the sure one; the minimum gap defers it
        assert run_once(conn, {"dry_run": backend}, advanced(clock, 30)).posted == [released["id"]]
        # sent: a later re-detection, even below the floor, changes nothing
        assert redetect(conn, early, 0.10)["status"] == "posted"
        assert run_once(conn, {"dry_run": backend}, advanced(clock, 30)).posted == []
        # a row skipped for another reason (here an operator's) is never released
        third = add_event(conn, minute=2)
        enqueue_posts(conn, [third], settings=settings)
        conn.execute(
            "UPDATE social_post SET status = 'skipped', skip_reason = 'operator: no' "
            "WHERE event_id = %s",
            (third,),
        )
        assert redetect(conn, third, 0.99)["skip_reason"] == "operator: no"
    assert len((tmp_path / "posts.jsonl").read_text().splitlines()) == 2
