"""The dashboard's settings, read once from the environment (and `.env`)."""

from __future__ import annotations

import functools

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """`PEEBOT_DASHBOARD_*`: where the dashboard listens and how much it holds per client."""

    model_config = SettingsConfigDict(env_prefix="PEEBOT_", env_file=".env", extra="ignore")

    dashboard_host: str = Field(
        default="127.0.0.1", description="Address to bind; behind a reverse proxy keep 127.0.0.1."
    )
    dashboard_port: int = Field(default=8000, ge=0, le=65535, description="Port to bind.")
    dashboard_token: str = Field(
        default="",
        description="Bearer token that enables POST /api/inject; empty: the endpoint is off.",
    )
    dashboard_client_queue: int = Field(
        default=256,
        ge=1,
        description="Messages waiting for one WebSocket client; a client that falls this far "
        "behind is dropped (it reconnects and gets the current state).",
    )
    dashboard_max_clients: int = Field(
        default=2000, ge=1, description="WebSocket clients at once; more get HTTP 503."
    )
    dashboard_history_hours: float = Field(
        default=6.0, gt=0, le=48, description="Hours of tank level the live chart shows."
    )
    mastodon_base_url: str = Field(
        default="", description="The posting backend's Mastodon server, for links to its posts."
    )


@functools.cache
def get_settings() -> Settings:
    return Settings()
