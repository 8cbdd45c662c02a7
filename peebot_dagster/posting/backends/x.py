"""X through tweepy (OAuth 1.0a user context). A 429 is the outbox's to handle, never slept on."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from peebot_dagster.posting.backends.base import (
    AMBIGUOUS,
    DEFAULT_TIMEOUT_S,
    DUPLICATE,
    PERMANENT,
    RETRY,
    Backend,
    PostError,
    PostRequest,
    PostResult,
    require_credentials,
)
from peebot_dagster.settings import Settings


def _x_reset(headers: Mapping[str, str]) -> datetime | None:
    raw = headers.get("x-rate-limit-reset")
    try:
        return datetime.fromtimestamp(int(raw), UTC) if raw else None
    except (TypeError, ValueError, OverflowError):
        return None


def classify_x_error(exc: BaseException, now: datetime) -> PostError:
    """Map a tweepy/requests exception to a PostError (pure; exposed for tests)."""
    import requests
    import tweepy

    if isinstance(exc, tweepy.TooManyRequests):
        reset = _x_reset(exc.response.headers) if exc.response is not None else None
        return PostError(
            RETRY, "X rate limit (429)", retry_at=reset, retry_after=timedelta(minutes=15)
        )
    if isinstance(exc, tweepy.Forbidden):
        messages = " ".join(str(m) for m in exc.api_messages)
        if "duplicate content" in messages.lower():
            return PostError(DUPLICATE, f"X says duplicate content: {messages}")
        return PostError(
            PERMANENT,
            f"X 403 Forbidden: {messages or 'no detail'} (is the app 'Read and write' "
            "and the access token regenerated after setting it?)",
        )
    if isinstance(exc, tweepy.Unauthorized):
        return PostError(PERMANENT, "X 401 Unauthorized: check the consumer key and access token")
    if isinstance(exc, tweepy.BadRequest | tweepy.NotFound):
        msg = " ".join(str(m) for m in exc.api_messages)
        return PostError(PERMANENT, f"X {exc.response.status_code}: {msg or 'rejected'}")
    if isinstance(exc, tweepy.TwitterServerError):
        # the tweet may have been created before the server failed: reconcile by re-sending
        # the identical text ("duplicate content" then means it was posted)
        return PostError(AMBIGUOUS, f"X server error {exc.response.status_code}")
    if isinstance(exc, tweepy.HTTPException):
        return PostError(PERMANENT, f"X HTTP {exc.response.status_code}")
    if isinstance(exc, requests.ConnectTimeout) or _never_sent(exc):
        return PostError(RETRY, f"X connection could not be opened: {type(exc).__name__}")
    if isinstance(exc, requests.ReadTimeout):
        return PostError(AMBIGUOUS, "X did not answer in time (request may have been taken)")
    if isinstance(exc, requests.ConnectionError):
        return PostError(AMBIGUOUS, f"X connection dropped: {type(exc).__name__}")
    return PostError(AMBIGUOUS, f"X call failed: {type(exc).__name__}")


def _never_sent(exc: BaseException) -> bool:
    """True when the connection never opened (so X cannot have seen the request)."""
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, NewConnectionError | ConnectTimeoutError):
            return True
        if isinstance(e, BaseException):
            stack.extend([e.__cause__, e.__context__, getattr(e, "reason", None), *e.args])
    return False


class _TimeoutSession:
    """Gives every request of a requests.Session a default timeout (tweepy sets none)."""

    @staticmethod
    def install(session: Any, timeout: float) -> None:
        original = session.request

        def request(method: str, url: str, **kwargs: Any) -> Any:
            kwargs.setdefault("timeout", timeout)
            return original(method, url, **kwargs)

        session.request = request


class XBackend(Backend):
    """X through tweepy.Client, OAuth 1.0a user context. 429 is handled by the outbox."""

    name = "x"
    ENV = (
        "PEEBOT_X_CONSUMER_KEY",
        "PEEBOT_X_CONSUMER_SECRET",
        "PEEBOT_X_ACCESS_TOKEN",
        "PEEBOT_X_ACCESS_TOKEN_SECRET",
    )
    # Re-sending the identical text is how X posts are reconciled ("duplicate content" means
    # it is already there). X does not document how long it remembers; stay well inside a day.
    resend_window = timedelta(hours=12)

    def __init__(
        self,
        consumer_key: str,
        consumer_secret: str,
        access_token: str,
        access_token_secret: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        clock: Any = None,
    ) -> None:
        import tweepy

        self._client = tweepy.Client(
            consumer_key=consumer_key,
            consumer_secret=consumer_secret,
            access_token=access_token,
            access_token_secret=access_token_secret,
            wait_on_rate_limit=False,
        )
        _TimeoutSession.install(self._client.session, timeout)
        self._clock = clock or (lambda: datetime.now(UTC))

    def __repr__(self) -> str:  # never show the tokens
        return "XBackend()"

    @classmethod
    def from_settings(cls, settings: Settings) -> XBackend:
        key, secret, token, token_secret = require_credentials(cls.name, settings, cls.ENV)
        return cls(key, secret, token, token_secret, timeout=settings.post_timeout_s)

    def post(self, request: PostRequest) -> PostResult:
        try:
            resp = self._client.create_tweet(text=request.text, user_auth=True)
        except Exception as exc:
            raise classify_x_error(exc, self._clock()) from None
        data = getattr(resp, "data", None) or {}
        tweet_id = data.get("id") if isinstance(data, dict) else None
        if not tweet_id:
            raise PostError(AMBIGUOUS, "X answered without a tweet id")
        return PostResult(str(tweet_id))

    def close(self) -> None:
        self._client.session.close()
