"""`peebot up` fails with one clear line, and leaves nothing running."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from pathlib import Path

from peebot.supervisor import free_port, processes_using
from tests.support.waiting import wait_until


def _up(tmp_path: Path, *args: str, **env_extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PEEBOT_", "DAGSTER_"))}
    env.update(PEEBOT_HOME=str(tmp_path / "home"), **env_extra)
    return subprocess.run(
        [sys.executable, "-m", "peebot.cli", "up", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )


def _one_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    return lines[0]


def test_port_in_use_is_one_line_and_starts_nothing(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen()
        proc = _up(
            tmp_path, "--simulate", "--port", str(port), "--dashboard-port", str(free_port())
        )
    assert proc.returncode != 0
    assert f"port {port}" in _one_line(proc) and "in use" in proc.stderr
    assert not (tmp_path / "home" / "pgdata").exists()  # checked before anything started


def test_unreachable_database_is_one_line(tmp_path: Path) -> None:
    proc = _up(
        tmp_path,
        "--simulate",
        "--port",
        str(free_port()),
        "--dashboard-port",
        str(free_port()),
        PEEBOT_DATABASE_URL="postgresql://peebot@127.0.0.1:1/peebot",
    )
    assert proc.returncode != 0
    line = _one_line(proc)
    assert "127.0.0.1" in line and "database peebot" in line


def test_ctrl_c_stops_everything_even_when_started_with_sigint_ignored(
    tmp_path: Path, scratch_dir: Path
) -> None:
    """A shell starts background jobs with SIGINT ignored; `up` must still stop on it."""
    import signal

    home = scratch_dir / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PEEBOT_", "DAGSTER_"))}
    env.update(PEEBOT_HOME=str(home))
    log = tmp_path / "up.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "peebot.cli",
                "up",
                "--simulate",
                "--no-dagster",
                "--dashboard-port",
                str(free_port()),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )
    try:
        wait_until(
            lambda: "Ctrl-C stops everything" in log.read_text(),
            timeout=60,
            interval=0.2,
            message=lambda: f"the stack up\n{log.read_text()}",
            alive=proc,
        )
        assert processes_using(home)  # simulator, ingest and the embedded PostgreSQL run
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
        left = processes_using(home)
        for pid in left:  # never leak into the rest of the suite
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert left == [], f"left running: {left}"
    assert log.read_text().splitlines()[-1].endswith("stopped")
