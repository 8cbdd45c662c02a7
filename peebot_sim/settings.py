"""The simulator's settings: the `PEEBOT_SIM_*` variables (and the log level), typed, loaded
once from the environment and `.env` (docs/ARCHITECTURE.md, "Settings"). `peebot simulate`
takes its option defaults from here (an option given on the command line wins); the server
and the feeds take plain arguments, and their defaults are these settings' defaults. An empty
value means "unset"; a bad one stops with one line naming the variable.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from peebot_sim.feeds import DEFAULT_MAX_RATE
from peebot_sim.tlcp import DEFAULT_HOST, DEFAULT_KEEPALIVE_MS, DEFAULT_PORT

PREFIX = "PEEBOT_"


class SettingsError(ValueError):
    """A setting has a value it cannot take; the message is one line."""


class Settings(BaseSettings):
    """`PEEBOT_<FIELD>` for each field (see `.env.example`, which documents every one)."""

    model_config = SettingsConfigDict(
        env_prefix=PREFIX, env_file=".env", extra="ignore", env_ignore_empty=True
    )

    sim_host: str = Field(default=DEFAULT_HOST, description="Address the TLCP server listens on.")
    sim_port: int = Field(default=DEFAULT_PORT, description="Its port.")
    sim_speed: float = Field(default=1.0, description="Simulated seconds per wall-clock second.")
    sim_seed: int = Field(default=0, description="Seed of the model's randomness.")
    sim_start: str | None = Field(
        default=None,
        description="Simulated start: ISO UTC time, 'now' or '-2h'; unset: see simulate.",
    )
    sim_sent_log: Path | None = Field(
        default=None, description="Append every update sent (JSON lines), for loss counting."
    )
    sim_keepalive_ms: int = Field(
        default=DEFAULT_KEEPALIVE_MS, description="PROBE period when a client asks for none."
    )
    sim_max_rate: float = Field(
        default=DEFAULT_MAX_RATE, description="Upper bound on updates/s delivered."
    )
    log_level: str = Field(default="INFO", description="Logging level name.")


@cache
def get_settings() -> Settings:
    """The settings, loaded once (tests that change the environment clear the cache)."""
    try:
        return Settings()
    except ValidationError as exc:
        problems = [
            f"{PREFIX}{'.'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        ]
        raise SettingsError("; ".join(problems)) from None
