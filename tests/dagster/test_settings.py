"""The code location's settings: one object, every variable documented, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from peebot_dagster.posting.backends.registry import BACKEND_CLASSES
from peebot_dagster.settings import (
    POST_BACKENDS,
    Settings,
    SettingsError,
    get_settings,
)


def test_bad_values_are_one_line_naming_each_variable_and_no_secret() -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_environ(
            {
                "PEEBOT_SENSOR_INTERVAL_SECONDS": "60",
                "PEEBOT_POST_BACKENDS": "x,myspace",
                "PEEBOT_X_CONSUMER_SECRET": "SUPERSECRET",
                "PEEBOT_CHARTS_PER_RUN": "many",
            }
        )
    message = str(info.value)
    assert "\n" not in message
    assert message == (
        "PEEBOT_SENSOR_INTERVAL_SECONDS must be at most 30, not 60; "
        "PEEBOT_CHARTS_PER_RUN must be a whole number, not 'many'; "
        "PEEBOT_POST_BACKENDS names unknown backend(s) myspace "
        "(known: dry_run, x, bluesky, mastodon)"
    )


def test_secrets_never_show() -> None:
    settings = Settings.from_environ(
        {"PEEBOT_X_ACCESS_TOKEN": " tok-SECRET ", "PEEBOT_DATABASE_URL": "postgresql://u:pw@h/d"}
    )
    assert "SECRET" not in repr(settings) and "pw@" not in repr(settings)
    assert settings.secret("x_access_token") == "tok-SECRET"  # stripped, like every value


def test_empty_means_unset_except_for_the_lists() -> None:
    settings = Settings.from_environ(
        {
            "PEEBOT_SENSOR_RANGE_MINUTES": "",
            "PEEBOT_PARTITIONS_START": " ",
            "PEEBOT_POST_BACKENDS": "",
            "PEEBOT_POST_EVENT_TYPES": "",
        }
    )
    assert settings.sensor_range_minutes == 120 and settings.partitions_start is None
    assert settings.post_backends == ("dry_run",)
    assert settings.post_event_types == ()  # nothing posts
    assert Settings.from_environ({}).post_event_types == ("urination", "bulk_transfer")


def test_loaded_once_from_the_environment_and_dotenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("PEEBOT_LIVE_MINUTES=7\nPEEBOT_CHARTS_PER_RUN=3\n")
    monkeypatch.setenv("PEEBOT_CHARTS_PER_RUN", "5")  # the environment wins over .env
    settings = get_settings()
    assert (settings.live_minutes, settings.charts_per_run) == (7, 5)
    # a change behind its back (monkeypatch.setenv would also clear the cache: tests/conftest.py)
    monkeypatch.setitem(os.environ, "PEEBOT_CHARTS_PER_RUN", "9")
    assert get_settings() is settings  # loaded once
    get_settings.cache_clear()
    assert get_settings().charts_per_run == 9


def test_the_backends_settings_accept_are_the_ones_built() -> None:
    assert tuple(BACKEND_CLASSES) == POST_BACKENDS


def test_importing_the_code_location_writes_no_environment() -> None:
    script = (
        "import os; before = dict(os.environ); import peebot_dagster.definitions; "
        "changed = sorted(set(os.environ.items()) ^ set(before.items())); "
        "assert not changed, changed"
    )
    env = {**os.environ, "PEEBOT_DATABASE_URL": "postgresql://nobody@localhost:1/none"}
    env.pop("DAGSTER_EVENT_BATCH_SIZE", None)
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
