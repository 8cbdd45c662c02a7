"""What the `peebot` command line reads from the environment and `.env`, typed and loaded once.

The packages below the CLI each have their own `settings.py`; this one holds what the
composition root itself needs (where PeeBot and Dagster keep their files, Dagster's storage,
the live dashboard's address, token and bounds).
Tests that change the environment call `get_settings.cache_clear()`.
"""

from __future__ import annotations

import functools
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """The `peebot` command line's settings (`PEEBOT_*`, plus Dagster's own `DAGSTER_HOME`)."""

    model_config = SettingsConfigDict(
        env_prefix="PEEBOT_",
        env_file=".env",
        extra="ignore",
        # an empty value (`NAME=`, as in .env.example) means "unset", not "the empty string"
        env_ignore_empty=True,
        populate_by_name=True,
    )

    home: Path = Field(
        default=Path(".peebot"),
        description="PEEBOT_HOME: the embedded database, Dagster's home, dry-run posts and "
        "simulator truth live here.",
    )
    dagster_home: Path | None = Field(
        default=None,
        validation_alias="DAGSTER_HOME",
        description="DAGSTER_HOME: Dagster's instance folder (holding dagster.yaml); unset: "
        "$PEEBOT_HOME/dagster, where `peebot up` puts it.",
    )
    dagster_storage_url: str | None = Field(
        default=None,
        description="PEEBOT_DAGSTER_STORAGE_URL: SQLAlchemy URL of Dagster's instance storage "
        "(psycopg2 driver named); unset: database `peebot_dagster` on the application "
        "database's server.",
    )

    # -- the live dashboard (`peebot dashboard`) --
    dashboard_host: str = Field(
        default="127.0.0.1",
        description="PEEBOT_DASHBOARD_HOST: address the dashboard binds; behind a reverse "
        "proxy keep 127.0.0.1.",
    )
    dashboard_port: int = Field(
        default=8000, ge=0, le=65535, description="PEEBOT_DASHBOARD_PORT: its port."
    )
    dashboard_token: str = Field(
        default="",
        description="PEEBOT_DASHBOARD_TOKEN: bearer token that turns on POST /api/inject; "
        "empty: the endpoint is off.",
    )
    dashboard_client_queue: int = Field(
        default=256,
        ge=1,
        description="PEEBOT_DASHBOARD_CLIENT_QUEUE: messages waiting for one WebSocket client; "
        "a client that falls this far behind is dropped (it reconnects to the current state).",
    )
    dashboard_max_clients: int = Field(
        default=2000,
        ge=1,
        description="PEEBOT_DASHBOARD_MAX_CLIENTS: WebSocket clients at once; more get 503.",
    )
    dashboard_history_hours: float = Field(
        default=6.0,
        gt=0,
        le=48,
        description="PEEBOT_DASHBOARD_HISTORY_HOURS: hours of tank level on the live chart.",
    )
    mastodon_base_url: str = Field(
        default="",
        description="PEEBOT_MASTODON_BASE_URL: the posting backend's Mastodon server; the "
        "dashboard links to posts there.",
    )

    @field_validator("dagster_home", "dagster_storage_url", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value.strip() if isinstance(value, str) else value


@functools.cache
def get_settings() -> Settings:
    """The settings, read from the environment (and `.env`) on first use."""
    return Settings()
