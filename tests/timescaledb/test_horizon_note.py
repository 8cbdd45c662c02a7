"""The one line `peebot replay` prints when what it loaded is older than a horizon (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from peebot.commands.replay import LoadSummary, horizon_note, policy_horizons
from peebot_ingest.reading_policy import ReadingPolicy

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _policy(mode: str, retention: int = 30, compress: int = 7, **kw: object) -> ReadingPolicy:
    return ReadingPolicy(mode, retention, compress, **kw)  # type: ignore[arg-type]


def _summary(oldest: datetime, **older: int) -> LoadSummary:
    return LoadSummary(oldest=oldest, older=older)


def test_horizons_follow_the_policy() -> None:
    assert policy_horizons(_policy("timescaledb"), NOW) == {
        "retention": NOW - timedelta(days=30),
        "compression": NOW - timedelta(days=7),
    }
    assert policy_horizons(_policy("plain"), NOW) == {"retention": NOW - timedelta(days=30)}
    assert policy_horizons(_policy("timescaledb", 0, 0), NOW) == {}


def test_nothing_to_say_about_recent_readings() -> None:
    policy = _policy("timescaledb")
    horizons = policy_horizons(policy, NOW)
    assert horizon_note(policy, horizons, _summary(NOW - timedelta(days=1))) is None


def test_older_than_retention_says_what_remains_in_each_mode() -> None:
    for mode, remains in (
        ("timescaledb", "telemetry_minute keeps their minutes for good"),
        ("plain", "`peebot db maintain` deletes them (plain storage keeps no minute aggregate)"),
    ):
        policy = _policy(mode)
        note = horizon_note(
            policy,
            policy_horizons(policy, NOW),
            _summary(datetime(2018, 10, 12, tzinfo=UTC), retention=11262, compression=11262),
        )
        assert note is not None and "\n" not in note
        assert note.startswith(
            "note: 11,262 of the readings are older than the 30-day retention horizon "
            "(2026-05-02): "
        )
        assert remains in note and "peebot db policy --retention-days 0" in note


def test_older_than_compression_only() -> None:
    policy = _policy("timescaledb")
    note = horizon_note(
        policy, policy_horizons(policy, NOW), _summary(NOW - timedelta(days=9), compression=40)
    )
    assert note == (
        "note: 40 of the readings are older than the 7-day compression horizon: they stay, "
        "compressed at the next compression run"
    )


def test_loading_below_what_retention_removed_says_detection_refuses_it() -> None:
    kept_from = datetime(2026, 3, 1, tzinfo=UTC)
    policy = _policy("timescaledb", 0, 7, raw_kept_from=kept_from)
    note = horizon_note(
        policy, policy_horizons(policy, NOW), _summary(datetime(2026, 2, 1, tzinfo=UTC))
    )
    assert note == (
        "note: detection refuses windows before 2026-03-01 00:00 UTC, where retention has "
        "removed raw readings"
    )
