"""Every `PEEBOT_*` variable the Dagster code location reads, parsed in one place.

`get_settings()` loads them once per process from the environment and `.env` (the
environment wins). An empty value means "unset" (the default), except for the two lists
where an empty list means something (`PEEBOT_POST_EVENT_TYPES`, `PEEBOT_POST_SKIP_FLAGS`).
A bad value is a `SettingsError` whose message is one line naming each bad variable; a
secret's value never appears in it, nor in the settings' repr.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_core import PydanticUseDefault
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from peebot_dagster.partitions import MINUTE_FMT

ENV_PREFIX = "PEEBOT_"

# The posting backends PEEBOT_POST_BACKENDS may name (posting/backends/registry.py builds them).
POST_BACKENDS = ("dry_run", "x", "bluesky", "mastodon")
DEFAULT_POST_EVENT_TYPES = ("urination", "bulk_transfer")
DEFAULT_POST_SKIP_FLAGS = ("los", "stale")
# bench/detection.py: "suggested PEEBOT_POST_MIN_CONFIDENCE: 0.60 (least 10 x posted wrong +
# held right)" over the simulated days (a wrong post costs ten held right ones).
DEFAULT_POST_MIN_CONFIDENCE = 0.60

# Lists whose empty value is an empty list, not the default.
_EMPTY_IS_A_VALUE = frozenset({"post_event_types", "post_skip_flags"})

Names = Annotated[tuple[str, ...], NoDecode]


class SettingsError(ValueError):
    """A `PEEBOT_*` variable has a value the code location cannot use (one line)."""


def variable(field: str) -> str:
    """The environment variable of a settings field (`post_daily_cap` -> PEEBOT_POST_DAILY_CAP)."""
    return ENV_PREFIX + field.upper()


def field_name(var: str) -> str:
    """The settings field of an environment variable (the inverse of `variable`)."""
    return var.removeprefix(ENV_PREFIX).lower()


def _names(value: str) -> tuple[str, ...]:
    """A comma list, lower case, without blanks or repeats, in order."""
    return tuple(dict.fromkeys(p.strip().lower() for p in value.split(",") if p.strip()))


class Settings(BaseSettings):
    """The code location's configuration: field `post_daily_cap` is `PEEBOT_POST_DAILY_CAP`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )

    # --- database and files -----------------------------------------------------------------
    database_url: SecretStr | None = Field(
        default=None, description="PeeBot's database (the `db` resource connects to it)."
    )
    home: Path = Field(
        default=Path(".peebot"), description="Where dry-run posts and the Bluesky session live."
    )

    # --- partitions ---------------------------------------------------------------------------
    partitions_start: datetime | None = Field(
        default=None,
        description="First minute partition, YYYY-MM-DD or YYYY-MM-DD-HH:MM (UTC); unset: "
        "`partitions_days` before today.",
    )
    partitions_days: int = Field(
        default=14, ge=1, description="Days of minute partitions by default."
    )
    daily_partitions_start: date | None = Field(
        default=None, description="First daily partition (YYYY-MM-DD); unset: 60 days back."
    )

    # --- the watermark sensor and the live pass ----------------------------------------------
    sensor_interval_seconds: int = Field(
        default=15, ge=1, le=30, description="Watermark sensor tick."
    )
    sensor_initial_minutes: int = Field(
        default=10, ge=1, description="First tick: this many recent complete minutes."
    )
    sensor_max_single_runs: int = Field(
        default=5, ge=0, description="More pending minutes than this become range runs."
    )
    sensor_range_minutes: int = Field(
        default=120, ge=1, description="Minutes per catch-up range run."
    )
    sensor_max_range_runs: int = Field(
        default=4, ge=1, description="Range runs requested per tick."
    )
    live_interval_seconds: int = Field(default=5, ge=1, description="Live pass sensor tick.")
    live_minutes: int = Field(default=3, ge=1, description="Newest minutes each live run covers.")
    live_max_lag_minutes: int = Field(
        default=60, ge=1, description="Older watermarks are left to the watermark pass."
    )

    # --- detection assets and their checks -----------------------------------------------------
    charts_per_run: int = Field(
        default=24, ge=0, description="PNG charts attached per detection run."
    )
    feed_max_lag_seconds: float = Field(
        default=120.0,
        description="Feed freshness: newest reading at most this old while in signal.",
    )
    max_events_per_day: Annotated[dict[str, int], NoDecode] = Field(
        default_factory=dict,
        description="Ceilings per event type and day over the checks' defaults, "
        "`urination=40,los=500`.",
    )

    # --- maintenance ----------------------------------------------------------------------------
    dagster_run_retention_days: int = Field(
        default=7, description="Delete Dagster runs older than this."
    )

    # --- posting ----------------------------------------------------------------------------------
    post_backends: Names = Field(default=("dry_run",), description="Where posts go (comma list).")
    post_event_types: Names = Field(
        default=DEFAULT_POST_EVENT_TYPES, description="Event types that post."
    )
    post_skip_flags: Names = Field(
        default=DEFAULT_POST_SKIP_FLAGS,
        description="Events carrying one of these flags are skipped.",
    )
    post_daily_cap: int = Field(default=12, ge=0, description="Posts per rolling 24 h and backend.")
    post_daily_cap_dry_run: int | None = Field(default=None, ge=0)
    post_daily_cap_x: int | None = Field(default=None, ge=0)
    post_daily_cap_bluesky: int | None = Field(default=None, ge=0)
    post_daily_cap_mastodon: int | None = Field(default=None, ge=0)
    post_min_gap_minutes: float = Field(
        default=20.0, ge=0, description="Minimum gap between two posts."
    )
    post_min_gap_minutes_dry_run: float | None = Field(default=None, ge=0)
    post_min_gap_minutes_x: float | None = Field(default=None, ge=0)
    post_min_gap_minutes_bluesky: float | None = Field(default=None, ge=0)
    post_min_gap_minutes_mastodon: float | None = Field(default=None, ge=0)
    post_min_confidence: float = Field(
        default=DEFAULT_POST_MIN_CONFIDENCE,
        ge=0,
        le=1,
        description=(
            "Events below this confidence are stored and shown but held for review: their "
            "outbox row is `skipped` (low_confidence) until `peebot posts approve ID`."
        ),
    )
    post_max_age_minutes: float = Field(
        default=120.0, ge=0, description="Older events are skipped."
    )
    post_max_attempts: int = Field(
        default=5, ge=1, description="Retries before a post fails for good."
    )
    post_timeout_s: float = Field(
        default=20.0, gt=0, description="Network timeout of a backend call."
    )
    post_sensor_interval_s: int = Field(default=30, ge=1, description="Posting sensor tick.")
    post_trigger_interval_s: int = Field(
        default=2,
        ge=1,
        description="Tick of the sensor that posts right after a detection run stored events.",
    )
    dry_run_file: Path | None = Field(default=None, description="Unset: `home`/posts.jsonl.")

    # --- backend credentials (never logged) --------------------------------------------------------
    x_consumer_key: SecretStr | None = None
    x_consumer_secret: SecretStr | None = None
    x_access_token: SecretStr | None = None
    x_access_token_secret: SecretStr | None = None
    bluesky_handle: str | None = None
    bluesky_app_password: SecretStr | None = None
    bluesky_base_url: str | None = None
    bluesky_session_file: Path | None = Field(
        default=None, description="Unset: `home`/bluesky.session."
    )
    mastodon_base_url: str | None = None
    mastodon_access_token: SecretStr | None = None

    # --- parsing ----------------------------------------------------------------------------------

    @field_validator("partitions_start", mode="before")
    @classmethod
    def _minute(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        for fmt in (MINUTE_FMT, "%Y-%m-%d"):
            try:
                return datetime.strptime(value, fmt).replace(tzinfo=UTC)
            except ValueError:
                continue
        raise ValueError(f"must be YYYY-MM-DD or YYYY-MM-DD-HH:MM (UTC), not {value!r}")

    @field_validator("daily_partitions_start", mode="before")
    @classmethod
    def _day(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return datetime.strptime(value, "%Y-%m-%d").date()
        except ValueError:
            raise ValueError(f"must be YYYY-MM-DD, not {value!r}") from None

    @field_validator("post_backends", mode="before")
    @classmethod
    def _backends(cls, value: Any) -> Any:
        names = _names(value) if isinstance(value, str) else tuple(value)
        unknown = [n for n in names if n not in POST_BACKENDS]
        if unknown:
            raise ValueError(
                f"names unknown backend(s) {', '.join(unknown)} (known: {', '.join(POST_BACKENDS)})"
            )
        return names

    @field_validator("post_event_types", "post_skip_flags", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        return _names(value) if isinstance(value, str) else value

    @field_validator("max_events_per_day", mode="before")
    @classmethod
    def _ceilings(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        limits: dict[str, int] = {}
        for part in filter(None, (p.strip() for p in value.split(","))):
            name, _, number = part.partition("=")
            try:
                limits[name.strip()] = int(number)
            except ValueError:
                raise ValueError(f"expects event_type=number, got {part!r}") from None
        return limits

    # Defined last: pydantic runs "before" validators last-defined first, so every value
    # reaches the parsers above stripped, and an empty one never reaches them.
    @field_validator("*", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any, info: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            if not value and info.field_name not in _EMPTY_IS_A_VALUE:
                raise PydanticUseDefault()
        return value

    # --- loading ----------------------------------------------------------------------------------

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        """Settings from `environ` alone (no process environment, no `.env`): for tests."""
        values: dict[str, Any] = {
            field_name(k.upper()): v for k, v in environ.items() if k.upper().startswith(ENV_PREFIX)
        }
        return _validated(lambda: _OnlyGiven(**values))

    def secret(self, field: str) -> str | None:
        """A credential's value (for the client that needs it; never log it)."""
        value = getattr(self, field)
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        return None if value is None else str(value)


class _OnlyGiven(Settings):
    """Settings from the values given to the constructor only."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def _secret_fields() -> frozenset[str]:
    return frozenset(
        name for name, info in Settings.model_fields.items() if "SecretStr" in str(info.annotation)
    )


def one_line(exc: ValidationError) -> str:
    """Each bad variable with what is wrong, on one line (a secret's value never shown)."""
    secrets = _secret_fields()
    parts = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "?"
        var = variable(field)
        ctx = error.get("ctx") or {}
        shown = "" if field in secrets else f"{error.get('input')!r}"
        kind = error["type"]
        if kind == "value_error":
            parts.append(f"{var} {ctx.get('error')}")
        elif kind in ("int_parsing", "int_from_float"):
            parts.append(f"{var} must be a whole number, not {shown}")
        elif kind == "float_parsing":
            parts.append(f"{var} must be a number, not {shown}")
        elif kind == "greater_than_equal":
            parts.append(f"{var} must be at least {ctx.get('ge'):g}, not {error.get('input')}")
        elif kind == "greater_than":
            parts.append(f"{var} must be more than {ctx.get('gt'):g}, not {error.get('input')}")
        elif kind == "less_than_equal":
            parts.append(f"{var} must be at most {ctx.get('le'):g}, not {error.get('input')}")
        else:
            parts.append(f"{var}: {error['msg']}" + (f", not {shown}" if shown else ""))
    return "; ".join(parts)


def _validated(build: Callable[[], Settings]) -> Settings:
    try:
        return build()
    except ValidationError as exc:
        raise SettingsError(one_line(exc)) from None


@cache
def get_settings() -> Settings:
    """The code location's settings, loaded once per process (tests: `cache_clear()`)."""
    return _validated(lambda: Settings())
