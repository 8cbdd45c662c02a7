"""The Dagster side of `peebot status`: the daemon's heartbeats and the sensor and schedule
states, read from Dagster's own instance storage. Never raises: whatever stops the instance
from opening (no dagster.yaml, storage down, bad config) is one line of reason.

Dagster's storage URL reaches the instance as explicit config, never through the process
environment: the instance config `peebot up` writes (`peebot/config/dagster.yaml`) says
`postgres_url: {env: PEEBOT_DAGSTER_STORAGE_URL}`, and that reference is replaced by the URL
in the settings (or the default `peebot up` uses) before the instance is built
(docs/ARCHITECTURE.md, "Dagster's own storage").
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from peebot.settings import Settings
from peebot.status.shaping import HeartbeatView, summarize_heartbeats

STORAGE_VAR = "PEEBOT_DAGSTER_STORAGE_URL"


def locate_dagster_home(dagster_home: Path | None, peebot_home: Path) -> tuple[Path | None, str]:
    """`dagster_home` ($DAGSTER_HOME) when it holds a dagster.yaml, else `$PEEBOT_HOME/dagster`
    (where `peebot up` puts it); otherwise None and why."""
    tried = []
    if dagster_home is not None:
        candidate = dagster_home.expanduser().resolve()
        if (candidate / "dagster.yaml").is_file():
            return candidate, ""
        tried.append(str(candidate))
    fallback = peebot_home.expanduser().resolve() / "dagster"
    if (fallback / "dagster.yaml").is_file():
        return fallback, ""
    tried.append(str(fallback))
    return None, f"no dagster.yaml in {' or '.join(tried)} (run `peebot up`)"


def default_dagster_storage_url(app_url: str) -> str:
    """What `peebot up` uses when PEEBOT_DAGSTER_STORAGE_URL is unset: database
    `peebot_dagster` on the application database's server (not created here)."""
    from peebot_ingest import db as database

    return database.sqlalchemy_url(database.with_database(app_url, database.DAGSTER_DB_NAME))


def references_env(config: Any, name: str) -> bool:
    """Whether Dagster config (parsed YAML) reads environment variable `name` anywhere."""
    if isinstance(config, Mapping):
        if dict(config) == {"env": name}:
            return True
        return any(references_env(v, name) for v in config.values())
    if isinstance(config, list):
        return any(references_env(v, name) for v in config)
    return False


def with_env_value(config: Any, name: str, value: str) -> Any:
    """`config` with every `{env: name}` reference replaced by `value` (a new structure)."""
    if isinstance(config, Mapping):
        if dict(config) == {"env": name}:
            return value
        return {k: with_env_value(v, name, value) for k, v in config.items()}
    if isinstance(config, list):
        return [with_env_value(v, name, value) for v in config]
    return config


def storage_overrides(config: Mapping[str, Any], name: str, value: str) -> dict[str, Any]:
    """The top-level sections of an instance config that read `name`, with `value` in its
    place: Dagster merges instance overrides section by section (a shallow merge)."""
    return {
        key: with_env_value(section, name, value)
        for key, section in config.items()
        if references_env(section, name)
    }


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if len(text) > 160:
        text = text[:157] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _check_postgres_storage(sqlalchemy_url: str) -> str | None:
    """Probe Dagster's PostgreSQL storage with a short timeout (Dagster's own connection has
    none and retries): None when reachable, else the reason."""
    from peebot_ingest import db as database

    scheme, sep, rest = sqlalchemy_url.partition("://")
    if not sep or not scheme.startswith("postgres"):
        return None
    try:
        with database.connect(f"postgresql://{rest}", connect_timeout=3):
            return None
    except database.DatabaseError as exc:
        return str(exc)


def _open_instance(home: Path, overrides: dict[str, Any]) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from dagster import DagsterInstance
        from dagster._core.instance.ref import InstanceRef  # the type `from_ref` takes

        return DagsterInstance.from_ref(InstanceRef.from_dir(str(home), overrides=overrides))


def dagster_status(
    settings: Settings, app_url: str | None, now: datetime | None = None
) -> dict[str, Any]:
    """Daemon heartbeats and sensor/schedule states from Dagster's instance storage.
    Never raises: {"available": False, "reason": ...} when no instance can be opened."""
    import yaml

    home, reason = locate_dagster_home(settings.dagster_home, settings.home)
    if home is None:
        return {"available": False, "reason": reason}
    try:
        config = yaml.safe_load((home / "dagster.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return {"available": False, "home": str(home), "reason": _one_line(exc)}
    if not isinstance(config, dict):
        return {"available": False, "home": str(home), "reason": "dagster.yaml is not a mapping"}
    overrides: dict[str, Any] = {}
    if references_env(config, STORAGE_VAR):
        url = settings.dagster_storage_url or (
            default_dagster_storage_url(app_url) if app_url else None
        )
        if not url:
            return {"available": False, "home": str(home), "reason": f"{STORAGE_VAR} unset"}
        problem = _check_postgres_storage(url)
        if problem:
            return {"available": False, "home": str(home), "reason": problem}
        overrides = storage_overrides(config, STORAGE_VAR, url)
    try:
        instance = _open_instance(home, overrides)
    except Exception as exc:  # any storage or config problem: one line, not a traceback
        return {"available": False, "home": str(home), "reason": _one_line(exc)}
    # after the (slow) open, so tick and heartbeat ages do not go negative
    now = now or datetime.now(UTC)
    try:
        heartbeats = [
            HeartbeatView(
                daemon_type=str(kind), timestamp=hb.timestamp, errors=len(hb.errors or [])
            )
            for kind, hb in instance.get_daemon_heartbeats().items()
        ]
        instigators = _instigators(instance, now)
    except Exception as exc:
        return {"available": False, "home": str(home), "reason": _one_line(exc)}
    finally:
        instance.dispose()
    return {
        "available": True,
        "home": str(home),
        "daemon": summarize_heartbeats(heartbeats, now),
        "instigators": instigators,
    }


def _instigators(instance: Any, now: datetime) -> list[dict[str, Any]]:
    states = sorted(
        instance.all_instigator_state(),
        key=lambda s: (s.instigator_type.value, s.instigator_name),
    )
    last_ticks: dict[str, Any] = {}
    if states and instance.supports_batch_tick_queries:
        batch = instance.get_batch_ticks([s.selector_id for s in states], limit=1)
        last_ticks = {k: v[0] for k, v in batch.items() if v}
    out = []
    for s in states:
        tick = last_ticks.get(s.selector_id)
        data = s.instigator_data
        tick_ts = tick.timestamp if tick else getattr(data, "last_tick_timestamp", None)
        out.append(
            {
                "name": s.instigator_name,
                "type": s.instigator_type.value,
                "status": s.status.value,
                "last_tick": datetime.fromtimestamp(tick_ts, UTC) if tick_ts else None,
                "last_tick_age_s": round(now.timestamp() - tick_ts, 1) if tick_ts else None,
                "last_tick_status": tick.status.value if tick else None,
            }
        )
    return out
