"""Bluesky through atproto, intercepted with an httpx MockTransport (a tiny fake PDS)."""

from __future__ import annotations

import json
import os
import stat
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import psycopg
import pytest
from posting_helpers import T0, Clock, add_event, enqueue, fake_jwt, posts, run_once

from peebot_dagster.posting.backends.base import ABSENT_L, POSTED_L, PostRequest
from peebot_dagster.posting.backends.bluesky import BlueskyBackend, record_key

DID = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
CID = "bafyreib2rxk3rybk3aobmv5cjuql3bm2twh4jo5uxgf5r7dctkhbm6e7wq"
PASSWORD = "app-pass-SECRET"


class FakePds:
    """createSession, getSession, createRecord (client-chosen rkey), getRecord."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.calls: list[str] = []
        self.logins = 0
        self.fail_next: list[str] = []  # "timeout_after_store", "429", "500", "401"
        self.reject_token: str | None = None
        self.reset = int(time.time()) + 300

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = urlparse(str(request.url)).path.rsplit("/", 1)[-1]
        self.calls.append(path)
        auth = request.headers.get("authorization", "")
        if path == "com.atproto.server.createSession":
            body = json.loads(request.content)
            if body["password"] != PASSWORD:
                return httpx.Response(401, json={"error": "AuthenticationRequired"})
            self.logins += 1
            exp = int(time.time()) + 7200
            return httpx.Response(
                200,
                json={
                    "accessJwt": fake_jwt(DID, exp),
                    "refreshJwt": fake_jwt(DID, exp + 86400),
                    "handle": body["identifier"],
                    "did": DID,
                },
            )
        if self.reject_token and self.reject_token in auth:
            return httpx.Response(401, json={"error": "ExpiredToken", "message": "expired"})
        if path == "com.atproto.server.getSession":
            return httpx.Response(200, json={"handle": "peebot.test", "did": DID})
        if path == "com.atproto.repo.getRecord":
            q = parse_qs(urlparse(str(request.url)).query)
            rec = self.records.get(q["rkey"][0])
            if rec is None:
                return httpx.Response(
                    400, json={"error": "RecordNotFound", "message": "Could not locate record"}
                )
            return httpx.Response(200, json={"uri": rec["uri"], "cid": CID, "value": rec["value"]})
        if path == "com.atproto.repo.createRecord":
            mode = self.fail_next.pop(0) if self.fail_next else ""
            if mode == "429":
                return httpx.Response(
                    429,
                    json={"error": "RateLimitExceeded"},
                    headers={"ratelimit-reset": str(self.reset), "ratelimit-remaining": "0"},
                )
            if mode == "500":
                return httpx.Response(500, json={"error": "InternalServerError"})
            if mode == "400":
                return httpx.Response(
                    400,
                    json={
                        "error": "InvalidRequest",
                        "message": "Invalid app.bsky.feed.post record",
                    },
                )
            body = json.loads(request.content)
            rkey = body["rkey"]
            if rkey in self.records:
                return httpx.Response(
                    400, json={"error": "InvalidRequest", "message": "Record already exists"}
                )
            uri = f"at://{DID}/app.bsky.feed.post/{rkey}"
            self.records[rkey] = {"uri": uri, "value": body["record"]}
            if mode == "timeout_after_store":
                raise httpx.ReadTimeout("timed out", request=request)
            return httpx.Response(200, json={"uri": uri, "cid": CID})
        return httpx.Response(404, json={"error": "MethodNotImplemented"})


@pytest.fixture
def pds() -> FakePds:
    return FakePds()


def make(pds: FakePds, tmp_path: Path, password: str = PASSWORD) -> BlueskyBackend:
    return BlueskyBackend(
        "peebot.test",
        password,
        session_file=tmp_path / "bsky.session",
        transport=httpx.MockTransport(pds),
        timeout=3,
    )


@pytest.fixture
def conn(db_url: str) -> Any:
    with psycopg.connect(db_url) as c:
        ev = add_event(c)
        c.commit()
        enqueue(c, [ev], "bluesky")
        yield c


def test_posts_with_our_record_key_and_persists_the_session(
    conn: psycopg.Connection[Any], pds: FakePds, tmp_path: Path
) -> None:
    run_once(conn, {"bluesky": make(pds, tmp_path)}, Clock(T0 + timedelta(minutes=1)))
    (row,) = posts(conn)
    (rkey,) = pds.records
    req = PostRequest(row["id"], "bluesky", row["text"], row["created_at"])
    assert rkey == record_key(req) and len(rkey) == 13
    assert pds.records[rkey]["value"]["text"] == row["text"]
    assert (row["status"], row["external_id"]) == (
        "posted",
        f"at://{DID}/app.bsky.feed.post/{rkey}",
    )
    session_file = tmp_path / "bsky.session"
    assert stat.S_IMODE(os.stat(session_file).st_mode) == 0o600
    assert PASSWORD not in session_file.read_text()
    assert pds.logins == 1
    # a new process reuses the saved session: no second login
    again = make(pds, tmp_path)
    assert again.lookup(req).state == POSTED_L
    assert pds.logins == 1 and "com.atproto.server.getSession" in pds.calls


def test_a_dead_saved_session_falls_back_to_login(pds: FakePds, tmp_path: Path) -> None:
    first = make(pds, tmp_path)
    req = PostRequest(1, "bluesky", "hello", T0)
    assert first.lookup(req).state == ABSENT_L
    saved = (tmp_path / "bsky.session").read_text()
    pds.reject_token = saved.split(":::")[2]  # the saved access token is now refused
    second = make(pds, tmp_path)
    assert second.lookup(req).state == ABSENT_L
    assert pds.logins == 2
    assert (tmp_path / "bsky.session").read_text() != saved


def test_bad_password_is_permanent(
    conn: psycopg.Connection[Any], pds: FakePds, tmp_path: Path
) -> None:
    run_once(conn, {"bluesky": make(pds, tmp_path, "wrong")}, Clock(T0 + timedelta(minutes=1)))
    (row,) = posts(conn)
    # the login happens at the first network use (after `sending`): a refused login is final
    assert (row["status"], row["error_kind"]) == ("failed", "permanent")
    assert "wrong" not in row["last_error"] and not pds.records


def test_timeout_after_the_server_stored_it_is_reconciled_by_lookup(
    conn: psycopg.Connection[Any], pds: FakePds, tmp_path: Path
) -> None:
    pds.fail_next = ["timeout_after_store"]
    clock = Clock(T0 + timedelta(minutes=1))
    run_once(conn, {"bluesky": make(pds, tmp_path)}, clock)
    (row,) = posts(conn)
    assert (row["status"], row["error_kind"]) == ("failed", "ambiguous")
    clock.advance(minutes=2)
    summary = run_once(conn, {"bluesky": make(pds, tmp_path)}, clock)
    (row,) = posts(conn)
    assert summary.reconciled == [row["id"]]
    assert row["status"] == "posted" and row["external_id"].endswith(next(iter(pds.records)))
    assert len(pds.records) == 1 and pds.calls.count("com.atproto.repo.createRecord") == 1


def test_ambiguous_5xx_not_stored_is_resent_with_the_same_key(
    conn: psycopg.Connection[Any], pds: FakePds, tmp_path: Path
) -> None:
    pds.fail_next = ["500"]
    clock = Clock(T0 + timedelta(minutes=1))
    run_once(conn, {"bluesky": make(pds, tmp_path)}, clock)
    assert posts(conn)[0]["error_kind"] == "ambiguous" and not pds.records
    clock.advance(minutes=2)
    run_once(conn, {"bluesky": make(pds, tmp_path)}, clock)
    (row,) = posts(conn)
    assert row["status"] == "posted" and row["attempts"] == 2 and len(pds.records) == 1


def test_rate_limit_waits_for_its_reset_and_invalid_record_is_permanent(
    db_url: str, pds: FakePds, tmp_path: Path
) -> None:
    with psycopg.connect(db_url) as conn:
        a, b = add_event(conn, minute=0), add_event(conn, minute=1)
        conn.commit()
        enqueue(conn, [a, b], "bluesky")
        pds.fail_next = ["429"]
        clock = Clock(T0 + timedelta(minutes=2))
        run_once(conn, {"bluesky": make(pds, tmp_path)}, clock)
        first, second = posts(conn)
        assert (first["status"], first["error_kind"]) == ("failed", "retry")
        assert first["not_before"] == datetime.fromtimestamp(pds.reset, UTC)
        assert second["not_before"] == first["not_before"]  # the backend is blocked, not the row
        conn.execute(
            "UPDATE social_post SET status = 'pending', not_before = NULL, error_kind = NULL"
        )
        conn.commit()
        pds.fail_next = ["400"]
        run_once(conn, {"bluesky": make(pds, tmp_path)}, clock)
        first = posts(conn)[0]
        assert (first["status"], first["error_kind"]) == ("failed", "permanent")
