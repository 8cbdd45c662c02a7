"""The ingest daemon's settings: values read as the daemon always read them, a bad value one
line naming the variable, `.env` honoured. (`.env.example` against every package's settings:
tests/foundation/test_env_example.py.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from peebot.cli import cli
from peebot_ingest.daemon import DaemonConfig
from peebot_ingest.settings import PREFIX, SettingsError, get_settings


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No PEEBOT_ variable set, and a working folder without a `.env`."""
    for name in [n for n in os.environ if n.startswith(PREFIX)]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_values_are_read_as_they_always_were(
    clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PEEBOT_CLOCK_CHECK", " OFF ")
    monkeypatch.setenv("PEEBOT_FEED_FAST_RECONNECT", "yes")
    monkeypatch.setenv("PEEBOT_INGEST_BATCH_ROWS", "2e4")
    monkeypatch.setenv("PEEBOT_INGEST_BATCH_SECONDS", " 0.5 ")
    monkeypatch.setenv("PEEBOT_FEED_TRANSPORT", "  ")  # blank: unset
    monkeypatch.setenv("PEEBOT_HOME", "")
    s = get_settings()
    assert (s.clock_check, s.feed_fast_reconnect) == (False, True)
    assert s.ingest_batch_rows == 20_000 and isinstance(s.ingest_batch_rows, int)
    assert s.ingest_batch_seconds == 0.5
    assert s.feed_transport is None and s.home == Path(".peebot")


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PEEBOT_CLOCK_CHECK", "maybe", "PEEBOT_CLOCK_CHECK must be on or off, not 'maybe'"),
        (
            "PEEBOT_INGEST_BATCH_ROWS",
            "lots",
            "PEEBOT_INGEST_BATCH_ROWS must be a number, not 'lots'",
        ),
        (
            "PEEBOT_RETENTION_DAYS",
            "a month",
            "PEEBOT_RETENTION_DAYS must be a number, not 'a month'",
        ),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(
    clean_env: None, monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        get_settings()
    assert str(caught.value) == message
    # and a command says just that, in one line, without a traceback
    result = CliRunner().invoke(cli, ["db", "url"])
    assert result.exit_code != 0
    assert result.output.strip().splitlines() == [f"Error: {message}"]
    assert not isinstance(result.exception, SettingsError)  # handled, not raised


def test_dot_env_is_read_and_the_environment_wins(
    clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    Path(".env").write_text("PEEBOT_INGEST_BATCH_ROWS=123\nPEEBOT_SUMMARY_SECONDS=7\n")
    monkeypatch.setenv("PEEBOT_SUMMARY_SECONDS", "9")
    s = get_settings()
    assert (s.ingest_batch_rows, s.summary_seconds) == (123, 9.0)


def test_the_daemon_config_from_default_settings_is_the_default_config(clean_env: None) -> None:
    from_settings = DaemonConfig.from_settings("postgresql://x/y")
    assert from_settings == DaemonConfig("postgresql://x/y")


def test_command_line_options_win_over_the_settings(
    clean_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PEEBOT_CLOCK_CHECK", "on")
    monkeypatch.setenv("PEEBOT_JOURNAL_DIR", str(tmp_path / "from-env"))
    monkeypatch.setenv("PEEBOT_STALE_AFTER_SECONDS", "3")
    config = DaemonConfig.from_settings("postgresql://x/y", clock_check=False, summary_seconds=None)
    assert config.clock_check is False and config.signal.clock_check is False
    assert config.journal_dir == tmp_path / "from-env"
    assert config.signal.stale_after_seconds == 3.0 and config.summary_seconds == 60.0
