"""The terminal layout of `peebot status` (rich), from the plain data `collect` returns.

The screen adapts to the terminal's width rather than cutting text: cells that can grow
(an event's change and posting, a post's detail, the summary's values) wrap inside their
column, and the two bottom tables sit side by side only when both fit at full width,
otherwise one above the other. Nothing is shortened with "…".
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table

from peebot.status.shaping import sparkline

# DECLARED_IN_CODE: the definition's default_status decides (unknown without loading the code)
STATUS_LABELS = {"DECLARED_IN_CODE": "in code"}
TICK_LABELS = {"SUCCESS": "ok", "SKIPPED": "skipped", "FAILURE": "FAILED", "STARTED": "started"}
GAP = 2  # columns between tables placed side by side


# --------------------------------------------------------------------------- formats


def age(seconds: float | None) -> str:
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


def when(ts: datetime | None) -> str:
    return "-" if ts is None else ts.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def short_when(ts: datetime | None) -> str:
    return "-" if ts is None else ts.astimezone(UTC).strftime("%m-%d %H:%M:%S")


def clock(ts: datetime | None) -> str:
    return "-" if ts is None else ts.astimezone(UTC).strftime("%H:%M:%S")


def size(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1024
    return f"{value:,.1f} TB"


def posted_cell(event: dict[str, Any]) -> str:
    """When and where an event was posted (the time alone when it is the event's own day),
    else how far its outbox rows got ("pending", "failed", ...), else "-"."""
    posted_at, start = event["posted_at"], event["start"]
    if event["posted_to"] or posted_at is not None:
        same_day = (
            posted_at is not None
            and start is not None
            and posted_at.astimezone(UTC).date() == start.astimezone(UTC).date()
        )
        stamp = clock(posted_at) if same_day else short_when(posted_at)
        where = ", ".join(event["posted_to"])
        return " ".join(part for part in (stamp if posted_at else "", where) if part)
    return event["post_state"] or "-"


def post_detail(post: dict[str, Any]) -> str:
    """The one thing to know about an outbox row: where it landed, why it was skipped, what
    failed, or until when it waits."""
    if post["status"] == "posted":
        ext = post["external_id"] or "-"
        return f"{ext} ({post['error_kind']})" if post["error_kind"] else ext
    if post["skip_reason"]:
        return str(post["skip_reason"])
    if post["error_kind"]:
        return f"{post['error_kind']} (attempt {post['attempts']})"
    if post["not_before"] is not None:
        return f"waits until {clock(post['not_before'])}"
    return "-"


# --------------------------------------------------------------------------- sections


def summary_table(health: dict[str, Any]) -> Table:
    now = health["now"]
    summary = Table(show_header=False, box=None, pad_edge=False)
    summary.add_column(style="bold", no_wrap=True)
    summary.add_column(overflow="fold")
    for label, text in _summary_rows(health, now):
        summary.add_row(label, text)
    return summary


def _summary_rows(health: dict[str, Any], now: datetime) -> list[tuple[str, str]]:
    sig = health["signal"]
    conn = health["connection"]
    rate = health["readings_per_minute"]
    rows = [("database", database_line(health["database"]))]
    if policy := health["database"].get("policy"):
        rows.append(("storage", policy_line(health["database"]["mode"], policy)))
    rows.append(
        (
            "signal",
            f"{sig['state']} since {when(sig['since'])} "
            f"({age((now - sig['since']).total_seconds())})"
            if sig
            else "never recorded",
        )
    )
    rows.append(
        ("connection", f"{conn['state']} since {when(conn['since'])}" if conn else "never recorded")
    )
    lag = (
        "no TIME_000001 yet"
        if health["lag_s"] is None
        else f"{age(health['lag_s'])} (TIME_000001 vs clock)"
    )
    watermark = (
        f"watermark {short_when(health['watermark'])}, written {age(health['write_age_s'])} ago"
        if health["watermark"]
        else "no writes yet"
    )
    rows.append(("lag", f"{lag}; {watermark}"))
    counts = [b["readings"] for b in rate["per_minute"]]
    rows.append(
        (
            "readings/min",
            (
                f"{rate['average']:,.1f} avg over {rate['minutes']} min by ISS time "
                f"{sparkline(counts)} (now {rate['current_minute']:,}; "
                f"{health['rows_last_hour']:,} in the last hour)"
            )
            if health["rows_last_hour"] or rate["total"]
            else "none yet in the last hour (by ISS time)",
        )
    )
    rejected = (
        f"{health['rejected_total']:,} total, {health['rejected_last_hour']:,} in the last hour"
    )
    for source, counters in sorted((health["counters"] or {}).items()):
        if isinstance(counters, dict):
            rejected += f"; {source}: " + ", ".join(
                f"{k} {v:,}" for k, v in counters.items() if isinstance(v, int)
            )
    rows.append(("rejected", rejected))
    by_type = health["events_by_type_24h"]
    rows.append(
        (
            "events (24 h)",
            (", ".join(f"{k} {v}" for k, v in by_type.items()) or "none yet")
            + f" ({health['events_total']} total)",
        )
    )
    pending = health["posts_overview"]["pending_by_backend"]
    rows.append(
        (
            "posts",
            (
                "pending: " + ", ".join(f"{k} {v}" for k, v in pending.items())
                if pending
                else "none pending"
            )
            + "; all: "
            + (", ".join(f"{k} {v}" for k, v in sorted(health["posts"].items())) or "no posts yet"),
        )
    )
    rows.append(("dagster", dagster_line(health["dagster"])))
    return rows


def database_line(db: dict[str, Any]) -> str:
    pending_migrations = db.get("schema_latest", 0) - db["schema_version"]
    return (
        f"{db['mode'] or 'mode unknown'}, {size(db['size_bytes'])}, "
        f"schema version {db['schema_version']}"
        + (
            f" ({pending_migrations} migration(s) pending: `peebot db migrate`)"
            if pending_migrations > 0
            else ""
        )
        + f", PostgreSQL {db['server_version']}"
    )


def policy_line(mode: str | None, policy: dict[str, Any]) -> str:
    """Retention and compression in force, and what retention last did, in one line."""
    days = policy["retention_days"]
    parts = ["raw readings kept " + (f"{days} d" if days else "forever")]
    if mode == "timescaledb":
        after = policy["compress_after_days"]
        parts.append(f"compressed after {after} d" if after else "not compressed")
        parts.append("minutes kept for good")
    retention = policy["last_retention_at"]
    if retention:
        removed = policy["last_removed"]
        ran = f"retention {short_when(retention)}: removed {removed or 0} {policy['removed_unit']}"
        if policy["held_back"]:
            ran += f", {policy['held_back']} held back until aggregated"
        parts.append(ran)
    else:
        parts.append("retention never ran (`peebot db maintain`)")
    if policy["raw_kept_from"]:
        parts.append(f"raw from {policy['raw_kept_from']:%Y-%m-%d %H:%M}")
    if policy["failed_jobs"]:
        parts.append("FAILED: " + ", ".join(policy["failed_jobs"]))
    return "; ".join(parts)


def dagster_line(dag: dict[str, Any]) -> str:
    if not dag["available"]:
        return f"unavailable: {dag['reason']}"
    daemon = dag["daemon"]
    if daemon["last_heartbeat"] is None:
        line = "daemon: no heartbeat yet"
    else:
        errors = sum(d["errors"] for d in daemon["daemons"])
        line = (
            f"daemon {daemon['state']}: heartbeat {age(daemon['age_s'])} ago, "
            f"{len(daemon['daemons'])} daemon(s), {errors} error(s)"
        )
    if not dag["instigators"]:
        line += "; no sensor states yet"
    return line


def _table(title: str) -> Table:
    return Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, title_justify="left")


def events_table(health: dict[str, Any]) -> Table:
    table = _table("Latest events")
    table.add_column("id", justify="right", no_wrap=True)
    table.add_column("type", no_wrap=True)
    table.add_column("start (UTC)", no_wrap=True)
    table.add_column("change", no_wrap=True)
    table.add_column("conf", justify="right", no_wrap=True)
    # the one column that gives way in a narrow terminal: "12:03:04 dry_run" on two lines
    table.add_column("posted", overflow="fold")
    for ev in health["latest_events"]:
        table.add_row(
            str(ev["id"]),
            ev["event_type"],
            short_when(ev["start"]),
            ev["detail"],
            f"{ev['confidence']:.2f}",
            posted_cell(ev),
        )
    return table


def posts_table(health: dict[str, Any]) -> Table:
    table = _table("Recent posts")
    table.add_column("event", no_wrap=True)
    table.add_column("backend", no_wrap=True)
    table.add_column("status", no_wrap=True)
    # external ids, skip reasons and errors vary in length: they wrap, never cut
    table.add_column("detail", overflow="fold")
    table.add_column("updated", no_wrap=True)
    for p in health["posts_overview"]["recent"]:
        table.add_row(
            f"#{p['event_id']} {p['event_type']}",
            p["backend"],
            p["status"],
            post_detail(p),
            clock(p["updated_at"]),
        )
    return table


def items_table(health: dict[str, Any]) -> Table:
    table = _table("Key items (last update)")
    for col in ("item", "value", "class", "age"):
        table.add_column(col, justify="left" if col == "item" else "right", no_wrap=True)
    for it in health["items"]:
        table.add_row(
            it["item"],
            "-" if it["value"] is None else f"{it['value']:g}",
            "-" if it["status_class"] is None else str(it["status_class"]),
            age(it["age_s"]),
        )
    return table


def sensors_table(dag: dict[str, Any]) -> Table:
    table = _table("Dagster sensors & schedules")
    table.add_column("name", overflow="fold")
    table.add_column("status", no_wrap=True)
    # "tick", not "last tick": the five characters saved keep the two bottom tables side by
    # side in a 100-column terminal whatever the items' ages
    table.add_column("tick", no_wrap=True, justify="right")
    table.add_column("result", no_wrap=True)
    for s in dag["instigators"]:
        table.add_row(
            s["name"],
            STATUS_LABELS.get(s["status"], s["status"]),
            age(s["last_tick_age_s"]) if s["last_tick_age_s"] is not None else "never",
            TICK_LABELS.get(s["last_tick_status"] or "", s["last_tick_status"] or "-"),
        )
    return table


# --------------------------------------------------------------------------- layout


def side_by_side_if_fits(console: Console, parts: list[RenderableType]) -> RenderableType:
    """`parts` in one row when all fit the console at their full width, else stacked."""
    if len(parts) < 2:
        return Group(*parts)
    # each measure is capped at the console's width, so a part too wide alone also tips it
    natural = sum(console.measure(part).maximum for part in parts) + GAP * (len(parts) - 1)
    if natural > console.width:
        return Group(*parts)
    row = Table.grid(padding=(0, GAP))
    for _ in parts:
        row.add_column(no_wrap=True)
    row.add_row(*parts)
    return row


def render(health: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    console.print(f"[bold]PeeBot status[/bold]  {when(health['now'])}")
    console.print(summary_table(health))
    if health["latest_events"]:
        console.print(events_table(health))
    if health["posts_overview"]["recent"]:
        console.print(posts_table(health))
    bottom: list[RenderableType] = [items_table(health)]
    dag = health["dagster"]
    if dag["available"] and dag["instigators"]:
        bottom.append(sensors_table(dag))
    console.print(side_by_side_if_fits(console, bottom))
