"""Posting policy: which events post, caps, gaps and skips. Pure functions, no I/O.

`PostingSettings.from_env()` reads the `PEEBOT_POST_*` variables once; everything else here
takes explicit arguments (the clock included) so a simulated day is a plain loop in a test.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

KNOWN_BACKENDS = ("dry_run", "x", "bluesky", "mastodon")
DEFAULT_EVENT_TYPES = ("urination", "bulk_transfer")
DEFAULT_SKIP_FLAGS = ("los", "stale")


class SettingsError(ValueError):
    """A `PEEBOT_POST_*` variable has a value we cannot use."""


def _split(value: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p.strip().lower() for p in value.split(",") if p.strip()))


def parse_backends(value: str | None) -> tuple[str, ...]:
    """`PEEBOT_POST_BACKENDS` -> backend names (default `dry_run`); unknown names are an error."""
    names = _split(value) if value and value.strip() else ("dry_run",)
    unknown = [n for n in names if n not in KNOWN_BACKENDS]
    if unknown:
        raise SettingsError(
            f"PEEBOT_POST_BACKENDS: unknown backend(s) {', '.join(unknown)} "
            f"(known: {', '.join(KNOWN_BACKENDS)})"
        )
    return names


def _number(env: Mapping[str, str], name: str, default: float, *, minimum: float = 0) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name}: expected a number, got {raw!r}") from None
    if value != value or value < minimum:
        raise SettingsError(f"{name}: must be >= {minimum:g}, got {raw!r}")
    return value


@dataclass(frozen=True)
class BackendLimits:
    daily_cap: int  # posts in any rolling 24 h
    min_gap: timedelta  # between two posts on this backend


@dataclass(frozen=True)
class PostingSettings:
    backends: tuple[str, ...] = ("dry_run",)
    event_types: tuple[str, ...] = DEFAULT_EVENT_TYPES
    skip_flags: tuple[str, ...] = DEFAULT_SKIP_FLAGS
    max_age: timedelta = timedelta(hours=2)
    max_attempts: int = 5
    limits: Mapping[str, BackendLimits] = field(default_factory=dict)
    default_limits: BackendLimits = BackendLimits(12, timedelta(minutes=20))

    def limits_for(self, backend: str) -> BackendLimits:
        return self.limits.get(backend, self.default_limits)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PostingSettings:
        env = os.environ if env is None else env
        backends = parse_backends(env.get("PEEBOT_POST_BACKENDS"))
        types_raw = env.get("PEEBOT_POST_EVENT_TYPES")
        event_types = _split(types_raw) if types_raw is not None else DEFAULT_EVENT_TYPES
        flags_raw = env.get("PEEBOT_POST_SKIP_FLAGS")
        skip_flags = _split(flags_raw) if flags_raw is not None else DEFAULT_SKIP_FLAGS
        cap = int(_number(env, "PEEBOT_POST_DAILY_CAP", 12))
        gap = _number(env, "PEEBOT_POST_MIN_GAP_MINUTES", 20)
        default = BackendLimits(cap, timedelta(minutes=gap))
        limits = {}
        for name in KNOWN_BACKENDS:
            suffix = name.upper()
            limits[name] = BackendLimits(
                int(_number(env, f"PEEBOT_POST_DAILY_CAP_{suffix}", cap)),
                timedelta(minutes=_number(env, f"PEEBOT_POST_MIN_GAP_MINUTES_{suffix}", gap)),
            )
        return cls(
            backends=backends,
            event_types=event_types,
            skip_flags=skip_flags,
            max_age=timedelta(minutes=_number(env, "PEEBOT_POST_MAX_AGE_MINUTES", 120)),
            max_attempts=int(_number(env, "PEEBOT_POST_MAX_ATTEMPTS", 5, minimum=1)),
            limits=limits,
            default_limits=default,
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


def retry_backoff(attempts: int) -> timedelta:
    """Wait before retry number `attempts + 1` when the server gave no reset time."""
    return timedelta(minutes=min(2 ** max(attempts - 1, 0), 60))


def _minutes(td: timedelta) -> str:
    return f"{td.total_seconds() / 60:.0f}"
