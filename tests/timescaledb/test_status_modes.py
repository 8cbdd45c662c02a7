"""`peebot status` in both storage modes: the storage mode and the policies in force, with what
retention last did."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from ts_storage import burst, insert_readings, mode_of, peebot, utcnow_minute

from peebot_ingest import reading_policy as policies


@pytest.fixture
def no_dagster(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("PEEBOT_DAGSTER_STORAGE_URL", raising=False)
    monkeypatch.setenv("PEEBOT_HOME", str(tmp_path / "home"))


def _row(output: str, label: str) -> str:
    """A summary row with its folded continuation lines, spaces collapsed."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(label))
    row = [lines[start]]
    for line in lines[start + 1 :]:
        if not line.startswith(" "):
            break
        row.append(line)
    return " ".join(" ".join(row).split())


def test_status_shows_mode_and_policies_in_force(storage_db_env: str, no_dagster: None) -> None:
    url = storage_db_env
    mode = mode_of(url)
    before = peebot("status", "--no-dagster")
    assert before.exit_code == 0, before.output
    assert _row(before.stdout, "database").split()[1].rstrip(",") == mode
    storage = _row(before.stdout, "storage")
    assert "raw readings kept 30 d" in storage and "retention never ran" in storage
    insert_readings(url, burst(utcnow_minute() - timedelta(days=45), 4))
    policies.set_reading_policy(url, retention_days=40)
    policies.maintain(url)
    after = peebot("status", "--no-dagster")
    assert after.exit_code == 0, after.output
    storage = _row(after.stdout, "storage")
    assert "raw readings kept 40 d" in storage and "raw from " in storage
    if mode == "timescaledb":
        assert "compressed after 7 d; minutes kept for good" in storage
        assert "removed 1 chunks" in storage
    else:
        assert "compressed" not in storage and "removed 4 readings" in storage
    data = json.loads(peebot("status", "--no-dagster", "--json").stdout)
    policy = data["database"]["policy"]
    assert (policy["retention_days"], policy["compress_after_days"]) == (40, 7)
    assert policy["failed_jobs"] == []
