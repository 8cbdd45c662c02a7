"""What the `peebot` command line reads from the environment and `.env`, typed and loaded once.

The packages below the CLI each have their own `settings.py`; this one holds what the
composition root itself needs (where PeeBot and Dagster keep their files, Dagster's storage).
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
