"""The whole `peebot status` screen as plain data (what `--json` prints): one connection to
the application database for its sections, then Dagster's instance storage."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from peebot.settings import Settings, get_settings
from peebot.status import queries
from peebot.status.dagster_probe import dagster_status


def collect(
    url: str,
    now: datetime | None = None,
    with_dagster: bool = True,
    settings: Settings | None = None,
) -> dict[str, Any]:
    from peebot_ingest.db import connect
    from peebot_ingest.migrations import discover_migrations

    settings = settings or get_settings()
    now = now or datetime.now(UTC)
    with connect(url, autocommit=True) as conn:
        health = queries.ingest_health(conn, now)
        health["database"] = queries.database_info(conn)
        health["readings_per_minute"] = queries.readings_per_minute(conn, now)
        health["latest_events"] = queries.latest_events(conn)
        health["events_by_type_24h"] = queries.event_counts(conn, now)
        health["posts_overview"] = queries.post_overview(conn)
    health["database"]["schema_latest"] = max((m.version for m in discover_migrations()), default=0)
    # its own clock: opening the instance takes seconds, and tick ages must not go negative
    health["dagster"] = (
        dagster_status(settings, url) if with_dagster else {"available": False, "reason": "skipped"}
    )
    return health
