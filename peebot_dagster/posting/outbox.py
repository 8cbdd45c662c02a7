"""The outbox (`social_post`): enqueue in the event's transaction, read, mark, and the
operator's commands. The posting run that walks it is sending.py (docs/ARCHITECTURE.md,
"Posting").

State machine of a row (one per event and backend):

    (enqueue, confidence below the floor) skipped (low_confidence) --approve--> pending
    skipped (low_confidence) <--re-detected across the floor--> pending (never attempted,
                                                                 not approved)
    pending --policy skip--> skipped (skip_reason)
    pending --policy defer--> pending (not_before)
    pending/failed(retry, due) --claim + COMMIT--> sending --network--> posted (external_id)
                                                                     \\-> failed (error_kind)
    failed retry      : not_before = when to try again (429 reset, or a backoff)
    failed permanent  : not_before NULL, an operator decides (`peebot posts retry|skip`)
    failed ambiguous  : the network may have taken it; reconciled per backend, never blindly
                        re-sent (Bluesky: look the record up; Mastodon: same idempotency key
                        within its hour; X: identical text, "duplicate content" = posted)
    sending (no run)  : left by a crash: treated as ambiguous.
    duplicate         : the network says it already has it: status posted, error_kind duplicate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row

from peebot_dagster.notify import notify_post
from peebot_dagster.posting.policy import LOW_CONFIDENCE, PostingSettings, held_for_review
from peebot_dagster.posting.render import EventView, RenderError, render
from peebot_dagster.settings import get_settings

# --- enqueue (the Dagster assets call this inside their transaction) ------------------------


def enqueue_posts(
    conn: psycopg.Connection[Any],
    event_ids: list[int],
    *,
    settings: PostingSettings | None = None,
) -> int:
    """Add one `social_post` row per enabled backend for each postable event in `event_ids`.

    Runs in the caller's transaction (no commit here). Events that do not post (by type, or
    retracted) get no row. An event whose metadata cannot be rendered gets a `skipped` row
    saying why, and so does an event whose confidence is below the posting floor
    (`low_confidence`: held for review, `approve_held`).

    Re-running for the same events never adds a second row. A row nobody has acted on yet
    (never attempted, not approved, `pending` or held) follows the event as it is re-detected:
    its text is re-rendered, and it is held or released as the event's confidence crosses the
    floor. This matters because the live pass stores a use while its level has held only
    seconds (low confidence) and raises the confidence as the hold lengthens: without the
    release, every use the live pass saw first would stay held. Anything attempted, sent,
    approved or skipped for another reason keeps its state. Returns the number of rows
    inserted.
    """
    if not event_ids:
        return 0
    settings = settings or PostingSettings.from_settings(get_settings())
    if not settings.event_types or not settings.backends:
        return 0
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            """
            SELECT id, event_key, event_type, detected_at, metadata, confidence
              FROM detected_event
             WHERE id = ANY(%s) AND retracted_at IS NULL AND event_type = ANY(%s)
             ORDER BY detected_at, id
            """,
            (list(event_ids), list(settings.event_types)),
        )
        events = cur.fetchall()
    inserted = 0
    with conn.cursor() as cur:
        for ev in events:
            view = EventView(
                ev["event_key"], ev["event_type"], ev["detected_at"], ev["metadata"] or {}, ev["id"]
            )
            held = held_for_review(float(ev["confidence"]), settings)
            for backend in settings.backends:
                try:
                    text, status, reason = render(view, backend), "pending", None
                except RenderError as exc:
                    text, status, reason = "", "skipped", f"cannot render: {exc}"
                if held is not None and status == "pending":
                    status, reason = "skipped", held
                cur.execute(
                    """
                    INSERT INTO social_post (event_id, backend, status, text, skip_reason)
                    VALUES (%(event)s, %(backend)s, %(status)s, %(text)s, %(reason)s)
                    ON CONFLICT (event_id, backend) DO UPDATE
                       SET text = EXCLUDED.text, status = EXCLUDED.status,
                           skip_reason = EXCLUDED.skip_reason, updated_at = now()
                     WHERE social_post.attempts = 0 AND social_post.approved_at IS NULL
                       AND (social_post.status = 'pending'
                            OR (social_post.status = 'skipped'
                                AND social_post.skip_reason LIKE %(held)s))
                       AND (social_post.text, social_post.status, social_post.skip_reason)
                           IS DISTINCT FROM (EXCLUDED.text, EXCLUDED.status, EXCLUDED.skip_reason)
                    RETURNING id, (xmax = 0) AS inserted, status
                    """,
                    {
                        "event": ev["id"],
                        "backend": backend,
                        "status": status,
                        "text": text,
                        "reason": reason,
                        "held": LOW_CONFIDENCE + "%",
                    },
                )
                row = cur.fetchone()
                if row is None:
                    continue
                if row[1]:
                    inserted += 1
                else:  # an existing row changed (text, or held / released): the page shows it
                    notify_post(cur, row[0])
    return inserted


# --- reading the outbox ----------------------------------------------------------------------


@dataclass
class OutboxRow:
    id: int
    event_id: int
    backend: str
    status: str
    text: str
    attempts: int
    error_kind: str | None
    not_before: datetime | None
    sending_at: datetime | None
    created_at: datetime
    event: EventView
    retracted: bool
    last_error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


_ROW_SQL = """
    SELECT p.id, p.event_id, p.backend, p.status, p.text, p.attempts, p.error_kind,
           p.not_before, p.sending_at, p.created_at, p.last_error,
           e.event_key, e.event_type, e.detected_at, e.metadata, e.retracted_at
      FROM social_post p JOIN detected_event e ON e.id = p.event_id
"""


def _row(r: Mapping[str, Any]) -> OutboxRow:
    return OutboxRow(
        id=r["id"],
        event_id=r["event_id"],
        backend=r["backend"],
        status=r["status"],
        text=r["text"],
        attempts=r["attempts"],
        error_kind=r["error_kind"],
        not_before=r["not_before"],
        sending_at=r["sending_at"],
        created_at=r["created_at"],
        last_error=r["last_error"],
        event=EventView(
            r["event_key"], r["event_type"], r["detected_at"], r["metadata"] or {}, r["event_id"]
        ),
        retracted=r["retracted_at"] is not None,
    )


# Due: pending (not deferred), or failed retry/ambiguous whose time has come. A row in
# `sending` is only due when nobody holds the backend's lock (see `backend_lock`).
DUE_WHERE = """
    (p.status = 'pending' AND (p.not_before IS NULL OR p.not_before <= %(now)s))
    OR (p.status = 'failed' AND p.not_before IS NOT NULL AND p.not_before <= %(now)s)
"""


def due_rows(
    conn: psycopg.Connection[Any],
    backend: str,
    now: datetime,
    *,
    limit: int = 1,
) -> list[OutboxRow]:
    """Due rows of one backend in event order (detected_at, event id)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            _ROW_SQL
            + f" WHERE p.backend = %(backend)s AND ({DUE_WHERE})"
            + " ORDER BY e.detected_at, e.id LIMIT %(limit)s",
            {"backend": backend, "now": now, "limit": limit},
        )
        return [_row(r) for r in cur.fetchall()]


def stuck_sending(conn: psycopg.Connection[Any], backend: str) -> list[OutboxRow]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            _ROW_SQL
            + " WHERE p.backend = %s AND p.status = 'sending' ORDER BY e.detected_at, e.id",
            (backend,),
        )
        return [_row(r) for r in cur.fetchall()]


def recent_sends(
    conn: psycopg.Connection[Any], backend: str, now: datetime, *, exclude: int | None = None
) -> list[datetime]:
    """When this backend went to the network in the last 24 h (posted or possibly posted)."""
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT coalesce(posted_at, sending_at) FROM social_post
             WHERE backend = %s AND sending_at IS NOT NULL AND id IS DISTINCT FROM %s
               AND sending_at > %s - interval '24 hours' AND sending_at <= %s
               AND (status IN ('posted', 'sending')
                    OR (status = 'failed' AND error_kind = 'ambiguous'))
               AND coalesce(error_kind, '') <> 'duplicate'
            """,
            (backend, exclude, now, now),
        )
        return [r[0] for r in cur.fetchall()]


def blocked_until(conn: psycopg.Connection[Any], backend: str, now: datetime) -> datetime | None:
    """Until when the backend asked us to retry later (a row failed with `retry`), if it did."""
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT max(not_before) FROM social_post
             WHERE backend = %s AND status = 'failed' AND error_kind = 'retry'
               AND not_before > %s
            """,
            (backend, now),
        )
        row = cur.fetchone()
    return row[0] if row else None


def get_row(conn: psycopg.Connection[Any], post_id: int) -> OutboxRow | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(_ROW_SQL + " WHERE p.id = %s", (post_id,))
        r = cur.fetchone()
    return _row(r) if r else None


# --- state changes (each commits: the outbox is the source of truth across crashes) ---------


def mark_sending(conn: psycopg.Connection[Any], post_id: int, now: datetime) -> bool:
    """pending/failed -> sending, attempts + 1, COMMITTED before the network call.

    Locks the event row (FOR SHARE) first: the detection assets lock events FOR UPDATE
    while deciding what to delete, so either they see `sending` (and keep the event,
    retracted) or they deleted it first (and this finds no row). Returns False when the
    row or its event is gone or the event was retracted meanwhile.
    """
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT e.retracted_at IS NOT NULL
              FROM social_post p JOIN detected_event e ON e.id = p.event_id
             WHERE p.id = %s
               FOR SHARE OF e
            """,
            (post_id,),
        )
        found = cur.fetchone()
        if found is None or found[0]:
            conn.rollback()
            return False
        cur.execute(
            """
            UPDATE social_post
               SET status = 'sending', attempts = attempts + 1, sending_at = %s,
                   updated_at = %s, not_before = NULL
             WHERE id = %s AND status IN ('pending', 'failed', 'sending')
            """,
            (now, now, post_id),
        )
        ok = cur.rowcount == 1
        if ok:
            notify_post(cur, post_id)
    conn.commit()
    return ok


def mark_posted(
    conn: psycopg.Connection[Any],
    post_id: int,
    *,
    external_id: str | None,
    now: datetime,
    duplicate: bool = False,
    note: str | None = None,
) -> None:
    with conn.cursor() as cur:
        cur.execute(
            """
            UPDATE social_post
               SET status = 'posted', external_id = coalesce(%s, external_id), posted_at = %s,
                   updated_at = %s, not_before = NULL,
                   error_kind = %s, last_error = %s
             WHERE id = %s
            RETURNING event_id, backend
            """,
            (external_id, now, now, "duplicate" if duplicate else None, note, post_id),
        )
        row = cur.fetchone()
        if row is not None:
            event_id, backend = row
            if backend == "x":
                cur.execute(
                    """
                    UPDATE detected_event
                       SET posted_at = coalesce(posted_at, %s),
                           tweet_id = coalesce(%s, tweet_id)
                     WHERE id = %s
                    """,
                    (now, external_id, event_id),
                )
            elif backend != "dry_run":
                cur.execute(
                    "UPDATE detected_event SET posted_at = coalesce(posted_at, %s) WHERE id = %s",
                    (now, event_id),
                )
        notify_post(cur, post_id)
    conn.commit()


def mark_failed(
    conn: psycopg.Connection[Any],
    post_id: int,
    *,
    kind: str,
    error: str,
    not_before: datetime | None,
    now: datetime,
) -> None:
    with conn.cursor() as cur:
        cur.execute(
            """
            UPDATE social_post
               SET status = 'failed', error_kind = %s, last_error = %s, not_before = %s,
                   updated_at = %s
             WHERE id = %s
            """,
            (kind, error[:2000], not_before, now, post_id),
        )
        notify_post(cur, post_id)
    conn.commit()


def mark_skipped(
    conn: psycopg.Connection[Any], post_id: int, *, reason: str, now: datetime
) -> bool:
    with conn.cursor() as cur:
        cur.execute(
            """
            UPDATE social_post
               SET status = 'skipped', skip_reason = %s, not_before = NULL, updated_at = %s
             WHERE id = %s AND status <> 'posted'
            """,
            (reason, now, post_id),
        )
        ok = cur.rowcount == 1
        if ok:
            notify_post(cur, post_id)
    conn.commit()
    return ok


def mark_deferred(
    conn: psycopg.Connection[Any], post_id: int, *, until: datetime, reason: str, now: datetime
) -> None:
    with conn.cursor() as cur:
        cur.execute(
            """
            UPDATE social_post SET not_before = %s, last_error = %s, updated_at = %s
             WHERE id = %s AND status IN ('pending', 'failed')
            """,
            (until, f"deferred: {reason}", now, post_id),
        )
    conn.commit()


def operator_retry(conn: psycopg.Connection[Any], post_id: int, now: datetime) -> str:
    """`peebot posts retry ID`: a failed or skipped row goes back to pending, due now.

    This is the operator's decision, so an ambiguous row loses its ambiguity: the operator
    has checked that the post is not online (if it is, `skip` is the right command).
    Returns the previous status.
    """
    with conn.cursor() as cur:
        cur.execute(
            "SELECT status, skip_reason FROM social_post WHERE id = %s FOR UPDATE", (post_id,)
        )
        row = cur.fetchone()
        if row is None:
            conn.rollback()
            raise LookupError(f"no social post with id {post_id}")
        (status, reason) = row
        if status in ("posted", "sending"):
            conn.rollback()
            raise ValueError(f"post {post_id} is {status}: nothing to retry")
        if status == "skipped" and (reason or "").startswith(LOW_CONFIDENCE):
            conn.rollback()
            raise ValueError(
                f"post {post_id} is held for review ({reason}): "
                f"`peebot posts approve {post_id}` after looking at it"
            )
        cur.execute(
            """
            UPDATE social_post SET status = 'pending', not_before = NULL, error_kind = NULL,
                   skip_reason = NULL, last_error = NULL, updated_at = %s
             WHERE id = %s
            """,
            (now, post_id),
        )
        notify_post(cur, post_id)
    conn.commit()
    return str(status)


def approve_held(
    conn: psycopg.Connection[Any], post_id: int, approved_by: str, now: datetime
) -> None:
    """`peebot posts approve ID`: a row held below the confidence floor goes back to pending,
    due now, with who approved it and when. The approval lifts only the confidence floor:
    the posting run still applies the policy (flags, max age, daily cap, minimum gap) and
    sends it through the same exactly-once path. Anything else is an error (one line)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT status, skip_reason, approved_at FROM social_post WHERE id = %s FOR UPDATE",
            (post_id,),
        )
        row = cur.fetchone()
        if row is None:
            conn.rollback()
            raise LookupError(f"no social post with id {post_id}")
        status, reason, approved_at = row
        if approved_at is not None:
            conn.rollback()
            raise ValueError(
                f"post {post_id} was already approved at {approved_at:%Y-%m-%d %H:%M} UTC "
                f"(now {status})"
            )
        if status != "skipped" or not (reason or "").startswith(LOW_CONFIDENCE):
            conn.rollback()
            what = f"skipped ({reason})" if status == "skipped" else status
            raise ValueError(f"post {post_id} is {what}: not held for review, nothing to approve")
        cur.execute(
            """
            UPDATE social_post SET status = 'pending', not_before = NULL, skip_reason = NULL,
                   approved_by = %s, approved_at = %s, updated_at = %s
             WHERE id = %s
            """,
            (approved_by, now, now, post_id),
        )
        notify_post(cur, post_id)
    conn.commit()


def operator_skip(conn: psycopg.Connection[Any], post_id: int, reason: str, now: datetime) -> None:
    with conn.cursor() as cur:
        cur.execute("SELECT status FROM social_post WHERE id = %s FOR UPDATE", (post_id,))
        row = cur.fetchone()
        if row is None:
            conn.rollback()
            raise LookupError(f"no social post with id {post_id}")
        if row[0] in ("posted", "sending"):
            conn.rollback()
            raise ValueError(f"post {post_id} is {row[0]}: it cannot be skipped")
    mark_skipped(conn, post_id, reason=reason, now=now)


def list_posts(
    conn: psycopg.Connection[Any],
    *,
    limit: int = 30,
    status: str | None = None,
    held: bool = False,
) -> list[dict[str, Any]]:
    """Open rows (pending, sending, failed) first, then the most recent others; `held`: only
    the review queue (skipped below the confidence floor, waiting for `approve`)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            """
            SELECT p.id, p.event_id, p.backend, p.status, p.attempts, p.error_kind, p.last_error,
                   p.skip_reason, p.not_before, p.external_id, p.posted_at, p.updated_at,
                   p.text, p.approved_by, p.approved_at, e.event_type, e.detected_at,
                   e.confidence
              FROM social_post p JOIN detected_event e ON e.id = p.event_id
             WHERE (%(status)s::text IS NULL OR p.status = %(status)s)
               AND (NOT %(held)s OR (p.status = 'skipped'
                                     AND p.skip_reason LIKE %(held_like)s))
             ORDER BY (p.status IN ('pending', 'sending', 'failed')) DESC,
                      e.detected_at DESC, p.id DESC
             LIMIT %(limit)s
            """,
            {
                "status": status,
                "limit": limit,
                "held": held,
                "held_like": LOW_CONFIDENCE + "%",
            },
        )
        return cur.fetchall()
