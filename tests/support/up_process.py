"""`peebot up` as a subprocess for tests: a clean environment (no PEEBOT_*/DAGSTER_* from the
caller), its log in a file, and nothing left running afterwards, whatever happened."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from peebot.supervisor import processes_using


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PEEBOT_", "DAGSTER_"))}
    env.update(PEEBOT_HOME=str(home), PYTHONUNBUFFERED="1", **extra)
    return env


@dataclass
class UpProcess:
    proc: subprocess.Popen[bytes]
    log: Path
    home: Path
    env: dict[str, str]

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self, n: int = 60) -> str:
        return "\n".join(self.text().splitlines()[-n:])

    def interrupt(self, timeout: float = 120) -> int:
        """Ctrl-C (to the whole group, as a terminal does) and the exit code."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
        return self.proc.wait(timeout)

    def db_url(self) -> str:
        return subprocess.run(
            [sys.executable, "-m", "peebot.cli", "db", "url"],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
            cwd=self.log.parent,
        ).stdout.strip()


@contextlib.contextmanager
def running_up(tmp_path: Path, *args: str, **env_extra: str) -> Iterator[UpProcess]:
    """Start `peebot up ARGS`; on exit stop it (Ctrl-C), then SIGKILL whatever a stack under
    its home left running and fail if there was anything.

    The home is not under pytest's basetemp unless PEEBOT_HOME says so: the embedded
    PostgreSQL runs as another user (`pgserver`) that must traverse it, and any concurrent
    pytest session resets /tmp/pytest-of-<user> to mode 0700."""
    scratch = Path(tempfile.mkdtemp(prefix="peebot-up-test-"))
    home = Path(env_extra.pop("PEEBOT_HOME", str(scratch / "home")))
    env = clean_env(home, **env_extra)
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "peebot.cli", "up", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=tmp_path,
        )
    up = UpProcess(proc, log, home, env)
    try:
        yield up
    finally:
        try:
            if proc.poll() is None:
                up.interrupt()
        finally:
            left = processes_using(home)
            for pid in left:  # never leak into the rest of the suite
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            shutil.rmtree(scratch, ignore_errors=True)
    assert left == [], f"left running: {left}\n{up.tail()}"


def graphql(port: int, query: str, **variables: Any) -> dict[str, Any] | None:
    """The webserver's answer to `query`, or None while it does not answer."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body: dict[str, Any] = json.loads(response.read())
    except OSError:
        return None
    data: dict[str, Any] | None = body.get("data")
    return data
