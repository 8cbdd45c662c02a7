"""Posting policy: which events post, caps, gaps and skips. Pure functions, no I/O.

`PostingSettings` is the policy's view of the `PEEBOT_POST_*` variables (parsed once by
settings.py); everything here takes explicit arguments (the clock included) so a simulated
day is a plain loop in a test.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from peebot_dagster.settings import (
    DEFAULT_POST_EVENT_TYPES,
    DEFAULT_POST_MIN_CONFIDENCE,
    DEFAULT_POST_SKIP_FLAGS,
    POST_BACKENDS,
    Settings,
)


@dataclass(frozen=True)
class BackendLimits:
    daily_cap: int  # posts in any rolling 24 h
    min_gap: timedelta  # between two posts on this backend


@dataclass(frozen=True)
class PostingSettings:
    backends: tuple[str, ...] = ("dry_run",)
    event_types: tuple[str, ...] = DEFAULT_POST_EVENT_TYPES
    skip_flags: tuple[str, ...] = DEFAULT_POST_SKIP_FLAGS
    min_confidence: float = DEFAULT_POST_MIN_CONFIDENCE
    max_age: timedelta = timedelta(hours=2)
    max_attempts: int = 5
    limits: Mapping[str, BackendLimits] = field(default_factory=dict)
    default_limits: BackendLimits = BackendLimits(12, timedelta(minutes=20))

    def limits_for(self, backend: str) -> BackendLimits:
        return self.limits.get(backend, self.default_limits)

    @classmethod
    def from_settings(cls, settings: Settings) -> PostingSettings:
        """The policy as configured; a backend's own cap or gap
        (`PEEBOT_POST_DAILY_CAP_X`, ...) overrides the common one."""
        cap, gap = settings.post_daily_cap, settings.post_min_gap_minutes
        limits = {}
        for name in POST_BACKENDS:
            own_cap = getattr(settings, f"post_daily_cap_{name}")
            own_gap = getattr(settings, f"post_min_gap_minutes_{name}")
            limits[name] = BackendLimits(
                cap if own_cap is None else own_cap,
                timedelta(minutes=gap if own_gap is None else own_gap),
            )
        return cls(
            backends=settings.post_backends,
            event_types=settings.post_event_types,
            skip_flags=settings.post_skip_flags,
            min_confidence=settings.post_min_confidence,
            max_age=timedelta(minutes=settings.post_max_age_minutes),
            max_attempts=settings.post_max_attempts,
            limits=limits,
            default_limits=BackendLimits(cap, timedelta(minutes=gap)),
        )


@dataclass(frozen=True)
class Decision:
    """`send`, `skip` (with a reason, final) or `defer` (not before `until`, with a reason)."""

    action: str
    reason: str = ""
    until: datetime | None = None

    @staticmethod
    def send() -> Decision:
        return Decision("send")

    @staticmethod
    def skip(reason: str) -> Decision:
        return Decision("skip", reason)

    @staticmethod
    def defer(until: datetime, reason: str) -> Decision:
        return Decision("defer", reason, until)


def event_flags(metadata: Mapping[str, Any] | None) -> set[str]:
    """The event's flags (metadata `flags`, plus a `signal` state of LOS/STALE), lower case."""
    if not metadata:
        return set()
    flags = metadata.get("flags") or []
    if isinstance(flags, str):
        flags = [flags]
    out = {str(f).strip().lower() for f in flags if str(f).strip()}
    signal = metadata.get("signal") or metadata.get("signal_state")
    if isinstance(signal, str) and signal.strip():
        out.add(signal.strip().lower())
    return out


def decide(
    *,
    now: datetime,
    event_type: str,
    detected_at: datetime,
    metadata: Mapping[str, Any] | None,
    retracted: bool,
    recent_sends: Sequence[datetime],
    limits: BackendLimits,
    settings: PostingSettings,
) -> Decision:
    """What to do with one due outbox row right now.

    `recent_sends` are the times this backend went to the network for a post (posted or
    possibly posted) in the last 24 h. Skips are final and carry their reason; a gap only
    defers (the age check then decides whether it is still worth posting).
    """
    if retracted:
        return Decision.skip("event retracted (vanished on re-detection)")
    if event_type not in settings.event_types:
        return Decision.skip(f"event type {event_type!r} does not post")
    bad = sorted(event_flags(metadata) & set(settings.skip_flags))
    if bad:
        return Decision.skip(f"detected during {'/'.join(bad)} (flags: {', '.join(bad)})")
    age = now - detected_at
    if age > settings.max_age:
        return Decision.skip(
            f"too old to be funny: {_minutes(age)} min old (max {_minutes(settings.max_age)} min)"
        )
    window = [t for t in recent_sends if now - t < timedelta(hours=24)]
    if limits.daily_cap <= 0:
        return Decision.skip("daily cap is 0 for this backend")
    if len(window) >= limits.daily_cap:
        return Decision.skip(f"daily cap reached ({len(window)} posts in the last 24 h)")
    if window:
        last = max(window)
        ready = last + limits.min_gap
        if ready > now:
            if ready - detected_at > settings.max_age:
                return Decision.skip(
                    f"minimum gap ({_minutes(limits.min_gap)} min) would make it older than "
                    f"{_minutes(settings.max_age)} min"
                )
            return Decision.defer(ready, f"minimum gap {_minutes(limits.min_gap)} min")
    return Decision.send()


LOW_CONFIDENCE = "low_confidence"


def held_for_review(confidence: float, settings: PostingSettings) -> str | None:
    """The skip reason of an event below the posting floor (it is stored and shown, and
    posts only after `peebot posts approve`), or None when it may post. The reason starts
    with `low_confidence`, the key the review queue and `approve` look for."""
    if confidence >= settings.min_confidence:
        return None
    return f"{LOW_CONFIDENCE}: {confidence:.2f} < {settings.min_confidence:.2f}"


def retry_backoff(attempts: int) -> timedelta:
    """Wait before retry number `attempts + 1` when the server gave no reset time."""
    return timedelta(minutes=min(2 ** max(attempts - 1, 0), 60))


def _minutes(td: timedelta) -> str:
    return f"{td.total_seconds() / 60:.0f}"
