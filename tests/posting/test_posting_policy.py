"""Posting policy: pure decisions, and caps and gaps holding over a simulated day."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest
from posting_helpers import T0, Clock, add_event, enqueue, posts, run_once

from peebot_dagster.posting import policy
from peebot_dagster.posting.backends.dry_run import DryRunBackend
from peebot_dagster.posting.policy import BackendLimits, PostingSettings
from peebot_dagster.settings import Settings, SettingsError

LIMITS = BackendLimits(daily_cap=3, min_gap=timedelta(minutes=20))
SETTINGS = PostingSettings(max_age=timedelta(minutes=90))


def decide(**kw: Any) -> policy.Decision:
    args: dict[str, Any] = {
        "now": T0 + timedelta(minutes=5),
        "event_type": "urination",
        "detected_at": T0,
        "metadata": {"flags": []},
        "retracted": False,
        "recent_sends": [],
        "limits": LIMITS,
        "settings": SETTINGS,
    }
    args.update(kw)
    return policy.decide(**args)


def test_decisions_and_their_reasons() -> None:
    assert decide().action == "send"
    assert decide(retracted=True).reason.startswith("event retracted")
    assert "does not post" in decide(event_type="los").reason
    assert "los" in decide(metadata={"flags": ["data_gap", "los"]}).reason
    assert "stale" in decide(metadata={"signal": "STALE"}).reason
    assert decide(metadata={"flags": ["data_gap"]}).action == "send"
    old = decide(now=T0 + timedelta(minutes=91))
    assert (old.action, old.reason) == ("skip", "too old to be funny: 91 min old (max 90 min)")
    sends = [T0 - timedelta(hours=h) for h in (1, 2, 3)]
    assert decide(recent_sends=sends).reason == "daily cap reached (3 posts in the last 24 h)"
    # a send 24 h ago no longer counts
    assert decide(recent_sends=[*sends[:2], T0 - timedelta(hours=24)]).action == "send"
    gap = decide(recent_sends=[T0 - timedelta(minutes=1)])
    assert (gap.action, gap.until) == ("defer", T0 + timedelta(minutes=19))
    too_late = decide(
        detected_at=T0 - timedelta(minutes=80), recent_sends=[T0 + timedelta(minutes=4)]
    )
    assert too_late.action == "skip" and "minimum gap" in too_late.reason
    assert decide(limits=BackendLimits(0, timedelta(0))).reason == "daily cap is 0 for this backend"


def posting_settings(environ: dict[str, str]) -> PostingSettings:
    return PostingSettings.from_settings(Settings.from_environ(environ))


def test_settings_from_env() -> None:
    s = posting_settings(
        {
            "PEEBOT_POST_BACKENDS": "x, dry_run",
            "PEEBOT_POST_EVENT_TYPES": "urination",
            "PEEBOT_POST_DAILY_CAP": "8",
            "PEEBOT_POST_DAILY_CAP_MASTODON": "40",
            "PEEBOT_POST_MIN_GAP_MINUTES": "30",
            "PEEBOT_POST_MAX_AGE_MINUTES": "45",
            "PEEBOT_POST_SKIP_FLAGS": "los,stale,data_gap",
            "PEEBOT_POST_MAX_ATTEMPTS": "2",
        }
    )
    assert s.backends == ("x", "dry_run") and s.event_types == ("urination",)
    assert s.limits_for("x") == BackendLimits(8, timedelta(minutes=30))
    assert s.limits_for("mastodon").daily_cap == 40
    assert s.max_age == timedelta(minutes=45) and s.max_attempts == 2
    assert "data_gap" in s.skip_flags
    d = posting_settings({})
    assert d.backends == ("dry_run",) and d.event_types == ("urination", "bulk_transfer")
    assert d.limits_for("x") == BackendLimits(12, timedelta(minutes=20))
    with pytest.raises(SettingsError, match="PEEBOT_POST_DAILY_CAP"):
        posting_settings({"PEEBOT_POST_DAILY_CAP": "a dozen"})


def test_caps_and_gaps_hold_over_a_simulated_day(db_url: str, tmp_path: Any) -> None:
    """30 simulated hours, an event every 7 minutes (some during LOS), runs every 3 minutes."""
    settings = PostingSettings(
        backends=("dry_run",),
        max_age=timedelta(minutes=60),
        default_limits=BackendLimits(12, timedelta(minutes=20)),
    )
    backend = DryRunBackend(tmp_path / "posts.jsonl")
    clock = Clock(T0)
    end = T0 + timedelta(hours=30)
    next_event = 0
    with psycopg.connect(db_url) as conn:
        while clock.now < end:
            # the detector stores events 2 minutes after they start, enqueueing their posts
            while T0 + timedelta(minutes=7 * next_event + 2) <= clock.now:
                flags = ["los"] if next_event % 10 == 3 else []
                ev = add_event(conn, minute=7 * next_event, flags=flags)
                conn.commit()
                enqueue(conn, [ev], "dry_run")
                next_event += 1
            run_once(conn, {"dry_run": backend}, clock, settings=settings)
            clock.advance(minutes=3)
        rows = posts(conn)
    posted = sorted(r["posted_at"] for r in rows if r["status"] == "posted")
    assert len(posted) == 24  # 12 on day one, 12 more once the first ones are 24 h old
    for i, t in enumerate(posted):
        in_window = [u for u in posted if t - timedelta(hours=24) < u <= t]
        assert len(in_window) <= 12, f"cap broken at {t}"
        if i:
            assert t - posted[i - 1] >= timedelta(minutes=20), f"gap broken at {t}"
    assert posted[12] - posted[0] >= timedelta(hours=24)
    reasons = [r["skip_reason"] for r in rows if r["status"] == "skipped"]
    assert all(reasons)
    assert any(x.startswith("daily cap reached (12") for x in reasons)
    assert any(x.startswith("detected during los") for x in reasons)
    assert not any(r["status"] in ("failed", "sending") for r in rows)
    # what stayed pending is recent (not yet decided), never older than the max age
    for r in rows:
        if r["status"] == "pending":
            assert r["not_before"] is None or r["not_before"] >= end - timedelta(minutes=20)
    lines = (tmp_path / "posts.jsonl").read_text().splitlines()
    assert len(lines) == 24
