"""A crash between `sending` and the reply never leads to a second post."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
import responses
from posting_helpers import T0, Clock, add_event, enqueue, posts, run_once

from peebot_dagster.posting.backends.dry_run import DryRunBackend
from peebot_dagster.posting.backends.x import XBackend
from tests.support.waiting import wait_until

URL = "https://api.twitter.com/2/tweets"


@contextlib.contextmanager
def caplog_at(_conn: Any) -> Iterator[list[str]]:
    messages: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    handler = Keep(level=logging.WARNING)
    logger = logging.getLogger("peebot.posting")
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)


class SimulatedCrash(BaseException):
    """Not an Exception: nothing in the runner may catch it (like a kill)."""


class FakeX:
    """X's behaviour that matters: a repeated text is a 403 "duplicate content"."""

    def __init__(self) -> None:
        self.tweets: dict[str, str] = {}
        self.crash_after_create = False

    def __call__(self, request: Any) -> tuple[int, dict[str, str], str]:
        text = json.loads(request.body)["text"]
        if text in self.tweets.values():
            return (
                403,
                {},
                json.dumps(
                    {
                        "detail": "You are not allowed to create a Tweet with duplicate content.",
                        "title": "Forbidden",
                        "status": 403,
                    }
                ),
            )
        tweet_id = str(1861000000000000000 + len(self.tweets))
        self.tweets[tweet_id] = text
        if self.crash_after_create:
            self.crash_after_create = False
            raise SimulatedCrash("process died before reading X's reply")
        return 201, {}, json.dumps({"data": {"id": tweet_id, "text": text}})


def x_backend() -> XBackend:
    return XBackend("ck", "cs", "at", "ats")


@pytest.fixture
def conn(db_url: str) -> Any:
    with psycopg.connect(db_url) as c:
        ev = add_event(c)
        c.commit()
        enqueue(c, [ev], "x")
        yield c


@responses.activate
def test_crash_after_x_took_the_post(conn: psycopg.Connection[Any]) -> None:
    fake = FakeX()
    fake.crash_after_create = True
    responses.add_callback(responses.POST, URL, callback=fake)
    clock = Clock(T0 + timedelta(minutes=1))
    with pytest.raises(SimulatedCrash):
        run_once(conn, {"x": x_backend()}, clock)
    (row,) = posts(conn)
    assert row["status"] == "sending" and row["attempts"] == 1 and len(fake.tweets) == 1
    clock.advance(minutes=1)
    with caplog_at(conn) as records:
        # a new run finds it left in `sending`: ambiguous, so it re-sends the identical text
        # (X's way to check), and X's "duplicate content" answer means it was posted
        summary = run_once(conn, {"x": x_backend()}, clock)
    assert any("left in `sending`" in m for m in records)
    (row,) = posts(conn)
    assert summary.duplicates == [row["id"]]
    assert (row["status"], row["error_kind"], row["attempts"]) == ("posted", "duplicate", 2)
    assert len(fake.tweets) == 1  # never a second post
    for _ in range(3):  # and nothing happens on later runs
        clock.advance(minutes=30)
        run_once(conn, {"x": x_backend()}, clock)
    assert len(fake.tweets) == 1 and len(responses.calls) == 2


@responses.activate
def test_crash_before_the_request_left(conn: psycopg.Connection[Any]) -> None:
    fake = FakeX()
    responses.add_callback(responses.POST, URL, callback=fake)
    clock = Clock(T0 + timedelta(minutes=1))

    def die(stage: str, row: Any) -> None:
        raise SimulatedCrash(stage)

    with pytest.raises(SimulatedCrash):
        run_once(conn, {"x": x_backend()}, clock, hook=die)
    assert posts(conn)[0]["status"] == "sending" and not fake.tweets
    for _ in range(2):
        clock.advance(minutes=1)
        run_once(conn, {"x": x_backend()}, clock)
    (row,) = posts(conn)
    assert (row["status"], row["error_kind"], row["attempts"]) == ("posted", None, 2)
    assert list(fake.tweets) == [row["external_id"]]


CHILD = textwrap.dedent(
    """
    import sys, time
    from datetime import datetime
    import psycopg
    from peebot_dagster.posting.backends.dry_run import DryRunBackend
    from peebot_dagster.posting.policy import PostingSettings
    from peebot_dagster.posting.sending import run_outbox

    url, jsonl, marker, stage, now = sys.argv[1:6]

    class Stuck(DryRunBackend):
        def post(self, request):
            if stage == "after":
                super().post(request)
            open(marker, "w").write("ready")
            time.sleep(600)  # killed here

    with psycopg.connect(url) as conn:
        run_outbox(
            conn, {"dry_run": Stuck(jsonl)},
            settings=PostingSettings(backends=("dry_run",)),
            clock=lambda: datetime.fromisoformat(now),
        )
    """
)


@pytest.mark.parametrize("stage", ["after", "before"])
def test_killed_process_then_reconciled(db_url: str, tmp_path: Path, stage: str) -> None:
    jsonl, marker = tmp_path / "posts.jsonl", tmp_path / "marker"
    now = T0 + timedelta(minutes=1)
    with psycopg.connect(db_url) as conn:
        ev = add_event(conn)
        conn.commit()
        enqueue(conn, [ev], "dry_run")
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, db_url, str(jsonl), str(marker), stage, now.isoformat()],
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(
            marker.exists,
            timeout=60,
            message=lambda: "the child reaching the network call"
            + (f": {child.stderr.read().decode()}" if child.poll() is not None and child.stderr else ""),
            alive=child,
        )
        with psycopg.connect(db_url) as conn:
            (row,) = posts(conn)
            assert row["status"] == "sending"
            # while the child lives it holds the backend lock: nobody touches its row
            clock = Clock(now + timedelta(minutes=1))
            summary = run_once(conn, {"dry_run": DryRunBackend(jsonl)}, clock, lock_wait_s=0.2)
            assert summary.locked_out == ["dry_run"]
            assert posts(conn)[0]["status"] == "sending"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    with psycopg.connect(db_url) as conn:
        clock = Clock(now + timedelta(minutes=2))
        for _ in range(2):
            summary = run_once(conn, {"dry_run": DryRunBackend(jsonl)}, clock)
            clock.advance(minutes=1)
        (row,) = posts(conn)
    lines = jsonl.read_text().splitlines()
    assert len(lines) == 1  # exactly one post, whichever side of the call the kill fell
    assert json.loads(lines[0])["key"] == f"peebot-post-{row['id']}"
    assert row["status"] == "posted" and row["external_id"] == f"dry-{row['id']}"
    if stage == "after":
        assert row["last_error"] == "reconciled: found on the network"


def test_sending_mark_waits_for_a_detection_transaction_that_deletes_the_event(
    db_url: str,
) -> None:
    """The detection assets lock events FOR UPDATE while replacing a window; `sending`
    waits for them, so a post never goes out for an event deleted at the same moment."""
    import threading

    from peebot_dagster.posting import outbox

    with psycopg.connect(db_url) as conn:
        ev = add_event(conn)
        conn.commit()
        enqueue(conn, [ev], "dry_run")
        (row,) = posts(conn)
        conn.commit()
    result: list[bool] = []
    with psycopg.connect(db_url) as dag:
        dag.execute("SELECT id FROM detected_event WHERE id = %s FOR UPDATE", (ev,))
        with psycopg.connect(db_url) as poster:
            t = threading.Thread(
                target=lambda: result.append(outbox.mark_sending(poster, row["id"], T0))
            )
            t.start()
            t.join(timeout=0.5)
            assert t.is_alive()  # blocked behind the detection transaction
            dag.execute("DELETE FROM detected_event WHERE id = %s", (ev,))
            dag.commit()
            t.join(timeout=10)
    assert result == [False]
    with psycopg.connect(db_url) as conn:
        assert posts(conn) == []
