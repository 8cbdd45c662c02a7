"""Bluesky through atproto, with record keys chosen by us so that a retry is checkable."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from peebot_dagster.posting.backends.base import (
    ABSENT_L,
    AMBIGUOUS,
    DEFAULT_TIMEOUT_S,
    DUPLICATE,
    PERMANENT,
    POSTED_L,
    RETRY,
    Backend,
    Lookup,
    PostError,
    PostRequest,
    PostResult,
    require_credentials,
)
from peebot_dagster.settings import Settings

log = logging.getLogger("peebot.posting")

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
    from atproto_client import exceptions

    if isinstance(exc, exceptions.RateLimitExceededError):
        after = timedelta(seconds=exc.retry_after) if exc.retry_after is not None else None
        return PostError(
            RETRY,
            "Bluesky rate limit (429)",
            retry_at=exc.reset_at,
            retry_after=after or timedelta(minutes=5),
        )
    if isinstance(exc, exceptions.InvokeTimeoutError):
        return PostError(AMBIGUOUS, "Bluesky did not answer in time")
    if isinstance(exc, exceptions.NetworkError):
        status = exc.response.status_code if exc.response is not None else None
        if status is None:
            return PostError(
                AMBIGUOUS, f"Bluesky connection failed: {type(exc.__cause__).__name__}"
            )
        return PostError(AMBIGUOUS, f"Bluesky HTTP {status}")
    if isinstance(exc, exceptions.UnauthorizedError):
        return PostError(PERMANENT, "Bluesky refused the credentials (401/403)")
    if isinstance(exc, exceptions.BadRequestError):
        return PostError(PERMANENT, f"Bluesky rejected the post: {exc}")
    if isinstance(exc, exceptions.RequestException):
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
    def from_settings(cls, settings: Settings, **kwargs: Any) -> BlueskyBackend:
        handle, app_password = require_credentials(cls.name, settings, cls.ENV)
        return cls(
            handle,
            app_password,
            session_file=settings.bluesky_session_file or settings.home / "bluesky.session",
            base_url=settings.bluesky_base_url,
            timeout=settings.post_timeout_s,
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
        from atproto import Client, Session
        from atproto_client import exceptions
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
                except (exceptions.UnauthorizedError, exceptions.BadRequestError, ValueError):
                    log.info("bluesky: saved session rejected, logging in again")
                    client = Client(self._base_url, request=Request(**kwargs))
                    client.on_session_change(self._save_session)
                    client.login(self._handle, self._password, fetch_bsky_profile=False)
            else:
                client.login(self._handle, self._password, fetch_bsky_profile=False)
        except Exception as exc:
            raise classify_bluesky_error(exc, self._clock()) from None
        # the account's DID, from the session the client now holds (public API only)
        self._did = Session.decode(client.export_session_string()).did
        self._client = client
        return client

    def lookup(self, request: PostRequest) -> Lookup:
        from atproto_client import exceptions

        client = self._connect()
        try:
            rec = client.app.bsky.feed.post.get(self._did, record_key(request))
        except exceptions.BadRequestError as exc:
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
        from atproto_client import exceptions, models

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
        except (
            exceptions.BadRequestError,
            exceptions.NetworkError,
            exceptions.RequestException,
        ) as exc:
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
