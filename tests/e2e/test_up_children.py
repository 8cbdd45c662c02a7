"""Whatever a child of `peebot up` dies of, `up` says which child and why, and restarts it
with back-off, or gives up and stops the whole stack with a non-zero exit.

Each child of the full stack is killed in turn with SIGKILL; the stack must come back each
time and do its work (readings written, detection runs succeeding, the UI answering)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import psutil
import psycopg
import pytest

from peebot.supervisor import free_port
from tests.support.up_process import UpProcess, graphql, running_up
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(1500)]

# How each child shows in its command line.
CHILDREN = {
    "simulate": "simulate",
    "ingest": " ingest ",
    "dashboard": " dashboard ",
    "code": "code-server",
    "daemon": "dagster-daemon",
    "dagster": "dagster-webserver",
}

RUNS_SINCE = """
query { runsOrError(filter: {statuses: [SUCCESS]}, limit: 50) {
  ... on Runs { results { runId startTime } } } }
"""

LOCATION = "{ repositoriesOrError { ... on RepositoryConnection { nodes { name } } } }"


def child_pid(up: UpProcess, name: str) -> int:
    marker = CHILDREN[name]
    for proc in psutil.Process(up.proc.pid).children():
        with_spaces = " " + " ".join(proc.cmdline()) + " "
        if marker in with_spaces:
            return proc.pid
    raise AssertionError(f"no {name} child of up\n{up.tail()}")


def readings_ingested_since(url: str, since: datetime) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM telemetry_reading WHERE ingested_at > %s", (since,)
        ).fetchone()
    return int(row[0]) if row else 0


def successful_runs_since(port: int, since: float) -> list[str]:
    data = graphql(port, RUNS_SINCE)
    if not data:
        return []
    results = data["runsOrError"].get("results", [])
    return [r["runId"] for r in results if (r["startTime"] or 0) > since]


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def location_loaded(port: int) -> bool:
    data = graphql(port, LOCATION)
    return bool(data and data["repositoriesOrError"].get("nodes"))


def kill_and_wait_for_restart(up: UpProcess, name: str) -> int:
    def restarts() -> list[str]:
        return re.findall(rf"{name} restarted \(pid (\d+)\)", up.text())

    before = len(restarts())
    pid = child_pid(up, name)
    os.kill(pid, signal.SIGKILL)
    wait_until(
        lambda: f"{name} (pid {pid}) was killed by SIGKILL" in up.text(),
        timeout=60,
        message=lambda: f"up to report {name}'s death\n{up.tail()}",
        alive=up.proc,
    )
    found = wait_until(
        lambda: len(restarts()) > before and restarts(),
        timeout=120,
        message=lambda: f"up to restart {name}\n{up.tail()}",
        alive=up.proc,
    )
    new_pid = int(found[-1])
    assert new_pid != pid and psutil.pid_exists(new_pid)
    return new_pid


def feed_recovers(up: UpProcess, url: str, name: str) -> None:
    killed_at = datetime.now(UTC)
    kill_and_wait_for_restart(up, name)
    wait_until(
        lambda: readings_ingested_since(url, killed_at) > 0,
        timeout=180,
        message=lambda: f"readings after {name} restarted\n{up.tail()}",
        alive=up.proc,
    )
    assert f"last output of {name}:" in up.text()


def dagster_recovers(up: UpProcess, port: int, name: str) -> None:
    killed_at = time.time()
    kill_and_wait_for_restart(up, name)
    wait_until(
        lambda: location_loaded(port),
        timeout=300,
        message=lambda: f"the code location after {name} restarted\n{up.tail()}",
        alive=up.proc,
    )
    wait_until(
        lambda: successful_runs_since(port, killed_at),
        timeout=300,
        message=lambda: f"a successful run after {name} restarted\n{up.tail()}",
        alive=up.proc,
    )


def test_each_child_killed_is_reported_and_restarted(tmp_path: Path) -> None:
    port, dashboard_port = free_port(), free_port()
    with running_up(
        tmp_path,
        "--simulate",
        "--no-random-events",
        "--port",
        str(port),
        "--dashboard-port",
        str(dashboard_port),
        PEEBOT_SENSOR_INTERVAL_SECONDS="5",
    ) as up:
        wait_until(
            lambda: "Ctrl-C stops everything" in up.text(),
            timeout=300,
            message=lambda: f"the stack to start\n{up.tail()}",
            alive=up.proc,
        )
        url = up.db_url()

        # the feed side: readings keep arriving after either end of the wire was killed
        for name in ("simulate", "ingest"):
            feed_recovers(up, url, name)
        # the dashboard answers again
        kill_and_wait_for_restart(up, "dashboard")
        wait_until(
            lambda: http_ok(f"http://127.0.0.1:{dashboard_port}/api/state"),
            timeout=120,
            message=lambda: f"the dashboard after its restart\n{up.tail()}",
            alive=up.proc,
        )
        # the Dagster side: the location loads again and detection runs succeed again
        for name in ("code", "daemon", "dagster"):
            dagster_recovers(up, port, name)

        # One long-lived code server serves both the webserver and the daemon: neither starts
        # code servers of its own (the daemon's would be replaced every minute and die of
        # "No heartbeat received in 20 seconds").
        for name in ("daemon", "dagster"):
            children = psutil.Process(child_pid(up, name)).children(recursive=True)
            assert children == [], f"{name} started {[c.cmdline() for c in children]}"
        assert up.interrupt() == 0, up.tail()
    assert up.text().splitlines()[-1].endswith("stopped")


def test_up_gives_up_on_a_child_that_keeps_dying(tmp_path: Path) -> None:
    """The sixth death of the ingest daemon inside five minutes stops the stack, non-zero."""
    with running_up(
        tmp_path, "--simulate", "--no-dagster", "--no-random-events", "--dashboard-port", "0"
    ) as up:
        wait_until(
            lambda: "Ctrl-C stops everything" in up.text(),
            timeout=180,
            message=lambda: f"the stack to start\n{up.tail()}",
            alive=up.proc,
        )
        for _ in range(5):
            kill_and_wait_for_restart(up, "ingest")
        last = child_pid(up, "ingest")
        os.kill(last, signal.SIGKILL)
        code = up.proc.wait(120)
    text = up.text()
    assert code == 1, text[-3000:]
    assert f"ingest (pid {last}) was killed by SIGKILL" in text
    assert "ingest failed 6 times in 300 s; giving up and stopping the stack" in text
    assert text.splitlines()[-1] == (
        "Error: ingest was killed by SIGKILL, its 6th failure in 300 s; gave up and stopped "
        "the stack"
    )


def test_up_with_an_external_database_creates_its_missing_home(
    tmp_path: Path, db_url: str, request: pytest.FixtureRequest
) -> None:
    """Issue 14's first report: PEEBOT_DATABASE_URL set and a PEEBOT_HOME that does not exist
    yet. The simulator writes its truth file there; the folder is created."""
    scratch = Path(tempfile.mkdtemp(prefix="peebot-up-test-"))  # see running_up
    home = scratch / "not" / "yet" / "home"
    request.addfinalizer(lambda: shutil.rmtree(scratch, ignore_errors=True))
    with running_up(
        tmp_path,
        "--simulate",
        "--no-dagster",
        "--no-random-events",
        "--speed",
        "10",
        "--dashboard-port",
        "0",
        PEEBOT_DATABASE_URL=db_url,
        PEEBOT_HOME=str(home),
    ) as up:
        truth = home / "truth.jsonl"
        wait_until(
            lambda: truth.exists() and "urination" in truth.read_text(),
            timeout=180,
            message=lambda: f"the first scheduled use in {truth}\n{up.tail()}",
            alive=up.proc,
        )
        wait_until(
            lambda: readings_ingested_since(db_url, datetime(2000, 1, 1, tzinfo=UTC)) > 0,
            timeout=120,
            message=lambda: f"readings in the external database\n{up.tail()}",
            alive=up.proc,
        )
        assert "was killed" not in up.text() and "exited with status" not in up.text()
        assert up.interrupt() == 0, up.tail()
