"""The ingest daemon's settings: every `PEEBOT_*` variable `peebot_ingest` reads, typed, with
its default, loaded once from the environment and `.env` (docs/ARCHITECTURE.md, "Settings").

Values are read as they always were: surrounding spaces are ignored, an empty value means
"unset" (the default), switches take on/off, true/false, yes/no or 1/0, and numbers accept any
float notation (a row count of `2e4` is 20000). A bad value stops with one line naming the
variable, e.g. `PEEBOT_CLOCK_CHECK must be on or off, not 'maybe'`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PREFIX = "PEEBOT_"
_ON = ("1", "true", "yes", "on")
_OFF = ("0", "false", "no", "off")


class SettingsError(ValueError):
    """A setting has a value it cannot take; the message is one line."""


class Settings(BaseSettings):
    """`PEEBOT_<FIELD>` for each field (see `.env.example`, which documents every one)."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, env_file=".env", extra="ignore")

    # -- the database
    database_url: str | None = Field(
        default=None, description="Application database; unset: the embedded PostgreSQL under home."
    )
    home: Path = Field(
        default=Path(".peebot"),
        description="Where the embedded database, the journal and the simulator's truth live.",
    )
    timescaledb: str = Field(
        default="auto",
        description="auto | on | off: TimescaleDB when the extension can be created.",
    )
    retention_days: int = Field(default=30, description="Readings older than this are dropped.")
    compress_after_days: int = Field(
        default=7, description="TimescaleDB compresses chunks this old."
    )

    # -- the feed
    feed_url: str = Field(
        default="https://push.lightstreamer.com", description="Lightstreamer server."
    )
    feed_adapter_set: str = Field(default="ISSLIVE", description="Lightstreamer adapter set.")
    feed_transport: str | None = Field(
        default=None, description="Force a transport (WS-STREAMING, HTTP-STREAMING, ...)."
    )
    feed_fast_reconnect: bool = Field(
        default=False, description="Short keepalive and retry timers (local servers, tests)."
    )
    feed_process: bool = Field(
        default=True,
        description="Run the feed client in a child process of its own (off: a thread here).",
    )
    feed_reconnect_seconds: float = Field(
        default=10.0, description="Wait before reconnecting after a terminal server error."
    )

    # -- signal
    clock_check: bool = Field(
        default=True, description="Judge staleness and future times against the wall clock."
    )
    stale_after_seconds: float = Field(
        default=10.0, description="STALE when TIME_000001 has not updated for this long."
    )
    stale_lag_seconds: float = Field(
        default=5.0, description="STALE when TIME_000001's TimeStamp lags the clock by more."
    )

    # -- the writer
    ingest_batch_rows: int = Field(
        default=50_000, description="A batch commits at this many entries."
    )
    ingest_batch_seconds: float = Field(
        default=0.05, description="... or at this age while the writer keeps up."
    )
    ingest_idle_commit_seconds: float = Field(
        default=0.02,
        description="... or, the input drained, this long after the previous commit (0: off).",
    )
    ingest_backlog_seconds: float = Field(
        default=1.0, description="... or, under a backlog, at this age (else only by size)."
    )
    ingest_memory_rows: int = Field(
        default=100_000, description="Entries kept in memory while the database is away."
    )
    ingest_queue_size: int = Field(
        default=50_000, description="Bound of the listener -> writer queue."
    )
    journal_dir: Path | None = Field(
        default=None, description="Spill journal folder; unset: home/journal."
    )

    # -- logs
    summary_seconds: float = Field(default=60.0, description="Seconds between one-line summaries.")
    log_format: str = Field(default="kv", description="kv (key=value) or json.")
    log_level: str = Field(default="INFO", description="Logging level name.")

    @field_validator("*", mode="before")
    @classmethod
    def _from_text(cls, raw: Any, info: ValidationInfo) -> Any:
        """Environment text, read as the daemon always read it (see the module's doc)."""
        if not isinstance(raw, str) or info.field_name is None:
            return raw
        return parse_text(raw, cls.model_fields[info.field_name], PREFIX + info.field_name.upper())


def parse_text(raw: str, field: Any, name: str) -> Any:
    """One variable's text as its field's type; the default when blank; a one-line
    ValueError naming the variable when it cannot be read."""
    text = raw.strip()
    if not text:
        return field.default
    kind = field.annotation
    if kind is bool:
        lowered = text.lower()
        if lowered in _ON:
            return True
        if lowered in _OFF:
            return False
        raise ValueError(f"{name} must be on or off, not {lowered!r}")
    if kind in (int, float):
        try:
            number = float(text)
            return int(number) if kind is int else number
        except (ValueError, OverflowError):
            raise ValueError(f"{name} must be a number, not {text!r}") from None
    return text


def one_line(exc: ValidationError) -> str:
    """A settings validation error as one line: each problem's own message."""
    problems = []
    for error in exc.errors():
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, ValueError):
            problems.append(str(cause))
        else:
            where = ".".join(str(part) for part in error["loc"])
            problems.append(f"{PREFIX}{where.upper()}: {error['msg']}")
    return "; ".join(problems)


@cache
def get_settings() -> Settings:
    """The settings, loaded once (tests that change the environment clear the cache)."""
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(one_line(exc)) from None
