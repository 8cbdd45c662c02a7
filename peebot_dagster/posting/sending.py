"""The posting run: reconcile, apply the policy, send, record (docs/ARCHITECTURE.md, "Posting").

One backend at a time, under its advisory lock, rows in event order. Each due row goes
through the same steps, each of which may settle it:

1. reconcile: a row that failed `ambiguous` may be online already; ask the backend
   (`lookup`) and, when it cannot tell, re-send only inside its idempotent `resend_window`;
2. policy: empty text, retracted event, type, flags, age, daily cap, minimum gap
   (policy.py) may skip or defer it;
3. send: mark `sending` and COMMIT, post, record the external id or a classified failure.

Every state change commits (the outbox is the source of truth across crashes). A step says
what the run does next with an `After`: on to the backend's next row, or stop the backend
for this run (its remaining rows wait for a later run).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

import psycopg

from peebot_dagster.posting.backends.base import (
    AMBIGUOUS,
    DUPLICATE,
    PERMANENT,
    POSTED_L,
    RETRY,
    UNKNOWN_L,
    Backend,
    PostError,
    PostRequest,
)
from peebot_dagster.posting.outbox import (
    OutboxRow,
    blocked_until,
    due_rows,
    mark_deferred,
    mark_failed,
    mark_posted,
    mark_sending,
    mark_skipped,
    recent_sends,
    stuck_sending,
)
from peebot_dagster.posting.policy import PostingSettings, decide, retry_backoff
from peebot_dagster.settings import get_settings

log = logging.getLogger("peebot.posting")

Clock = Callable[[], datetime]
Hook = Callable[[str, OutboxRow], None]

AMBIGUOUS_RECHECK = timedelta(minutes=1)
LOCK_NAMESPACE = 0x5045  # "PE": advisory locks of the posting runs, one per backend


def utcnow() -> datetime:
    return datetime.now(UTC)


class After(Enum):
    """What the run does once a row is settled."""

    NEXT_ROW = "next"  # on to the backend's next due row
    STOP_BACKEND = "stop"  # leave the backend's remaining rows to a later run


# --- one posting run per backend at a time ------------------------------------------------------


def _lock_key(backend: str) -> int:
    return zlib.crc32(backend.encode()) - (1 << 31)


def acquire_backend_lock(conn: psycopg.Connection[Any], backend: str, wait_s: float) -> bool:
    """Session-level advisory lock: one posting run per backend at a time.

    While we hold it, a row found in `sending` was left by a run that died (its session,
    and so its lock, is gone): safe to reconcile.
    """
    conn.execute(f"SET lock_timeout = '{int(wait_s * 1000)}ms'")
    try:
        conn.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_NAMESPACE, _lock_key(backend)))
        conn.commit()
        return True
    except psycopg.errors.LockNotAvailable:
        conn.rollback()
        return False
    finally:
        conn.execute("SET lock_timeout = 0")
        conn.commit()


def release_backend_lock(conn: psycopg.Connection[Any], backend: str) -> None:
    if conn.closed:
        return
    conn.rollback()
    conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_NAMESPACE, _lock_key(backend)))
    conn.commit()


# --- the run ---------------------------------------------------------------------------------------


@dataclass
class RunSummary:
    posted: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    reconciled: list[int] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)
    deferred: dict[int, datetime] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)
    locked_out: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "posted": len(self.posted),
            "duplicates": len(self.duplicates),
            "reconciled": len(self.reconciled),
            "skipped": len(self.skipped),
            "deferred": len(self.deferred),
            "failed": len(self.failed),
        }


def run_outbox(
    conn: psycopg.Connection[Any],
    backends: Mapping[str, Backend],
    *,
    settings: PostingSettings | None = None,
    clock: Clock = utcnow,
    max_rows: int = 200,
    lock_wait_s: float = 30.0,
    hook: Hook | None = None,
) -> RunSummary:
    """Send what is due, backend by backend, in event order. Every state change commits.

    `conn` must not be in autocommit mode. `hook("sending", row)` runs right after the
    `sending` mark is committed and before the network call (tests inject crashes there).
    """
    settings = settings or PostingSettings.from_settings(get_settings())
    summary = RunSummary()
    for name, backend in backends.items():
        if not acquire_backend_lock(conn, name, lock_wait_s):
            log.warning("posting: another run holds the %s lock; leaving its rows", name)
            summary.locked_out.append(name)
            continue
        try:
            BackendPass(conn, name, backend, settings, hook, summary).run(clock, max_rows)
        finally:
            release_backend_lock(conn, name)
    return summary


@dataclass
class BackendPass:
    """One backend's share of a run, holding its lock: its due rows, step by step."""

    conn: psycopg.Connection[Any]
    name: str
    backend: Backend
    settings: PostingSettings
    hook: Hook | None
    summary: RunSummary

    def run(self, clock: Clock, max_rows: int) -> None:
        self.reconcile_interrupted(clock())
        for _ in range(max_rows):
            now = clock()
            due = due_rows(self.conn, self.name, now, limit=1)
            if not due:
                return
            row = due[0]
            blocked = blocked_until(self.conn, self.name, now)
            if blocked is not None:
                # the backend said "not now" (429 or unreachable): the rows after wait as well
                mark_deferred(
                    self.conn,
                    row.id,
                    until=blocked,
                    reason=f"{self.name} asked to retry later",
                    now=now,
                )
                self.summary.deferred[row.id] = blocked
                continue
            if self.process(row, now) is After.STOP_BACKEND:
                return

    def reconcile_interrupted(self, now: datetime) -> None:
        """Rows left in `sending` (we hold the lock, so their run died): ambiguous."""
        for row in stuck_sending(self.conn, self.name):
            log.warning("posting: %s post %s was left in `sending`: reconciling", self.name, row.id)
            mark_failed(
                self.conn,
                row.id,
                kind=AMBIGUOUS,
                error="left in `sending` by an interrupted run",
                not_before=now,
                now=now,
            )

    def process(self, row: OutboxRow, now: datetime) -> After:
        """One due row through the steps; the first step that settles it decides."""
        request = PostRequest(row.id, self.name, row.text, row.created_at)
        maybe_online = row.status == "failed" and row.error_kind == AMBIGUOUS
        if maybe_online:
            settled = self.reconcile(row, request, now)
            if settled is not None:
                return settled
        settled = self.apply_policy(row, now, maybe_online)
        if settled is not None:
            return settled
        return self.send(row, request, now)

    def reconcile(self, row: OutboxRow, request: PostRequest, now: datetime) -> After | None:
        """An ambiguous row: settled when the backend finds it online, or when it cannot tell
        and a re-send is no longer idempotent. None: absent (checked) or unknown but
        idempotent, so the normal path may send it."""
        try:
            found = self.backend.lookup(request)
        except PostError as exc:
            mark_failed(
                self.conn,
                row.id,
                kind=AMBIGUOUS,
                error=f"{row.last_error or 'ambiguous'}; lookup failed: {exc}",
                not_before=max(exc.retry_at or now, now) + AMBIGUOUS_RECHECK,
                now=now,
            )
            self.summary.failed[row.id] = f"lookup: {exc}"
            return After.STOP_BACKEND
        if found.state == POSTED_L:
            mark_posted(
                self.conn,
                row.id,
                external_id=found.external_id,
                now=now,
                note="reconciled: found on the network",
            )
            self.summary.reconciled.append(row.id)
            return After.NEXT_ROW
        if found.state == UNKNOWN_L:
            window = self.backend.resend_window
            since = now - (row.sending_at or now)
            if window is None or since > window:
                mark_failed(
                    self.conn,
                    row.id,
                    kind=AMBIGUOUS,
                    error=(
                        f"{row.last_error or 'ambiguous'}; cannot tell whether it was posted and "
                        "a re-send is no longer idempotent: not re-sent. Operator: "
                        f"`peebot posts skip {row.id}` if it is online, "
                        f"`peebot posts retry {row.id}` to send it"
                    ),
                    not_before=None,
                    now=now,
                )
                self.summary.failed[row.id] = "ambiguous, needs an operator"
                return After.NEXT_ROW
        return None

    def apply_policy(self, row: OutboxRow, now: datetime, maybe_online: bool) -> After | None:
        """Skipped or deferred by the policy (settled), or None: send it now."""
        if not row.text:
            mark_skipped(self.conn, row.id, reason="empty text", now=now)
            self.summary.skipped[row.id] = "empty text"
            return After.NEXT_ROW
        decision = decide(
            now=now,
            event_type=row.event.event_type,
            detected_at=row.event.detected_at,
            metadata=row.event.metadata,
            retracted=row.retracted,
            recent_sends=recent_sends(self.conn, self.name, now, exclude=row.id),
            limits=self.settings.limits_for(self.name),
            settings=self.settings,
        )
        if decision.action == "skip":
            reason = decision.reason
            if maybe_online:
                reason += " (an earlier attempt may have been posted)"
            mark_skipped(self.conn, row.id, reason=reason, now=now)
            self.summary.skipped[row.id] = reason
            return After.NEXT_ROW
        if decision.action == "defer":
            assert decision.until is not None
            mark_deferred(self.conn, row.id, until=decision.until, reason=decision.reason, now=now)
            self.summary.deferred[row.id] = decision.until
            return After.NEXT_ROW  # every row waiting for the gap gets its not_before in this run
        return None

    def send(self, row: OutboxRow, request: PostRequest, now: datetime) -> After:
        """Mark `sending` (committed), post, record the id or the classified failure."""
        if not mark_sending(self.conn, row.id, now):
            return After.NEXT_ROW  # the row or its event went away meanwhile
        attempts = row.attempts + 1
        if self.hook is not None:
            self.hook("sending", row)
        try:
            result = self.backend.post(request)
        except PostError as exc:
            return self.record_error(row, exc, attempts, now)
        except Exception as exc:  # an unexpected failure after `sending`: we cannot know
            err = PostError(AMBIGUOUS, f"unexpected {type(exc).__name__}: {exc}")
            return self.record_error(row, err, attempts, now)
        mark_posted(self.conn, row.id, external_id=result.external_id, now=now)
        self.summary.posted.append(row.id)
        log.info("posting: %s post %s -> %s", self.name, row.id, result.external_id)
        return After.NEXT_ROW

    def record_error(self, row: OutboxRow, exc: PostError, attempts: int, now: datetime) -> After:
        """A failed post by its kind: duplicate (posted), permanent, retry, ambiguous."""
        if exc.kind == DUPLICATE:
            mark_posted(
                self.conn,
                row.id,
                external_id=exc.external_id,
                now=now,
                duplicate=True,
                note=exc.message,
            )
            self.summary.duplicates.append(row.id)
            return After.NEXT_ROW
        self.summary.failed[row.id] = str(exc)
        if exc.kind == PERMANENT:
            mark_failed(
                self.conn, row.id, kind=PERMANENT, error=exc.message, not_before=None, now=now
            )
            return After.NEXT_ROW
        give_up = attempts >= self.settings.max_attempts
        if exc.kind == RETRY:
            if give_up:
                mark_failed(
                    self.conn,
                    row.id,
                    kind=PERMANENT,
                    error=f"gave up after {attempts} attempts: {exc.message}",
                    not_before=None,
                    now=now,
                )
                return After.NEXT_ROW
            retry_at = exc.retry_at or now + (exc.retry_after or retry_backoff(attempts))
            mark_failed(
                self.conn,
                row.id,
                kind=RETRY,
                error=exc.message,
                not_before=max(retry_at, now + timedelta(seconds=1)),
                now=now,
            )
            return After.NEXT_ROW  # the rows after this one are deferred too (blocked_until)
        # ambiguous: reconciled on a later run (lookup or idempotent re-send), never blindly
        mark_failed(
            self.conn,
            row.id,
            kind=AMBIGUOUS,
            error=exc.message + ("; gave up re-checking" if give_up else ""),
            not_before=None if give_up else now + AMBIGUOUS_RECHECK,
            now=now,
        )
        return After.STOP_BACKEND
