"""`peebot status` on a real database: the posted column reads the outbox (a dry-run post is
a post), and the screen fits 80 and 160 columns without cutting a cell."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from status_seed import seed_overview

from peebot.status.collect import collect
from peebot.status.render import events_table, post_detail, posts_table, render
from peebot.status.shaping import HeartbeatView, summarize_heartbeats
from peebot_ingest import db as database

# what the project's code location defines, the longest names included
INSTIGATORS = (
    "telemetry_watermark_sensor",
    "live_detection_sensor",
    "posting_sensor",
    "instance_cleanup_schedule",
    "db_maintenance_schedule",
    "daily_summary_job_schedule",
)


def _add_event(url: str, kind: str, start: datetime, delta: float) -> int:
    with database.connect(url, autocommit=True) as conn:
        row = conn.execute(
            """
            INSERT INTO detected_event (event_key, event_type, processor, item_id,
                detected_at, confidence, metadata, window_key)
            VALUES (%s, %s, 'urine_tank', 'NODE3000005', %s, 0.9, %s, %s)
            RETURNING id
            """,
            (
                f"urine_tank:NODE3000005:{start.isoformat()}",
                kind,
                start,
                json.dumps(
                    {
                        "level_before": 40.0,
                        "level_after": 40.0 + delta,
                        "delta": delta,
                        "volume_ml": round(abs(delta) * 80),
                        "flags": [],
                    }
                ),
                start.strftime("%Y-%m-%d-%H:%M"),
            ),
        ).fetchone()
    assert row is not None
    return int(row[0])


def _post_with_the_dry_run(
    url: str, event_ids: list[int], posts_file: Path, min_gap: timedelta = timedelta(minutes=20)
) -> Any:
    """The posting job's own path: enqueue in the outbox, then one run of the dry run."""
    from peebot_dagster.posting import outbox, policy
    from peebot_dagster.posting.backends.dry_run import DryRunBackend
    from peebot_dagster.posting.sending import run_outbox

    settings = policy.PostingSettings(
        backends=("dry_run",),
        event_types=("urination", "clean_water_draw"),
        default_limits=policy.BackendLimits(daily_cap=100, min_gap=min_gap),
    )
    with database.connect(url) as conn:
        assert outbox.enqueue_posts(conn, event_ids, settings=settings) == len(event_ids)
        conn.commit()
        return run_outbox(
            conn, {"dry_run": DryRunBackend(posts_file)}, settings=settings, lock_wait_s=5
        )


def _row(text: str, first_cell: str) -> str:
    return next(line for line in text.splitlines() if line.strip().startswith(first_cell))


def test_an_event_posted_by_the_dry_run_shows_when_and_where(
    db_url: str, no_dagster: Path, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    first = _add_event(db_url, "urination", now - timedelta(minutes=6), 3.0)
    second = _add_event(db_url, "urination", now - timedelta(minutes=2), 2.0)
    summary = _post_with_the_dry_run(db_url, [first, second], tmp_path / "posts.jsonl")
    # the second waits for the minimum gap between two posts
    assert len(summary.posted) == 1 and len(summary.deferred) == 1
    with database.connect(db_url, autocommit=True) as conn:
        posted: Any = conn.execute(
            "SELECT event_id, posted_at FROM social_post WHERE status = 'posted'"
        ).fetchall()
    assert [r[0] for r in posted] == [first]

    health = collect(db_url, now=datetime.now(UTC), with_dagster=False)
    events = {e["id"]: e for e in health["latest_events"]}
    assert events[first]["posted_at"] == posted[0][1]
    assert events[first]["posted_to"] == ["dry_run"]
    assert events[first]["post_state"] == "posted"
    assert events[second]["posted_at"] is None and events[second]["post_state"] == "pending"

    console = Console(file=io.StringIO(), width=100, record=True, color_system=None)
    console.print(events_table(health))
    console.print(posts_table(health))
    text = console.export_text()
    assert (
        _row(text, str(first)).rstrip().endswith(f"{posted[0][1].astimezone(UTC):%H:%M:%S} dry_run")
    ), text
    assert _row(text, str(second)).rstrip().endswith("pending"), text
    assert "waits until" in _row(text, f"#{second} urination"), text


@pytest.fixture
def busy_screen(db_url: str, no_dagster: Path, tmp_path: Path) -> dict[str, Any]:
    """Everything on the screen at once: the overview's data, a clean water draw (the longest
    event type) posted by the dry run, a running daemon and every sensor and schedule."""
    now = datetime.now(UTC)
    seed_overview(db_url, now)
    draw = _add_event(db_url, "clean_water_draw", now - timedelta(minutes=1), -1.25)
    _post_with_the_dry_run(db_url, [draw], tmp_path / "posts.jsonl", min_gap=timedelta(0))
    health = collect(db_url, now=datetime.now(UTC), with_dagster=False)
    # the widest age in seconds, whenever in the minute the test runs
    next(i for i in health["items"] if i["item"] == "NODE3000005")["age_s"] = 119.9
    health["dagster"] = {
        "available": True,
        "daemon": summarize_heartbeats([HeartbeatView("SENSOR", now.timestamp() - 3, 0)], now),
        "instigators": [
            {
                "name": name,
                "type": "SENSOR",
                "status": "RUNNING",
                "last_tick_age_s": 4.0,
                "last_tick_status": "SKIPPED",
            }
            for name in INSTIGATORS
        ],
    }
    return health


@pytest.mark.parametrize("width", [80, 100, 160])
def test_the_screen_fits_the_terminal_without_cutting_a_cell(
    busy_screen: dict[str, Any], width: int
) -> None:
    console = Console(file=io.StringIO(), width=width, record=True, color_system=None)
    render(busy_screen, console)
    text = console.export_text()
    lines = text.splitlines()
    assert "…" not in text, text
    assert max(len(line) for line in lines) <= width, text
    draw = busy_screen["latest_events"][0]
    assert draw["event_type"] == "clean_water_draw"
    # every cell whole (the posted cell may wrap at its space: checked in its own test)
    whole = [
        *(ev["event_type"] for ev in busy_screen["latest_events"]),
        *(ev["detail"] for ev in busy_screen["latest_events"]),
        *(f"#{p['event_id']} {p['event_type']}" for p in busy_screen["posts_overview"]["recent"]),
        *(post_detail(p) for p in busy_screen["posts_overview"]["recent"]),
        *INSTIGATORS,
        *(item["item"] for item in busy_screen["items"]),
        "-1.25 %, ≈100 mL",
        "permanent (attempt 1)",
    ]
    missing = [cell for cell in whole if cell not in text]
    assert missing == [], text
    assert all(header in text for header in ("class", "posted", "tick", "result")), text
    # side by side when both tables fit (from 100 columns on: one 100x40 screen holds it
    # all), one above the other when they do not
    beside = any("NODE3000005" in line and "posting_sensor" in line for line in lines)
    assert beside == (width >= 100), text
    if width == 100:
        assert len(lines) <= 40, text


def test_status_json_keeps_the_outbox_view(busy_screen: dict[str, Any]) -> None:
    as_json = json.loads(json.dumps(busy_screen, default=str))
    draw = as_json["latest_events"][0]
    assert draw["posted_to"] == ["dry_run"] and draw["post_state"] == "posted"
    assert draw["posted_at"] is not None
