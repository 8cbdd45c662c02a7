"""X through tweepy, intercepted at the HTTP layer (`responses`), with the real outbox."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
import requests
import responses
from posting_helpers import T0, Clock, add_event, enqueue, posts, run_once
from urllib3.exceptions import MaxRetryError, NewConnectionError

from peebot_dagster.posting.backends.base import MissingCredentials
from peebot_dagster.posting.backends.registry import build_backends
from peebot_dagster.posting.backends.x import XBackend
from peebot_dagster.settings import Settings

URL = "https://api.twitter.com/2/tweets"
CREDS = ("ck-test-consumer", "cs-SECRET-consumer", "at-test-token", "ats-SECRET-token")


def x_backend() -> XBackend:
    return XBackend(*CREDS, timeout=7.5)


@pytest.fixture
def conn(db_url: str) -> Any:
    with psycopg.connect(db_url) as c:
        yield c


def one_event(conn: psycopg.Connection[Any], minute: int = 0) -> int:
    ev = add_event(conn, minute=minute)
    conn.commit()
    enqueue(conn, [ev], "x")
    return ev


@responses.activate
def test_exact_request_and_posted_row(conn: psycopg.Connection[Any]) -> None:
    ev = one_event(conn)
    responses.add(
        responses.POST, URL, json={"data": {"id": "1861000000000000001", "text": "x"}}, status=201
    )
    summary = run_once(conn, {"x": x_backend()}, Clock(T0 + timedelta(minutes=3)))
    (row,) = posts(conn)
    assert summary.posted == [row["id"]]
    assert len(responses.calls) == 1
    req = responses.calls[0].request
    assert req.method == "POST" and req.url == URL
    import json

    assert json.loads(req.body) == {"text": row["text"]}
    auth = req.headers["Authorization"]
    assert auth.startswith("OAuth ")
    assert 'oauth_signature_method="HMAC-SHA1"' in auth
    assert 'oauth_consumer_key="ck-test-consumer"' in auth
    assert 'oauth_token="at-test-token"' in auth
    assert "oauth_signature=" in auth and "SECRET" not in auth
    assert req.req_kwargs["timeout"] == 7.5  # tweepy sets none: ours is there
    assert row["status"] == "posted" and row["external_id"] == "1861000000000000001"
    assert row["attempts"] == 1 and row["sending_at"] is not None
    event = conn.execute(
        "SELECT posted_at, tweet_id FROM detected_event WHERE id = %s", (ev,)
    ).fetchone()
    assert event == (T0 + timedelta(minutes=3), "1861000000000000001")


def err(status: int, body: dict[str, Any] | None = None, **headers: str) -> dict[str, Any]:
    return {"status": status, "json": body or {"title": "x", "detail": "nope"}, "headers": headers}


DUPLICATE = {
    "detail": "You are not allowed to create a Tweet with duplicate content.",
    "type": "about:blank",
    "title": "Forbidden",
    "status": 403,
}

CASES = {
    "401": (err(401), "failed", "permanent", False),
    "400": (err(400, {"errors": [{"message": "Invalid text"}]}), "failed", "permanent", False),
    "403 no write permission": (
        err(403, {"detail": "You are not permitted to perform this action."}),
        "failed",
        "permanent",
        False,
    ),
    "403 duplicate content": (err(403, DUPLICATE), "posted", "duplicate", False),
    "404": (err(404), "failed", "permanent", False),
    "500": (err(500), "failed", "ambiguous", True),
    "503": (err(503), "failed", "ambiguous", True),
    "read timeout": ({"body": requests.ReadTimeout("read timed out")}, "failed", "ambiguous", True),
    "dropped": (
        {"body": requests.ConnectionError("Connection aborted.")},
        "failed",
        "ambiguous",
        True,
    ),
    "refused": (
        {
            "body": requests.ConnectionError(
                MaxRetryError(None, URL, NewConnectionError(None, "Connection refused"))
            )
        },
        "failed",
        "retry",
        True,
    ),  # type: ignore[arg-type]
    "connect timeout": (
        {"body": requests.ConnectTimeout("connect timed out")},
        "failed",
        "retry",
        True,
    ),
}


@pytest.mark.parametrize("case", CASES)
@responses.activate
def test_each_error_class_maps_to_its_state(conn: psycopg.Connection[Any], case: str) -> None:
    reply, status, kind, due_later = CASES[case]
    one_event(conn)
    responses.add(responses.POST, URL, **reply)
    now = T0 + timedelta(minutes=2)
    run_once(conn, {"x": x_backend()}, Clock(now))
    (row,) = posts(conn)
    assert (row["status"], row["error_kind"]) == (status, kind), row["last_error"]
    assert row["attempts"] == 1
    if due_later:
        assert row["not_before"] is not None and row["not_before"] > now
    else:
        assert row["not_before"] is None
    assert "SECRET" not in (row["last_error"] or "")


@responses.activate
def test_429_waits_until_reset_without_sleeping(
    conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    one_event(conn, minute=0)
    one_event(conn, minute=1)
    now = T0 + timedelta(minutes=2)
    reset = int((now + timedelta(minutes=9)).timestamp())
    responses.add(
        responses.POST,
        URL,
        status=429,
        json={"title": "Too Many Requests"},
        headers={"x-rate-limit-reset": str(reset), "x-rate-limit-remaining": "0"},
    )
    clock = Clock(now)
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)  # what tweepy's wait would call
    run_once(conn, {"x": x_backend()}, clock)
    assert [s for s in slept if s >= 1] == []  # no sleeping inside tweepy
    first, second = posts(conn)
    assert len(responses.calls) == 1  # the second row was not tried into the limit
    assert (first["status"], first["error_kind"]) == ("failed", "retry")
    assert first["not_before"] == datetime.fromtimestamp(reset, UTC)
    assert second["status"] == "pending" and second["attempts"] == 0
    # before the reset nothing is sent; after it, the post goes out
    clock.advance(minutes=5)
    run_once(conn, {"x": x_backend()}, clock)
    assert len(responses.calls) == 1
    responses.replace(responses.POST, URL, json={"data": {"id": "77"}}, status=201)
    clock.now = datetime.fromtimestamp(reset, UTC)
    run_once(
        conn,
        {
            "x": x_backend(),
        },
        clock,
    )
    rows = posts(conn)
    assert rows[0]["status"] == "posted" and rows[0]["attempts"] == 2
    # the second one respects the minimum gap
    assert rows[1]["status"] == "pending" and rows[1]["not_before"] == clock.now + timedelta(
        minutes=20
    )


@responses.activate
def test_429_without_reset_header_backs_off(conn: psycopg.Connection[Any]) -> None:
    one_event(conn)
    responses.add(responses.POST, URL, status=429, json={"title": "Too Many Requests"})
    now = T0 + timedelta(minutes=2)
    run_once(conn, {"x": x_backend()}, Clock(now))
    (row,) = posts(conn)
    assert row["error_kind"] == "retry" and row["not_before"] == now + timedelta(minutes=15)


@responses.activate
def test_ambiguous_5xx_is_reconciled_by_identical_resend(conn: psycopg.Connection[Any]) -> None:
    one_event(conn)
    responses.add(responses.POST, URL, status=503, json={"title": "Service Unavailable"})
    clock = Clock(T0 + timedelta(minutes=2))
    run_once(conn, {"x": x_backend()}, clock)
    (row,) = posts(conn)
    assert row["error_kind"] == "ambiguous"
    # the 503 came after X had created the tweet: the identical text is a duplicate
    responses.replace(responses.POST, URL, status=403, json=DUPLICATE)
    clock.advance(minutes=2)
    summary = run_once(conn, {"x": x_backend()}, clock)
    (row,) = posts(conn)
    assert summary.duplicates == [row["id"]]
    assert (row["status"], row["error_kind"], row["attempts"]) == ("posted", "duplicate", 2)
    # the re-send was the identical text
    assert [json.loads(c.request.body) for c in responses.calls] == [{"text": row["text"]}] * 2


@responses.activate
def test_retry_gives_up_after_max_attempts(conn: psycopg.Connection[Any]) -> None:
    from peebot_dagster.posting.policy import PostingSettings

    one_event(conn)
    responses.add(responses.POST, URL, body=requests.ConnectTimeout("connect timed out"))
    clock = Clock(T0 + timedelta(minutes=1))
    settings = PostingSettings(backends=("x",), max_attempts=3)
    for _ in range(5):
        run_once(conn, {"x": x_backend()}, clock, settings=settings)
        clock.advance(minutes=5)
    (row,) = posts(conn)
    assert len(responses.calls) == 3
    assert (row["status"], row["error_kind"], row["not_before"]) == ("failed", "permanent", None)
    assert row["last_error"].startswith("gave up after 3 attempts")


def test_missing_credentials_name_the_variables_and_print_no_secret(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    env = {
        "PEEBOT_X_CONSUMER_KEY": "ck-visible",
        "PEEBOT_X_CONSUMER_SECRET": "SUPERSECRET-1",
        "PEEBOT_X_ACCESS_TOKEN": "",
        "PEEBOT_MASTODON_ACCESS_TOKEN": "SUPERSECRET-2",
    }
    with pytest.raises(MissingCredentials) as info:
        build_backends(["dry_run", "x", "mastodon", "bluesky"], Settings.from_environ(env))
    message = str(info.value)
    for name in (
        "PEEBOT_X_ACCESS_TOKEN",
        "PEEBOT_X_ACCESS_TOKEN_SECRET",
        "PEEBOT_MASTODON_BASE_URL",
        "PEEBOT_BLUESKY_HANDLE",
        "PEEBOT_BLUESKY_APP_PASSWORD",
    ):
        assert name in message
    assert "PEEBOT_X_CONSUMER_SECRET" not in message  # it was set
    out = capsys.readouterr()
    for secret in ("SUPERSECRET", "ck-visible"):
        assert secret not in message and secret not in out.out + out.err + caplog.text
    # complete credentials: it starts, and its repr shows no token
    full = {n: f"SECRET-{n}" for n in XBackend.ENV}
    built = build_backends(["x"], Settings.from_environ(full))
    assert "SECRET" not in repr(built["x"])
