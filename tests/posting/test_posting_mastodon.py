"""Mastodon through Mastodon.py, intercepted at the HTTP layer (`responses`)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import psycopg
import pytest
import requests
import responses
from posting_helpers import T0, Clock, add_event, enqueue, posts, run_once

from peebot_dagster.posting import outbox
from peebot_dagster.posting.backends.mastodon import MastodonBackend

BASE = "https://social.example"
URL = f"{BASE}/api/v1/statuses"


def backend() -> MastodonBackend:
    return MastodonBackend(BASE, "tok-SECRET", timeout=4.0)


def status(sid: str) -> dict[str, Any]:
    return {
        "id": sid,
        "content": "<p>x</p>",
        "created_at": "2026-11-27T12:00:00.000Z",
        "visibility": "public",
        "uri": f"{BASE}/users/peebot/statuses/{sid}",
    }


@pytest.fixture
def conn(db_url: str) -> Any:
    with psycopg.connect(db_url) as c:
        ev = add_event(c)
        c.commit()
        enqueue(c, [ev], "mastodon")
        yield c


@responses.activate
def test_status_post_with_idempotency_key(conn: psycopg.Connection[Any]) -> None:
    responses.add(responses.POST, URL, json=status("109"), status=200)
    run_once(conn, {"mastodon": backend()}, Clock(T0 + timedelta(minutes=1)))
    (row,) = posts(conn)
    req = responses.calls[0].request
    assert req.headers["Idempotency-Key"] == f"peebot-post-{row['id']}"
    assert req.headers["Authorization"] == "Bearer tok-SECRET"
    raw = req.body.decode() if isinstance(req.body, bytes) else req.body
    sent = json.loads(raw)["status"] if raw.startswith("{") else parse_qs(raw)["status"][0]
    assert sent == row["text"]
    assert req.req_kwargs["timeout"] == 4.0
    assert (row["status"], row["external_id"]) == ("posted", "109")


@responses.activate
def test_rate_limit_throws_and_waits_for_reset(
    conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    reset = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=4)
    responses.add(
        responses.POST,
        URL,
        status=429,
        json={"error": "Too many requests"},
        headers={
            "X-RateLimit-Reset": reset.isoformat(),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Limit": "300",
        },
    )
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)  # what a sleeping client would call
    run_once(conn, {"mastodon": backend()}, Clock(T0 + timedelta(minutes=1)))
    assert [s for s in slept if s >= 1] == []  # ratelimit_method="throw": never sleeps
    (row,) = posts(conn)
    assert (row["status"], row["error_kind"]) == ("failed", "retry")
    assert abs((row["not_before"] - reset).total_seconds()) < 2


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        ({"status": 401, "json": {"error": "The access token is invalid"}}, "permanent"),
        ({"status": 422, "json": {"error": "Validation failed: Text too long"}}, "permanent"),
        ({"status": 500, "json": {"error": "boom"}}, "ambiguous"),
        ({"status": 502, "body": "bad gateway"}, "ambiguous"),
        ({"body": requests.ReadTimeout("read timed out")}, "ambiguous"),
    ],
)
@responses.activate
def test_error_classes(conn: psycopg.Connection[Any], reply: dict[str, Any], kind: str) -> None:
    responses.add(responses.POST, URL, **reply)
    run_once(conn, {"mastodon": backend()}, Clock(T0 + timedelta(minutes=1)))
    (row,) = posts(conn)
    assert (row["status"], row["error_kind"]) == ("failed", kind)
    assert "SECRET" not in row["last_error"]


@responses.activate
def test_ambiguous_resent_with_the_same_key_within_the_hour(conn: psycopg.Connection[Any]) -> None:
    responses.add(responses.POST, URL, body=requests.ReadTimeout("read timed out"))
    clock = Clock(T0 + timedelta(minutes=1))
    run_once(conn, {"mastodon": backend()}, clock)
    responses.replace(responses.POST, URL, json=status("110"))  # the server had it: same id
    clock.advance(minutes=2)
    run_once(conn, {"mastodon": backend()}, clock)
    (row,) = posts(conn)
    keys = {c.request.headers["Idempotency-Key"] for c in responses.calls}
    assert len(responses.calls) == 2 and keys == {f"peebot-post-{row['id']}"}
    assert (row["status"], row["external_id"], row["attempts"]) == ("posted", "110", 2)


@responses.activate
def test_ambiguous_past_the_key_lifetime_is_not_resent(conn: psycopg.Connection[Any]) -> None:
    responses.add(responses.POST, URL, status=504, json={"error": "gateway timeout"})
    clock = Clock(T0 + timedelta(minutes=1))
    run_once(conn, {"mastodon": backend()}, clock)
    clock.advance(minutes=70)  # the run that should have re-checked came too late
    run_once(conn, {"mastodon": backend()}, clock)
    (row,) = posts(conn)
    assert len(responses.calls) == 1
    assert (row["status"], row["error_kind"], row["not_before"]) == ("failed", "ambiguous", None)
    assert f"peebot posts skip {row['id']}" in row["last_error"]
    # an operator who checked decides: retry sends it
    assert outbox.operator_retry(conn, row["id"], clock()) == "failed"
    responses.replace(responses.POST, URL, json=status("111"))
    clock.advance(minutes=1)
    run_once(conn, {"mastodon": backend()}, clock)
    (row,) = posts(conn)
    # it was 71 minutes old: the age limit (120) still allows it
    assert (row["status"], row["external_id"]) == ("posted", "111")
