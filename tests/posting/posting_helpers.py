"""Shared helpers for the posting tests: insert events, read rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def add_event(
    conn: psycopg.Connection[Any],
    *,
    minute: int = 0,
    event_type: str = "urination",
    delta: float = 2.5,
    before: float = 40.0,
    flags: list[str] | None = None,
    start: datetime = T0,
    key: str | None = None,
) -> int:
    at = start + timedelta(minutes=minute)
    metadata = {
        "level_before": before,
        "level_after": round(before + delta, 2),
        "delta": delta,
        "volume_ml": round(delta * 80),
        "flags": flags or [],
    }
    row = conn.execute(
        """
        INSERT INTO detected_event
            (event_key, event_type, processor, item_id, detected_at, metadata, window_key)
        VALUES (%s, %s, 'urine_tank', 'NODE3000005', %s, %s, %s)
        RETURNING id
        """,
        (
            key or f"urine_tank:NODE3000005:{at.isoformat()}",
            event_type,
            at,
            json.dumps(metadata),
            at.strftime("%Y-%m-%d-%H:%M"),
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])


def posts(conn: psycopg.Connection[Any], backend: str | None = None) -> list[dict[str, Any]]:
    from psycopg.rows import dict_row

    with conn.cursor(row_factory=dict_row) as cur:
        if backend:
            cur.execute("SELECT * FROM social_post WHERE backend = %s ORDER BY id", (backend,))
        else:
            cur.execute("SELECT * FROM social_post ORDER BY id")
        return cur.fetchall()


class Clock:
    """A settable clock for the posting runner."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> datetime:
        self.now += timedelta(**kwargs)
        return self.now


def run_once(
    conn: psycopg.Connection[Any],
    backends: dict[str, Any],
    clock: Clock,
    **kwargs: Any,
) -> Any:
    from peebot_dagster.posting.policy import PostingSettings
    from peebot_dagster.posting.sending import run_outbox

    settings = kwargs.pop("settings", None) or PostingSettings(backends=tuple(backends))
    kwargs.setdefault("lock_wait_s", 2)
    return run_outbox(conn, backends, settings=settings, clock=clock, **kwargs)


def enqueue(conn: psycopg.Connection[Any], ids: list[int], *backends: str) -> int:
    from peebot_dagster.posting.outbox import enqueue_posts
    from peebot_dagster.posting.policy import PostingSettings

    n = enqueue_posts(conn, ids, settings=PostingSettings(backends=backends))
    conn.commit()
    return n


def fake_jwt(did: str, exp: int) -> str:
    """An unsigned JWT with `sub` and `exp` (mocked Bluesky sessions)."""
    import base64

    def b64(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")

    import uuid

    payload = {"sub": did, "exp": exp, "jti": uuid.uuid4().hex}
    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(payload)}.sig"
