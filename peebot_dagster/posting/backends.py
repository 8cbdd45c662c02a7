"""Where posts go: one small interface, four backends.

Every backend turns a `PostRequest` into a `PostResult` (the external id) or raises a
`PostError` whose `kind` is one of retry / permanent / duplicate / ambiguous:

- retry      the network refused it for now (429, a connection that never opened);
             `retry_at` says when (the rate-limit reset when the server gave one)
- permanent  it will never work as is (bad credentials, no write permission, invalid text)
- duplicate  the network already has it: counts as posted
- ambiguous  it may or may not have been posted (timeout after sending, 5xx); the outbox
             reconciles it (`lookup`, or an idempotent re-send within `resend_window`),
             never a blind re-send

Nothing here sleeps on a rate limit, and no secret is ever logged or put in a message.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

log = logging.getLogger("peebot.posting")

RETRY, PERMANENT, DUPLICATE, AMBIGUOUS = "retry", "permanent", "duplicate", "ambiguous"
ERROR_KINDS = (RETRY, PERMANENT, DUPLICATE, AMBIGUOUS)

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
    # How long after the first attempt an unverified re-send is still safe (idempotent).
    resend_window: ClassVar[timedelta | None] = None

    def post(self, request: PostRequest) -> PostResult:
        raise NotImplementedError

    def lookup(self, request: PostRequest) -> Lookup:
        return Lookup(UNKNOWN_L)

    def close(self) -> None:
        return None


def _require(backend: str, env: Mapping[str, str], names: list[str]) -> dict[str, str]:
    values = {n: env.get(n, "").strip() for n in names}
    missing = [n for n, v in values.items() if not v]
    if missing:
        raise MissingCredentials(backend, missing)
    return values


def _timeout(env: Mapping[str, str]) -> float:
    raw = env.get("PEEBOT_POST_TIMEOUT_S", "").strip()
    try:
        return float(raw) if raw else DEFAULT_TIMEOUT_S
    except ValueError:
        raise ValueError(f"PEEBOT_POST_TIMEOUT_S: expected seconds, got {raw!r}") from None


def _home(env: Mapping[str, str]) -> Path:
    return Path(env.get("PEEBOT_HOME", "").strip() or ".peebot")


# --- dry run ---------------------------------------------------------------------------------


class DryRunBackend(Backend):
    """Logs the post and appends one JSON line to `PEEBOT_DRY_RUN_FILE`. Idempotent by key."""

    name = "dry_run"
    resend_window = None  # lookup is authoritative

    def __init__(self, path: Path | str | None = None, *, clock: Any = None) -> None:
        self.path = Path(path) if path else Path(".peebot/posts.jsonl")
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DryRunBackend:
        path = env.get("PEEBOT_DRY_RUN_FILE", "").strip() or str(_home(env) / "posts.jsonl")
        return cls(path)

    def _find(self, key: str) -> dict[str, Any] | None:
        if not self.path.exists():
            return None
        with self.path.open(encoding="utf-8") as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a torn last line from a crash: not a post
                if isinstance(rec, dict) and rec.get("key") == key:
                    return rec
        return None

    def lookup(self, request: PostRequest) -> Lookup:
        rec = self._find(request.key)
        return Lookup(POSTED_L, rec.get("id")) if rec else Lookup(ABSENT_L)

    def post(self, request: PostRequest) -> PostResult:
        with self._lock:
            existing = self._find(request.key)
            if existing:
                err = PostError(DUPLICATE, f"already in {self.path}")
                err.external_id = existing.get("id")
                raise err
            ext_id = f"dry-{request.post_id}"
            rec = {
                "id": ext_id,
                "key": request.key,
                "post_id": request.post_id,
                "text": request.text,
                "at": self._clock().isoformat(),
            }
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
                    fh.flush()
                    os.fsync(fh.fileno())
            except OSError as exc:
                raise PostError(RETRY, f"cannot append to {self.path}: {exc}") from exc
        log.info("dry run post %s: %s", ext_id, request.text.replace("\n", " | "))
        return PostResult(ext_id, f"appended to {self.path}")


# --- X ---------------------------------------------------------------------------------------


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
    def from_env(cls, env: Mapping[str, str]) -> XBackend:
        v = _require(cls.name, env, list(cls.ENV))
        return cls(*(v[n] for n in cls.ENV), timeout=_timeout(env))

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


# --- Bluesky ---------------------------------------------------------------------------------

_B32 = "234567abcdefghijklmnopqrstuvwxyz"  # atproto's base32-sortable alphabet


def record_key(request: PostRequest) -> str:
    """A TID fixed for this outbox row: microseconds of its creation + 10 bits of its id.

    Bluesky post records are keyed by TIDs; choosing it ourselves makes a retry checkable
    (getRecord) and a repeated createRecord a conflict instead of a second post.
    """
    micros = int(request.created_at.timestamp() * 1_000_000) & ((1 << 53) - 1)
    value = (micros << 10) | (request.post_id & 0x3FF)
    out = []
    for _ in range(13):
        out.append(_B32[value & 31])
        value >>= 5
    return "".join(reversed(out))


def classify_bluesky_error(exc: BaseException, now: datetime) -> PostError:
    from atproto_client import exceptions as ax

    if isinstance(exc, ax.RateLimitExceededError):
        after = timedelta(seconds=exc.retry_after) if exc.retry_after is not None else None
        return PostError(
            RETRY,
            "Bluesky rate limit (429)",
            retry_at=exc.reset_at,
            retry_after=after or timedelta(minutes=5),
        )
    if isinstance(exc, ax.InvokeTimeoutError):
        return PostError(AMBIGUOUS, "Bluesky did not answer in time")
    if isinstance(exc, ax.NetworkError):
        status = exc.response.status_code if exc.response is not None else None
        if status is None:
            return PostError(
                AMBIGUOUS, f"Bluesky connection failed: {type(exc.__cause__).__name__}"
            )
        return PostError(AMBIGUOUS, f"Bluesky HTTP {status}")
    if isinstance(exc, ax.UnauthorizedError):
        return PostError(PERMANENT, "Bluesky refused the credentials (401/403)")
    if isinstance(exc, ax.BadRequestError):
        return PostError(PERMANENT, f"Bluesky rejected the post: {exc}")
    if isinstance(exc, ax.RequestException):
        status = exc.response.status_code if exc.response is not None else 0
        if status >= 500:
            return PostError(AMBIGUOUS, f"Bluesky server error {status}")
        return PostError(PERMANENT, f"Bluesky HTTP {status}")
    return PostError(AMBIGUOUS, f"Bluesky call failed: {type(exc).__name__}")


class BlueskyBackend(Backend):
    """Bluesky through atproto. The session string is persisted and reused (logins are
    limited to 30 per 5 min); the record key is chosen by us, so a retry is checkable."""

    name = "bluesky"
    ENV = ("PEEBOT_BLUESKY_HANDLE", "PEEBOT_BLUESKY_APP_PASSWORD")
    resend_window = None  # lookup by record key is authoritative

    def __init__(
        self,
        handle: str,
        app_password: str,
        *,
        session_file: Path | str,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        transport: Any = None,
        clock: Any = None,
    ) -> None:
        self._handle = handle
        self._password = app_password
        self.session_file = Path(session_file)
        self._base_url = base_url
        self._timeout = timeout
        self._transport = transport
        self._clock = clock or (lambda: datetime.now(UTC))
        self._client: Any = None
        self._did: str | None = None

    def __repr__(self) -> str:
        return f"BlueskyBackend(handle={self._handle!r})"

    @classmethod
    def from_env(cls, env: Mapping[str, str], **kwargs: Any) -> BlueskyBackend:
        v = _require(cls.name, env, list(cls.ENV))
        session_file = env.get("PEEBOT_BLUESKY_SESSION_FILE", "").strip() or str(
            _home(env) / "bluesky.session"
        )
        return cls(
            v["PEEBOT_BLUESKY_HANDLE"],
            v["PEEBOT_BLUESKY_APP_PASSWORD"],
            session_file=session_file,
            base_url=env.get("PEEBOT_BLUESKY_BASE_URL", "").strip() or None,
            timeout=_timeout(env),
            **kwargs,
        )

    def _save_session(self, _event: Any, session: Any) -> None:
        self.session_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.session_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(session.encode())
        os.replace(tmp, self.session_file)

    def _connect(self) -> Any:
        if self._client is not None:
            return self._client
        from atproto import Client
        from atproto_client import exceptions as ax
        from atproto_client.request import Request

        kwargs: dict[str, Any] = {"timeout": self._timeout}
        if self._transport is not None:
            kwargs["transport"] = self._transport
        client = Client(self._base_url, request=Request(**kwargs))
        client.on_session_change(self._save_session)
        saved = self.session_file.read_text("utf-8").strip() if self.session_file.exists() else ""
        try:
            if saved:
                try:
                    client.login(session_string=saved, fetch_bsky_profile=False)
                    # a cheap authenticated call: a dead session fails here, not mid-post
                    client.com.atproto.server.get_session()
                except (ax.UnauthorizedError, ax.BadRequestError, ValueError):
                    log.info("bluesky: saved session rejected, logging in again")
                    client = Client(self._base_url, request=Request(**kwargs))
                    client.on_session_change(self._save_session)
                    client.login(self._handle, self._password, fetch_bsky_profile=False)
            else:
                client.login(self._handle, self._password, fetch_bsky_profile=False)
        except Exception as exc:
            raise classify_bluesky_error(exc, self._clock()) from None
        session = client._session
        self._did = session.did if session is not None else None
        self._client = client
        return client

    def lookup(self, request: PostRequest) -> Lookup:
        from atproto_client import exceptions as ax

        client = self._connect()
        try:
            rec = client.app.bsky.feed.post.get(self._did, record_key(request))
        except ax.BadRequestError as exc:
            content = exc.response.content if exc.response is not None else None
            if (
                getattr(content, "error", None) == "RecordNotFound"
                or "not found" in str(exc).lower()
            ):
                return Lookup(ABSENT_L)
            raise classify_bluesky_error(exc, self._clock()) from None
        except Exception as exc:
            raise classify_bluesky_error(exc, self._clock()) from None
        return Lookup(POSTED_L, rec.uri)

    def post(self, request: PostRequest) -> PostResult:
        from atproto_client import exceptions as ax
        from atproto_client import models

        client = self._connect()
        rkey = record_key(request)
        record = models.AppBskyFeedPost.Record(
            created_at=self._clock()
            .astimezone(UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            text=request.text,
            langs=["en"],
        )
        try:
            resp = client.app.bsky.feed.post.create(self._did, record, rkey=rkey)
        except (ax.BadRequestError, ax.NetworkError, ax.RequestException) as exc:
            status = exc.response.status_code if exc.response is not None else None
            if status in (400, 409):
                # a record with our key may already exist (an earlier attempt got through)
                found = self.lookup(request)
                if found.state == POSTED_L:
                    err = PostError(DUPLICATE, f"record {rkey} already exists")
                    err.external_id = found.external_id
                    raise err from None
            raise classify_bluesky_error(exc, self._clock()) from None
        except Exception as exc:
            raise classify_bluesky_error(exc, self._clock()) from None
        return PostResult(resp.uri)

    def close(self) -> None:
        if self._client is not None:
            self._client.request.close()


# --- Mastodon --------------------------------------------------------------------------------


def classify_mastodon_error(exc: BaseException, now: datetime, reset: Any = None) -> PostError:
    import mastodon as m

    if isinstance(exc, m.MastodonRatelimitError):
        retry_at = None
        if isinstance(reset, int | float) and reset > 0:
            retry_at = datetime.fromtimestamp(reset, UTC)
        return PostError(
            RETRY, "Mastodon rate limit", retry_at=retry_at, retry_after=timedelta(minutes=5)
        )
    if isinstance(exc, m.MastodonNetworkError):
        # covers connect failures and read timeouts; with the idempotency key a re-send
        # within the hour is safe, so the outbox reconciles it that way
        return PostError(AMBIGUOUS, f"Mastodon network error: {type(exc).__name__}")
    if isinstance(exc, m.MastodonServerError):
        return PostError(AMBIGUOUS, f"Mastodon server error {_mastodon_status(exc)}")
    if isinstance(exc, m.MastodonUnauthorizedError):
        return PostError(PERMANENT, "Mastodon 401: check PEEBOT_MASTODON_ACCESS_TOKEN")
    if isinstance(exc, m.MastodonAPIError):
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
    def from_env(cls, env: Mapping[str, str]) -> MastodonBackend:
        v = _require(cls.name, env, list(cls.ENV))
        return cls(
            v["PEEBOT_MASTODON_BASE_URL"], v["PEEBOT_MASTODON_ACCESS_TOKEN"], timeout=_timeout(env)
        )

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


# --- selection -------------------------------------------------------------------------------

BACKEND_CLASSES: dict[str, Any] = {
    "dry_run": DryRunBackend,
    "x": XBackend,
    "bluesky": BlueskyBackend,
    "mastodon": MastodonBackend,
}


def build_backends(
    names: tuple[str, ...] | list[str], env: Mapping[str, str] | None = None
) -> dict[str, Backend]:
    """The selected backends, built from the environment.

    Refuses to start (MissingCredentials) when any selected backend lacks a variable; the
    error names every missing variable of every backend at once, never a value.
    """
    env = os.environ if env is None else env
    out: dict[str, Backend] = {}
    problems: list[MissingCredentials] = []
    for name in names:
        cls = BACKEND_CLASSES.get(name)
        if cls is None:
            raise ValueError(f"unknown posting backend {name!r}")
        try:
            out[name] = cls.from_env(env)
        except MissingCredentials as exc:
            problems.append(exc)
    if problems:
        for b in out.values():
            b.close()
        if len(problems) == 1:
            raise problems[0]
        missing = [v for p in problems for v in p.missing]
        err = MissingCredentials(", ".join(p.backend for p in problems), missing)
        raise err
    return out
