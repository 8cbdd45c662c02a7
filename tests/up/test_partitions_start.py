"""`peebot up` starts its minute partitions where its data starts, and keeps that choice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from peebot.partitions_start import FILE_NAME, choose_start, stack_partitions_start

NOW = datetime(2026, 11, 30, 6, 0, 42, tzinfo=UTC)


def test_a_fresh_database_starts_at_the_minute_the_feed_starts() -> None:
    sim_start = NOW - timedelta(minutes=9, seconds=30)
    assert choose_start(None, sim_start, NOW) == datetime(2026, 11, 30, 5, 51, tzinfo=UTC)


def test_a_database_with_readings_starts_at_the_first_one() -> None:
    first = NOW - timedelta(days=2, seconds=5)
    assert choose_start(first, NOW, NOW) == first.replace(second=0)


def test_never_more_than_fourteen_days_back() -> None:
    ancient = NOW - timedelta(days=400)
    assert choose_start(ancient, NOW, NOW) == (NOW - timedelta(days=14)).replace(second=0)


def test_the_choice_is_kept_in_the_home(tmp_path: Path) -> None:
    home = tmp_path / "new" / "home"
    first = stack_partitions_start(home, None, NOW - timedelta(minutes=3), NOW)
    assert first == "2026-11-30-05:57"
    assert (home / FILE_NAME).read_text() == "2026-11-30-05:57\n"
    # the next start, later and with readings: the partitions do not move
    later = NOW + timedelta(hours=5)
    assert stack_partitions_start(home, NOW - timedelta(minutes=2), later, later) == first
