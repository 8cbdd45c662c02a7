"""The pure parts of `peebot status`: where an event stands in the outbox, what a post's
detail says, how Dagster gets its storage URL without the process environment, the settings."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from peebot.settings import Settings
from peebot.status.dagster_probe import (
    STORAGE_VAR,
    locate_dagster_home,
    references_env,
    storage_overrides,
)
from peebot.status.render import post_detail, posted_cell
from peebot.status.shaping import posting_state

REPO = Path(__file__).resolve().parents[2]
# the Dagster instance config `peebot up` writes into its DAGSTER_HOME (package data)
INSTANCE_CONFIG = REPO / "peebot" / "config" / "dagster.yaml"
START = datetime(2026, 11, 27, 12, 0, 5, tzinfo=UTC)


def test_an_event_posted_by_any_backend_is_posted_the_dry_run_included() -> None:
    assert posting_state({"dry_run": "posted"}) == {"posted_to": ["dry_run"], "state": "posted"}
    assert posting_state({"x": "posted", "dry_run": "posted", "bluesky": "failed"}) == {
        "posted_to": ["dry_run", "x"],
        "state": "posted",
    }
    # nothing posted yet: the most advanced state of the rest
    assert posting_state({"x": "pending", "dry_run": "failed"})["state"] == "failed"
    assert posting_state({"x": "skipped", "dry_run": "pending"})["state"] == "pending"
    assert posting_state({}) == {"posted_to": [], "state": None}


def _event(**kw: Any) -> dict[str, Any]:
    return {"start": START, "posted_at": None, "posted_to": [], "post_state": None} | kw


def test_posted_cell_says_when_where_or_how_far() -> None:
    same_day = datetime(2026, 11, 27, 12, 1, 2, tzinfo=UTC)
    next_day = datetime(2026, 11, 28, 0, 0, 9, tzinfo=UTC)
    assert posted_cell(_event(posted_at=same_day, posted_to=["dry_run"])) == "12:01:02 dry_run"
    assert posted_cell(_event(posted_at=next_day, posted_to=["x"])) == "11-28 00:00:09 x"
    # stamped on the event by an older release, no outbox row
    assert posted_cell(_event(posted_at=same_day)) == "12:01:02"
    # an outbox row marked posted without a time
    assert posted_cell(_event(posted_to=["dry_run"])) == "dry_run"
    assert posted_cell(_event(post_state="pending")) == "pending"
    assert posted_cell(_event()) == "-"


def _post(**kw: Any) -> dict[str, Any]:
    base = {
        "status": "pending",
        "external_id": None,
        "skip_reason": None,
        "error_kind": None,
        "attempts": 0,
        "not_before": None,
    }
    return base | kw


def test_post_detail_is_the_one_thing_to_know() -> None:
    assert post_detail(_post(status="posted", external_id="dry-7")) == "dry-7"
    assert (
        post_detail(_post(status="posted", external_id="17", error_kind="duplicate"))
        == "17 (duplicate)"
    )
    assert post_detail(_post(status="skipped", skip_reason="too old")) == "too old"
    assert (
        post_detail(_post(status="failed", error_kind="permanent", attempts=2))
        == "permanent (attempt 2)"
    )
    waiting = _post(not_before=datetime(2026, 11, 27, 12, 20, tzinfo=UTC))
    assert post_detail(waiting) == "waits until 12:20:00"
    assert post_detail(_post()) == "-"


def test_dagster_gets_the_storage_url_as_config_not_through_the_environment() -> None:
    config = yaml.safe_load(INSTANCE_CONFIG.read_text())
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
