"""Minute partitions: the configurable start and the key arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from peebot_dagster.defs.detection.partitions import minute_partitions, minute_partitions_def
from peebot_dagster.defs.tags import range_run_key
from peebot_dagster.partitions import (
    MAX_PARTITIONS,
    PartitionConfigError,
    key_start,
    partition_key,
    partitions_start,
)
from peebot_dagster.settings import Settings, SettingsError

NOW = datetime(2026, 11, 27, 14, 5, 30, tzinfo=UTC)


def start_from(environ: dict[str, str]) -> datetime:
    """The first partition that these variables give, at NOW."""
    settings = Settings.from_environ(environ)
    return partitions_start(NOW, settings.partitions_start, settings.partitions_days)


def test_default_start_is_recent_and_under_the_limit():
    start = start_from({})
    assert start == datetime(2026, 11, 13, tzinfo=UTC)
    minutes = (NOW - start).total_seconds() // 60
    assert minutes < MAX_PARTITIONS
    assert start_from({"PEEBOT_PARTITIONS_DAYS": "3"}) == datetime(2026, 11, 24, tzinfo=UTC)


def test_explicit_start_and_bad_values():
    assert start_from({"PEEBOT_PARTITIONS_START": "2026-11-01"}) == datetime(
        2026, 11, 1, tzinfo=UTC
    )
    assert start_from({"PEEBOT_PARTITIONS_START": "2026-11-01-06:30"}) == datetime(
        2026, 11, 1, 6, 30, tzinfo=UTC
    )
    with pytest.raises(SettingsError, match="YYYY-MM-DD"):
        start_from({"PEEBOT_PARTITIONS_START": "yesterday"})
    with pytest.raises(PartitionConfigError, match="future"):
        start_from({"PEEBOT_PARTITIONS_START": "2027-01-01"})
    with pytest.raises(SettingsError, match="whole number"):
        start_from({"PEEBOT_PARTITIONS_DAYS": "two"})


def test_keys_and_windows():
    assert partition_key(NOW) == "2026-11-27-14:05"
    assert key_start("2026-11-27-14:05") == datetime(2026, 11, 27, 14, 5, tzinfo=UTC)
    with pytest.raises(PartitionConfigError):
        key_start("2026-11-27 14:05")
    assert range_run_key("a", "a") == "a" and range_run_key("a", "b") == "a...b"
    pdef = minute_partitions_def(datetime(2026, 11, 27, tzinfo=UTC))
    window = pdef.time_window_for_partition_key("2026-11-27-14:05")
    assert (window.start, window.end) == (
        datetime(2026, 11, 27, 14, 5, tzinfo=UTC),
        datetime(2026, 11, 27, 14, 6, tzinfo=UTC),
    )
    assert minute_partitions.timezone == "UTC" and minute_partitions.fmt == "%Y-%m-%d-%H:%M"
