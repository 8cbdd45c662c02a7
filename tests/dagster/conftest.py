"""Fixtures for the Dagster tests: test partitions from 2023, the recording in the database."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from peebot_dagster.defs.detection.assets import build_detection_assets
from peebot_dagster.defs.detection.partitions import minute_partitions_def
from peebot_dagster.defs.telemetry import telemetry_reading_spec
from tests.support.dagster_testing import TEST_START, load_readings, recording_frame


@pytest.fixture(scope="session")
def test_partitions() -> dg.TimeWindowPartitionsDefinition:
    return minute_partitions_def(TEST_START)


@pytest.fixture(scope="session")
def test_assets(test_partitions: dg.TimeWindowPartitionsDefinition) -> list[Any]:
    return [telemetry_reading_spec(test_partitions), *build_detection_assets(test_partitions)]


@pytest.fixture
def loaded_db(db_url: str, shared_data: Path) -> str:
    """A database holding the 2023 recording."""
    load_readings(db_url, recording_frame(shared_data))
    return db_url


@pytest.fixture
def instance() -> Iterable[dg.DagsterInstance]:
    """An in-memory Dagster instance (the run and event storage of a real one)."""
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture(autouse=True)
def dry_run_posts(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Detection jobs post what they store (the dry-run backend): into the test's own file."""
    out = tmp_path / "posts.jsonl"
    monkeypatch.setenv("PEEBOT_DRY_RUN_FILE", str(out))
    monkeypatch.delenv("PEEBOT_POST_BACKENDS", raising=False)
    return out
