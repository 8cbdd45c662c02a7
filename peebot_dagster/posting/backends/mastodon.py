"""Mastodon through Mastodon.py, with an idempotency key per post (the server keeps it an hour)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from peebot_dagster.posting.backends.base import (
    AMBIGUOUS,
    DEFAULT_TIMEOUT_S,
    PERMANENT,
    RETRY,
    Backend,
    PostError,
    PostRequest,
    PostResult,
    require_credentials,
)
from peebot_dagster.settings import Settings


def classify_mastodon_error(exc: BaseException, now: datetime, reset: Any = None) -> PostError:
    import mastodon

    if isinstance(exc, mastodon.MastodonRatelimitError):
        retry_at = None
        if isinstance(reset, int | float) and reset > 0:
            retry_at = datetime.fromtimestamp(reset, UTC)
        return PostError(
            RETRY, "Mastodon rate limit", retry_at=retry_at, retry_after=timedelta(minutes=5)
        )
    if isinstance(exc, mastodon.MastodonNetworkError):
        # covers connect failures and read timeouts; with the idempotency key a re-send
        # within the hour is safe, so the outbox reconciles it that way
        return PostError(AMBIGUOUS, f"Mastodon network error: {type(exc).__name__}")
    if isinstance(exc, mastodon.MastodonServerError):
        return PostError(AMBIGUOUS, f"Mastodon server error {_mastodon_status(exc)}")
    if isinstance(exc, mastodon.MastodonUnauthorizedError):
        return PostError(PERMANENT, "Mastodon 401: check PEEBOT_MASTODON_ACCESS_TOKEN")
    if isinstance(exc, mastodon.MastodonAPIError):
        status = _mastodon_status(exc)
        detail = exc.args[3] if len(exc.args) > 3 and exc.args[3] else ""
        if status == 429:
            return PostError(RETRY, "Mastodon rate limit", retry_after=timedelta(minutes=5))
        return PostError(PERMANENT, f"Mastodon HTTP {status}: {detail}".rstrip(": "))
    return PostError(AMBIGUOUS, f"Mastodon call failed: {type(exc).__name__}")


def _mastodon_status(exc: BaseException) -> Any:
    return exc.args[1] if len(exc.args) > 1 else "?"


class MastodonBackend(Backend):
    """Mastodon through Mastodon.py, never sleeping on rate limits, with an idempotency key."""

    name = "mastodon"
    ENV = ("PEEBOT_MASTODON_BASE_URL", "PEEBOT_MASTODON_ACCESS_TOKEN")
    resend_window = timedelta(minutes=55)  # the server remembers a key for an hour

    def __init__(
        self,
        base_url: str,
        access_token: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        clock: Any = None,
    ) -> None:
        from mastodon import Mastodon

        self._api = Mastodon(
            access_token=access_token,
            api_base_url=base_url,
            ratelimit_method="throw",
            request_timeout=timeout,
            version_check_mode="none",
        )
        self._clock = clock or (lambda: datetime.now(UTC))

    def __repr__(self) -> str:
        return "MastodonBackend()"

    @classmethod
    def from_settings(cls, settings: Settings) -> MastodonBackend:
        base_url, access_token = require_credentials(cls.name, settings, cls.ENV)
        return cls(base_url, access_token, timeout=settings.post_timeout_s)

    def post(self, request: PostRequest) -> PostResult:
        try:
            status = self._api.status_post(
                request.text, idempotency_key=request.key, visibility="public"
            )
        except Exception as exc:
            raise classify_mastodon_error(exc, self._clock(), self._api.ratelimit_reset) from None
        sid = status.get("id") if isinstance(status, dict) else getattr(status, "id", None)
        if sid is None:
            raise PostError(AMBIGUOUS, "Mastodon answered without a status id")
        return PostResult(str(sid))
