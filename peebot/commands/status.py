"""`peebot status`: PeeBot on one screen, read from the databases (so it works from any
machine, whether or not the daemon runs here): the database, ingest lag and signal, readings
per minute, the latest events, the posting outbox, and the Dagster daemon's heartbeat and
sensor states (read from Dagster's own storage; unavailable is one line, never an error)."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from peebot.commands import one_line_errors

KEY_ITEMS = (
    "TIME_000001",
    "TIME_000002",
    "NODE3000005",
    "NODE3000004",
    "NODE3000008",
    "NODE3000009",
)


def ingest_health(url: str, now: datetime | None = None) -> dict[str, Any]:
    """Everything `peebot status` shows about ingest, as plain data."""
    from peebot_ingest.db import connect

    now = now or datetime.now(UTC)
    with connect(url, autocommit=True) as conn:
        items = []
        for item_id in KEY_ITEMS:
            # one index probe per item: (channel_id, ts desc)
            row = conn.execute(
                """
                SELECT r.ts, r.value, r.status_class, r.ingested_at
                FROM telemetry_channel c
                JOIN LATERAL (SELECT ts, value, status_class, ingested_at
                              FROM telemetry_reading WHERE channel_id = c.id
                              ORDER BY ts DESC LIMIT 1) r ON true
                WHERE c.item_id = %s
                """,
                (item_id,),
            ).fetchone()
            items.append(
                {
                    "item": item_id,
                    "ts": row[0] if row else None,
                    "value": row[1] if row else None,
                    "status_class": row[2] if row else None,
                    "ingested_at": row[3] if row else None,
                    "age_s": (now - row[0]).total_seconds() if row else None,
                }
            )
        counts: Any = conn.execute(
            """
            SELECT count(*) FILTER (WHERE ts >= %(now)s - interval '1 minute'),
                   count(*)
            FROM telemetry_reading WHERE ts >= %(now)s - interval '1 hour'
            """,
            {"now": now},
        ).fetchone()
        rejected: Any = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE received_at >= %s - interval '1 hour') "
            "FROM rejected_update",
            (now,),
        ).fetchone()
        watermark = conn.execute(
            "SELECT last_processed_at, last_run_at, state_data FROM processor_state "
            "WHERE processor_name = 'ingest'"
        ).fetchone()
        latest: dict[str, Any] = {}
        for kind in ("signal", "connection"):
            row = conn.execute(
                "SELECT state, changed_at, feed_ts, detail FROM feed_status WHERE kind = %s "
                "ORDER BY changed_at DESC, id DESC LIMIT 1",
                (kind,),
            ).fetchone()
            latest[kind] = (
                {"state": row[0], "since": row[1], "feed_ts": row[2], "detail": row[3]}
                if row
                else None
            )
        events: Any = conn.execute(
            "SELECT count(*) FILTER (WHERE detected_at >= %s - interval '1 day'), count(*) "
            "FROM detected_event WHERE retracted_at IS NULL",
            (now,),
        ).fetchone()
        posts = dict(
            conn.execute("SELECT status, count(*) FROM social_post GROUP BY status").fetchall()
        )
    time_row = items[0]
    return {
        "now": now,
        "items": items,
        "lag_s": time_row["age_s"],
        "rows_last_minute": int(counts[0]),
        "rows_last_hour": int(counts[1]),
        "rejected_total": int(rejected[0]),
        "rejected_last_hour": int(rejected[1]),
        "watermark": watermark[0] if watermark else None,
        "last_write": watermark[1] if watermark else None,
        "write_age_s": (now - watermark[1]).total_seconds() if watermark and watermark[1] else None,
        "counters": watermark[2] if watermark else {},
        "signal": latest["signal"],
        "connection": latest["connection"],
        "events_last_day": int(events[0]),
        "events_total": int(events[1]),
        "posts": {str(k): int(v) for k, v in posts.items()},
    }


# --------------------------------------------------------------------------- Dagster


def locate_dagster_home() -> tuple[Path | None, str]:
    """`$DAGSTER_HOME` when it holds a dagster.yaml, else `$PEEBOT_HOME/dagster` (where
    `peebot up` puts it); otherwise None and why."""
    from peebot_ingest.db import peebot_home

    tried = []
    env_home = os.environ.get("DAGSTER_HOME", "").strip()
    if env_home:
        candidate = Path(env_home).expanduser().resolve()
        if (candidate / "dagster.yaml").is_file():
            return candidate, ""
        tried.append(str(candidate))
    fallback = peebot_home() / "dagster"
    if (fallback / "dagster.yaml").is_file():
        return fallback, ""
    tried.append(str(fallback))
    return None, f"no dagster.yaml in {' or '.join(tried)} (run `peebot up`)"


def default_dagster_storage_url(app_url: str) -> str:
    """What `peebot up` uses when PEEBOT_DAGSTER_STORAGE_URL is unset: database
    `peebot_dagster` on the application database's server (not created here)."""
    from peebot_ingest import db as database

    return database.sqlalchemy_url(database.with_database(app_url, database.DAGSTER_DB_NAME))


@contextmanager
def _env_default(name: str, value: str | None) -> Iterator[None]:
    """Set an environment variable for the block if it is unset."""
    if value is None or os.environ.get(name, "").strip():
        yield
        return
    os.environ[name] = value
    try:
        yield
    finally:
        os.environ.pop(name, None)


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


def dagster_status(app_url: str | None, now: datetime | None = None) -> dict[str, Any]:
    """Daemon heartbeats and sensor/schedule states from Dagster's instance storage.
    Never raises: {"available": False, "reason": ...} when no instance can be opened."""
    from peebot.overview import HeartbeatView, summarize_heartbeats

    home, reason = locate_dagster_home()
    if home is None:
        return {"available": False, "reason": reason}
    config = (home / "dagster.yaml").read_text(encoding="utf-8", errors="replace")
    storage_var = "PEEBOT_DAGSTER_STORAGE_URL"
    default_url = default_dagster_storage_url(app_url) if app_url else None
    with _env_default(storage_var, default_url):
        if storage_var in config:
            url = os.environ.get(storage_var, "").strip()
            if not url:
                return {"available": False, "home": str(home), "reason": f"{storage_var} unset"}
            problem = _check_postgres_storage(url)
            if problem:
                return {"available": False, "home": str(home), "reason": problem}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                from dagster import DagsterInstance

                instance = DagsterInstance.from_config(str(home))
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


# --------------------------------------------------------------------------- collect, render


def collect(url: str, now: datetime | None = None, with_dagster: bool = True) -> dict[str, Any]:
    """The whole screen as plain data (what `--json` prints)."""
    from peebot.overview import app_overview
    from peebot_ingest.db import connect, discover_migrations

    now = now or datetime.now(UTC)
    health = ingest_health(url, now=now)
    with connect(url, autocommit=True) as conn:
        health.update(app_overview(conn, now))
    health["database"]["schema_latest"] = max((m.version for m in discover_migrations()), default=0)
    # its own clock: opening the instance takes seconds, and tick ages must not go negative
    health["dagster"] = (
        dagster_status(url) if with_dagster else {"available": False, "reason": "skipped"}
    )
    return health


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = abs(seconds)
    sign = "-" if seconds < 0 else ""
    if s < 120:
        return f"{sign}{s:.1f} s"
    if s < 7200:
        return f"{sign}{s / 60:.1f} min"
    if s < 172800:
        return f"{sign}{s / 3600:.1f} h"
    return f"{sign}{s / 86400:.1f} d"


def _when(ts: datetime | None) -> str:
    return "-" if ts is None else ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _short_when(ts: datetime | None) -> str:
    return "-" if ts is None else ts.astimezone(UTC).strftime("%m-%d %H:%M:%S")


def _clock(ts: datetime | None) -> str:
    return "-" if ts is None else ts.astimezone(UTC).strftime("%H:%M:%S")


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:,.0f} {unit}" if unit == "B" else f"{size:,.1f} {unit}"
        size /= 1024
    return f"{size:,.1f} TB"


def _summary(health: dict[str, Any]) -> Any:
    from rich.table import Table

    from peebot.overview import sparkline

    now = health["now"]
    sig = health["signal"]
    conn = health["connection"]
    db = health["database"]
    rate = health["readings_per_minute"]
    summary = Table(show_header=False, box=None, pad_edge=False)
    summary.add_column(style="bold", no_wrap=True)
    summary.add_column(overflow="fold")
    pending_migrations = db.get("schema_latest", 0) - db["schema_version"]
    summary.add_row(
        "database",
        f"{db['mode'] or 'mode unknown'}, {_size(db['size_bytes'])}, "
        f"schema version {db['schema_version']}"
        + (
            f" ({pending_migrations} migration(s) pending: `peebot db migrate`)"
            if pending_migrations > 0
            else ""
        )
        + f", PostgreSQL {db['server_version']}",
    )
    summary.add_row(
        "signal",
        f"{sig['state']} since {_when(sig['since'])} ({_age((now - sig['since']).total_seconds())})"
        if sig
        else "never recorded",
    )
    summary.add_row(
        "connection",
        f"{conn['state']} since {_when(conn['since'])}" if conn else "never recorded",
    )
    lag = (
        "no TIME_000001 yet"
        if health["lag_s"] is None
        else f"{_age(health['lag_s'])} (TIME_000001 vs clock)"
    )
    watermark = (
        f"watermark {_short_when(health['watermark'])}, written {_age(health['write_age_s'])} ago"
        if health["watermark"]
        else "no writes yet"
    )
    summary.add_row("lag", f"{lag}; {watermark}")
    counts = [b["readings"] for b in rate["per_minute"]]
    summary.add_row(
        "readings/min",
        (
            f"{rate['average']:,.1f} avg over {rate['minutes']} min by ISS time "
            f"{sparkline(counts)} (now {rate['current_minute']:,}; "
            f"{health['rows_last_hour']:,} in the last hour)"
        )
        if health["rows_last_hour"] or rate["total"]
        else "none yet in the last hour (by ISS time)",
    )
    rejected = (
        f"{health['rejected_total']:,} total, {health['rejected_last_hour']:,} in the last hour"
    )
    for source, counters in sorted((health["counters"] or {}).items()):
        if isinstance(counters, dict):
            rejected += f"; {source}: " + ", ".join(
                f"{k} {v:,}" for k, v in counters.items() if isinstance(v, int)
            )
    summary.add_row("rejected", rejected)
    by_type = health["events_by_type_24h"]
    summary.add_row(
        "events (24 h)",
        (", ".join(f"{k} {v}" for k, v in by_type.items()) or "none yet")
        + f" ({health['events_total']} total)",
    )
    pending = health["posts_overview"]["pending_by_backend"]
    summary.add_row(
        "posts",
        (
            "pending: " + ", ".join(f"{k} {v}" for k, v in pending.items())
            if pending
            else "none pending"
        )
        + "; all: "
        + (", ".join(f"{k} {v}" for k, v in sorted(health["posts"].items())) or "no posts yet"),
    )
    dag = health["dagster"]
    if not dag["available"]:
        summary.add_row("dagster", f"unavailable: {dag['reason']}")
    else:
        daemon = dag["daemon"]
        if daemon["last_heartbeat"] is None:
            line = "daemon: no heartbeat yet"
        else:
            errors = sum(d["errors"] for d in daemon["daemons"])
            line = (
                f"daemon {daemon['state']}: heartbeat {_age(daemon['age_s'])} ago, "
                f"{len(daemon['daemons'])} daemon(s), {errors} error(s)"
            )
        if not dag["instigators"]:
            line += "; no sensor states yet"
        summary.add_row("dagster", line)
    return summary


def _events_table(health: dict[str, Any]) -> Any:
    from rich import box
    from rich.table import Table

    table = Table(title="Latest events", box=box.SIMPLE_HEAD, show_edge=False, title_justify="left")
    for col in ("id", "type", "start (UTC)", "change", "conf", "posted"):
        table.add_column(col, justify="right" if col in ("id", "conf") else "left", no_wrap=True)
    for ev in health["latest_events"]:
        table.add_row(
            str(ev["id"]),
            ev["event_type"],
            _short_when(ev["start"]),
            ev["detail"],
            f"{ev['confidence']:.2f}",
            _short_when(ev["posted_at"]) if ev["posted_at"] else "-",
        )
    return table


def _posts_table(health: dict[str, Any]) -> Any:
    from rich import box
    from rich.table import Table

    table = Table(title="Recent posts", box=box.SIMPLE_HEAD, show_edge=False, title_justify="left")
    table.add_column("event", no_wrap=True, min_width=12, max_width=22, overflow="ellipsis")
    table.add_column("backend", no_wrap=True, min_width=7)
    table.add_column("status", no_wrap=True, min_width=7)
    table.add_column("external id", no_wrap=True, max_width=22, overflow="ellipsis")
    table.add_column("skip / error", no_wrap=True, max_width=26, overflow="ellipsis")
    table.add_column("updated", no_wrap=True, min_width=8)
    for p in health["posts_overview"]["recent"]:
        note = p["skip_reason"] or (
            f"{p['error_kind']} (attempt {p['attempts']})" if p["error_kind"] else ""
        )
        table.add_row(
            f"#{p['event_id']} {p['event_type']}",
            p["backend"],
            p["status"],
            p["external_id"] or "-",
            note or "-",
            _clock(p["updated_at"]),
        )
    return table


def _items_table(health: dict[str, Any]) -> Any:
    from rich import box
    from rich.table import Table

    table = Table(
        title="Key items (last update)", box=box.SIMPLE_HEAD, show_edge=False, title_justify="left"
    )
    for col in ("item", "value", "class", "age"):
        table.add_column(col, justify="left" if col == "item" else "right", no_wrap=True)
    for it in health["items"]:
        table.add_row(
            it["item"],
            "-" if it["value"] is None else f"{it['value']:g}",
            "-" if it["status_class"] is None else str(it["status_class"]),
            _age(it["age_s"]),
        )
    return table


# DECLARED_IN_CODE: the definition's default_status decides (unknown without loading the code)
STATUS_LABELS = {"DECLARED_IN_CODE": "in code"}
TICK_LABELS = {"SUCCESS": "ok", "SKIPPED": "skipped", "FAILURE": "FAILED", "STARTED": "started"}


def _sensors_table(dag: dict[str, Any]) -> Any:
    from rich import box
    from rich.table import Table

    table = Table(
        title="Dagster sensors & schedules",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        title_justify="left",
    )
    table.add_column("name", no_wrap=True, max_width=24, overflow="ellipsis")
    table.add_column("status", no_wrap=True, min_width=7)
    table.add_column("last tick", no_wrap=True, justify="right", min_width=9)
    table.add_column("result", no_wrap=True, min_width=7)
    for s in dag["instigators"]:
        table.add_row(
            s["name"],
            STATUS_LABELS.get(s["status"], s["status"]),
            _age(s["last_tick_age_s"]) if s["last_tick_age_s"] is not None else "never",
            TICK_LABELS.get(s["last_tick_status"] or "", s["last_tick_status"] or "-"),
        )
    return table


def render(health: dict[str, Any], console: Any = None) -> None:
    from rich.console import Console, Group
    from rich.table import Table

    console = console or Console()
    console.print(f"[bold]PeeBot status[/bold]  {_when(health['now'])}")
    console.print(_summary(health))
    parts: list[Any] = []
    if health["latest_events"]:
        parts.append(_events_table(health))
    if health["posts_overview"]["recent"]:
        parts.append(_posts_table(health))
    if parts:
        console.print(Group(*parts))
    bottom = Table.grid(padding=(0, 2))
    bottom.add_column()
    dag = health["dagster"]
    cells = [_items_table(health)]
    if dag["available"] and dag["instigators"]:
        bottom.add_column()
        cells.append(_sensors_table(dag))
    bottom.add_row(*cells)
    console.print(bottom)


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--no-dagster", is_flag=True, help="Skip reading Dagster's instance (faster).")
@one_line_errors
def status(as_json: bool, no_dagster: bool) -> None:
    """PeeBot on one screen: database mode, size and schema version; ingest lag, signal and
    readings per minute; the latest events and counts by type; pending and recent posts;
    the Dagster daemon's heartbeat and sensor states."""
    import psycopg

    from peebot_ingest import db as database

    url = database.resolve_database_url()
    try:
        health = collect(url, with_dagster=not no_dagster)
    except psycopg.errors.UndefinedTable as exc:
        raise click.ClickException(
            f"the database at {database.describe_url(url)} is not migrated yet "
            f"(run `peebot db migrate`): {str(exc).splitlines()[0]}"
        ) from exc
    if as_json:
        click.echo(json.dumps(health, default=str, indent=2))
        return
    render(health)
