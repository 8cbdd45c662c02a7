"""The simulator's settings: `peebot simulate` takes its defaults from them, and a bad value
is one line naming the variable. (`.env.example` against every package's settings:
tests/foundation/test_env_example.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from peebot.commands.simulate import simulate
from peebot_sim.settings import PREFIX, SettingsError, get_settings
from tests.support.tlcp_harness import (
    free_port,
    make_test_client,
    port_open,
    read_sent_log,
    subscribe,
)
from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [n for n in os.environ if n.startswith(PREFIX)]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_values_from_the_environment(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEEBOT_SIM_PORT", "8181")
    monkeypatch.setenv("PEEBOT_SIM_SPEED", "60")
    monkeypatch.setenv("PEEBOT_SIM_START", "")  # empty: unset
    s = get_settings()
    assert (s.sim_port, s.sim_speed, s.sim_start) == (8181, 60.0, None)


def test_a_bad_value_stops_simulate_with_one_line(
    clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PEEBOT_SIM_PORT", "eighty")
    with pytest.raises(SettingsError, match=r"^PEEBOT_SIM_PORT: "):
        get_settings()
    result = CliRunner().invoke(simulate, [])
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: PEEBOT_SIM_PORT: "), result.output


def test_simulate_listens_where_the_settings_say(tmp_path: Path) -> None:
    """No --host/--port/--sent-log given: the server binds PEEBOT_SIM_HOST:PEEBOT_SIM_PORT and
    logs to PEEBOT_SIM_SENT_LOG, read from a `.env` in its working folder."""
    port = free_port()
    sent_log = tmp_path / "sent.jsonl"
    (tmp_path / ".env").write_text(
        f"PEEBOT_SIM_HOST=127.0.0.1\nPEEBOT_SIM_PORT={port}\nPEEBOT_SIM_SENT_LOG={sent_log}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(PREFIX)}
    env["PYTHONPATH"] = str(REPO)
    command = [sys.executable, "-m", "peebot.commands.simulate", "--script", "counter"]
    proc = subprocess.Popen(
        [*command, "--rate", "50", "--count", "1000000"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: port_open("127.0.0.1", port), message=f"port {port}", alive=proc)
        client = make_test_client(f"http://127.0.0.1:{port}")
        _, listener = subscribe(client, ["AIRLOCK000001"])
        client.connect()
        try:
            wait_until(lambda: listener.updates, message="an update on the client")
            # what the client got is in the log the settings named
            wait_until(lambda: sent_log.exists() and read_sent_log(sent_log), message="sent log")
            assert {r["item"] for r in read_sent_log(sent_log)} >= {"AIRLOCK000001"}
        finally:
            client.disconnect()
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
