"""Fixtures of the `peebot status` tests.

`peebot status` reads its settings once per process: each test starts (and ends) with a fresh
read, after its own environment changes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from peebot.settings import get_settings


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def no_dagster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("PEEBOT_DAGSTER_STORAGE_URL", raising=False)
    monkeypatch.setenv("PEEBOT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"
