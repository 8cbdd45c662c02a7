"""The pure parts of `peebot status`: how Dagster gets its storage URL without the process
environment, where its home is, the settings."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from peebot.settings import Settings
from peebot.status.dagster_probe import (
    STORAGE_VAR,
    locate_dagster_home,
    references_env,
    storage_overrides,
)

REPO = Path(__file__).resolve().parents[2]


def test_dagster_gets_the_storage_url_as_config_not_through_the_environment() -> None:
    config = yaml.safe_load((REPO / "dagster.yaml").read_text())
    assert references_env(config, STORAGE_VAR)
    url = "postgresql+psycopg2://u@/peebot_dagster?host=%2Ftmp"
    overrides = storage_overrides(config, STORAGE_VAR, url)
    # Dagster merges overrides section by section: only the storage section is replaced
    assert overrides == {"storage": {"postgres": {"postgres_url": url}}}
    assert not references_env(config | overrides, STORAGE_VAR)
    # a config that does not read the variable (Dagster's default storage) is left alone
    assert storage_overrides({"telemetry": {"enabled": False}}, STORAGE_VAR, url) == {}
    nested = {"run_storage": {"config": {"urls": [{"env": STORAGE_VAR}, "other"]}}}
    assert storage_overrides(nested, STORAGE_VAR, url) == {
        "run_storage": {"config": {"urls": [url, "other"]}}
    }


def test_dagster_home_is_dagster_home_first_then_peebot_home(tmp_path: Path) -> None:
    own, peebot_home = tmp_path / "own", tmp_path / "home"
    (peebot_home / "dagster").mkdir(parents=True)
    (peebot_home / "dagster" / "dagster.yaml").write_text("{}\n")
    assert locate_dagster_home(None, peebot_home) == ((peebot_home / "dagster").resolve(), "")
    home, reason = locate_dagster_home(own, tmp_path / "nowhere")
    assert home is None and str(own) in reason and "run `peebot up`" in reason
    own.mkdir()
    (own / "dagster.yaml").write_text("{}\n")
    assert locate_dagster_home(own, peebot_home) == (own.resolve(), "")


def test_settings_read_the_environment_and_blank_means_unset(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("PEEBOT_HOME", "/srv/peebot")
    monkeypatch.setenv("DAGSTER_HOME", " /srv/dagster ")
    monkeypatch.setenv("PEEBOT_DAGSTER_STORAGE_URL", "")
    settings = Settings()
    assert settings.home == Path("/srv/peebot")
    assert settings.dagster_home == Path("/srv/dagster")
    assert settings.dagster_storage_url is None
    monkeypatch.delenv("DAGSTER_HOME")
    monkeypatch.setenv("PEEBOT_DAGSTER_STORAGE_URL", "   ")
    assert Settings().dagster_home is None and Settings().dagster_storage_url is None


def test_settings_read_a_dot_env_file_below_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PEEBOT_HOME", raising=False)
    monkeypatch.setenv("DAGSTER_HOME", "/from/env")
    (tmp_path / ".env").write_text("PEEBOT_HOME=/from/dotenv\nDAGSTER_HOME=/from/dotenv\n")
    settings = Settings()
    assert settings.home == Path("/from/dotenv")
    assert settings.dagster_home == Path("/from/env")
