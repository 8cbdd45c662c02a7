"""What every posting backend is: the interface, its request and result, its errors.

Every backend turns a `PostRequest` into a `PostResult` (the external id) or raises a
`PostError` whose `kind` is one of retry / permanent / duplicate / ambiguous:

- retry      the network refused it for now (429, a connection that never opened);
             `retry_at` says when (the rate-limit reset when the server gave one)
- permanent  it will never work as is (bad credentials, no write permission, invalid text)
- duplicate  the network already has it: counts as posted
- ambiguous  it may or may not have been posted (timeout after sending, 5xx); the outbox
             reconciles it (`lookup`, or an idempotent re-send within `resend_window`),
             never a blind re-send

Nothing here sleeps on a rate limit, and no secret is ever logged or put in a message. The
backends are dry_run.py, x.py, bluesky.py and mastodon.py; registry.py builds the selected ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import ClassVar

from peebot_dagster.settings import Settings, field_name

RETRY, PERMANENT, DUPLICATE, AMBIGUOUS = "retry", "permanent", "duplicate", "ambiguous"
ERROR_KINDS = (RETRY, PERMANENT, DUPLICATE, AMBIGUOUS)

# PEEBOT_POST_TIMEOUT_S's default, for a backend built directly (tests)
DEFAULT_TIMEOUT_S = 20.0


class MissingCredentials(RuntimeError):
    """A selected backend lacks environment variables; the message names them (never values)."""

    def __init__(self, backend: str, missing: list[str]) -> None:
        self.backend = backend
        self.missing = missing
        super().__init__(
            f"posting backend {backend!r} cannot start: missing environment variable(s) "
            f"{', '.join(missing)} (set them, or remove {backend!r} from PEEBOT_POST_BACKENDS)"
        )


@dataclass(frozen=True)
class PostRequest:
    post_id: int
    backend: str
    text: str
    created_at: datetime  # the outbox row's creation time: stable across retries

    @property
    def key(self) -> str:
        """The idempotency key of this post: the same for every attempt."""
        return f"peebot-post-{self.post_id}"


@dataclass(frozen=True)
class PostResult:
    external_id: str | None
    detail: str = ""


class PostError(Exception):
    def __init__(
        self,
        kind: str,
        message: str,
        *,
        retry_at: datetime | None = None,
        retry_after: timedelta | None = None,
    ) -> None:
        assert kind in ERROR_KINDS, kind
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retry_at = retry_at  # absolute, from the server (a rate-limit reset)
        self.retry_after = retry_after  # relative, when the server gave no time
        self.external_id: str | None = None

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"


@dataclass(frozen=True)
class Lookup:
    """Whether a post reached the network: `posted` (with its id), `absent` or `unknown`."""

    state: str
    external_id: str | None = None


POSTED_L, ABSENT_L, UNKNOWN_L = "posted", "absent", "unknown"


class Backend:
    """The interface. `post` raises `PostError`; `lookup` checks a post by its key."""

    name: ClassVar[str] = "?"
    # The variables holding its credentials, named in MissingCredentials (never their values).
    ENV: ClassVar[tuple[str, ...]] = ()
    # How long after the first attempt an unverified re-send is still safe (idempotent).
    resend_window: ClassVar[timedelta | None] = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Backend:
        """The backend as configured; MissingCredentials when a credential is unset."""
        raise NotImplementedError

    def post(self, request: PostRequest) -> PostResult:
        raise NotImplementedError

    def lookup(self, request: PostRequest) -> Lookup:
        return Lookup(UNKNOWN_L)

    def close(self) -> None:
        return None


def require_credentials(backend: str, settings: Settings, variables: tuple[str, ...]) -> list[str]:
    """The values of `variables` (in order), or MissingCredentials naming every unset one."""
    values = [settings.secret(field_name(var)) for var in variables]
    missing = [var for var, value in zip(variables, values, strict=True) if not value]
    if missing:
        raise MissingCredentials(backend, missing)
    return [value for value in values if value]
