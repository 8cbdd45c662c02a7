"""The real stack in subprocesses: `peebot up --simulate` with scheduled toilet uses.

Readings arrive, the watermark sensor launches detection runs, every scheduled use lands in
`detected_event`, a dry-run post is written for it, the webserver answers GraphQL with the
whole code location and runs a backfill of a recent hour, and Ctrl-C leaves no process.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from dagster_graphql import DagsterGraphQLClient

from peebot.supervisor import free_port, processes_using
from tests.support.waiting import wait_until

# `up` starts the simulator SPEED x 3 - 3 minutes back (9 min at x4), so it runs fast for
# three minutes and then follows the clock. The uses fall in the fast part, after Dagster is
# up: the live pass finds them (the watermark pass would confirm them 30 minutes later).
SPEED = 4
SCENARIO = "use@+4m:3,use@+6m:2,use@+8m:4"
DETECTION_ASSETS = {"urine_tank_events", "upa_cycles", "signal_events", "clean_water_events"}

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]


def wait_for(what: str, check: Callable[[], Any], timeout: float, log: Path) -> Any:
    def with_log() -> str:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        return f"{what}\n--- up log ---\n{tail}"

    return wait_until(check, timeout=timeout, interval=1.0, message=with_log)


def graphql(client: DagsterGraphQLClient, query: str, **variables: Any) -> dict[str, Any]:
    return client._execute(query, variables)  # the public client has no backfill call


REPOSITORY_QUERY = """
{
  repositoriesOrError {
    ... on RepositoryConnection {
      nodes {
        name
        location { name }
        jobs { name }
        sensors { name sensorState { status } }
        schedules { name }
        assetNodes { assetKey { path } }
        assetChecks: assetNodes { assetChecksOrError { ... on AssetChecks { checks { name } } } }
      }
    }
  }
}
"""

LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}
"""

BACKFILL_STATUS = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    ... on PartitionBackfill { status numPartitions }
  }
}
"""


def test_up_simulate_detects_posts_and_stops_cleanly(tmp_path: Path, scratch_dir: Path) -> None:
    home = scratch_dir / "home"
    log = tmp_path / "up.log"
    port, dashboard_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PEEBOT_", "DAGSTER_"))}
    env.update(
        PEEBOT_HOME=str(home),
        PEEBOT_POST_MIN_GAP_MINUTES="0",  # three uses within minutes: post each one
        PEEBOT_SENSOR_INTERVAL_SECONDS="5",
        # the posting poll once an hour: the posts below must come from the detection runs
        # that stored their events (post_after_detection_sensor), not from the poll
        PEEBOT_POST_SENSOR_INTERVAL_S="3600",
        PYTHONUNBUFFERED="1",
    )
    argv = [
        sys.executable,
        "-m",
        "peebot.cli",
        "up",
        "--simulate",
        "--speed",
        str(SPEED),
        "--scenario",
        SCENARIO,
        "--no-random-events",
        "--seed",
        "5",
        "--port",
        str(port),
        "--dashboard-port",
        str(dashboard_port),
    ]
    with log.open("w") as out:
        proc = subprocess.Popen(
            argv,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=tmp_path,
        )
    try:
        wait_for("the Dagster UI", lambda: "Dagster UI" in log.read_text(), 180, log)
        url = subprocess.run(
            [sys.executable, "-m", "peebot.cli", "db", "url"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            cwd=tmp_path,
        ).stdout.strip()

        # --- the code location, through the running webserver's GraphQL API
        client = DagsterGraphQLClient("127.0.0.1", port_number=port)
        repo = graphql(client, REPOSITORY_QUERY)["repositoriesOrError"]["nodes"][0]
        assets = {"/".join(a["assetKey"]["path"]) for a in repo["assetNodes"]}
        assert DETECTION_ASSETS | {"telemetry_reading", "daily_summary"} <= assets
        checks = {
            c["name"]
            for n in repo["assetChecks"]
            for c in (n["assetChecksOrError"] or {}).get("checks", [])
        }
        assert {"feed_freshness", "no_duplicate_events", "plausible_event_rate"} <= checks
        jobs = {j["name"] for j in repo["jobs"]}
        assert {"detection_job", "post_events_job", "instance_cleanup_job"} <= jobs
        sensors = {s["name"]: s["sensorState"]["status"] for s in repo["sensors"]}
        assert sensors["telemetry_watermark_sensor"] == "RUNNING"
        assert sensors["posting_sensor"] == "RUNNING"
        assert sensors["post_after_detection_sensor"] == "RUNNING"

        # --- the minute partitions start where the data starts (the simulator's start,
        # SPEED x 3 - 3 minutes back), not days before it
        kept = (home / "partitions_start").read_text().strip()
        first = datetime.strptime(kept, "%Y-%m-%d-%H:%M").replace(tzinfo=UTC)
        assert timedelta(0) < datetime.now(UTC) - first < timedelta(minutes=SPEED * 3 + 2)
        assert f"partitions   one a minute from {kept} UTC" in log.read_text()

        # --- a backfill of the stack's first minutes: launched over GraphQL, one run, completes
        keys = [(first + timedelta(minutes=i)).strftime("%Y-%m-%d-%H:%M") for i in range(5)]
        launched = graphql(
            client,
            LAUNCH_BACKFILL,
            params={
                "partitionNames": keys,
                "assetSelection": [{"path": [name]} for name in sorted(DETECTION_ASSETS)],
            },
        )["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        backfill_id = launched["backfillId"]

        # --- every scheduled use is detected and posted (dry run)
        truth_file = home / "truth.jsonl"

        def scheduled_uses() -> list[dict[str, Any]]:
            if not truth_file.exists():
                return []
            rows = [json.loads(line) for line in truth_file.read_text().splitlines() if line]
            return [r for r in rows if r["kind"] == "urination"]

        uses = wait_for(
            "the simulator's three uses",
            lambda: len(scheduled_uses()) == 3 and scheduled_uses(),
            240,
            log,
        )

        def detected() -> list[tuple[datetime, dict[str, Any]]]:
            with psycopg.connect(url) as conn:
                return conn.execute(
                    "SELECT detected_at, metadata FROM detected_event "
                    "WHERE event_type = 'urination' AND retracted_at IS NULL ORDER BY detected_at"
                ).fetchall()

        events = wait_for(
            "three detected uses", lambda: len(detected()) >= 3 and detected(), 300, log
        )
        assert len(events) == 3
        for use, (start, meta) in zip(uses, events, strict=True):
            true_start = datetime.fromisoformat(use["start"].replace("Z", "+00:00"))
            assert abs((start - true_start).total_seconds()) <= 30
            assert meta["delta"] == pytest.approx(
                use["level_after"] - use["level_before"], abs=1.01
            )

        posts_file = home / "posts.jsonl"

        def posts() -> list[dict[str, Any]]:
            if not posts_file.exists():
                return []
            return [json.loads(line) for line in posts_file.read_text().splitlines() if line]

        written = wait_for("three dry-run posts", lambda: len(posts()) >= 3 and posts(), 180, log)
        assert len(written) == 3
        with psycopg.connect(url) as conn:
            assert conn.execute(
                "SELECT count(*) FROM social_post WHERE status = 'posted' AND backend = 'dry_run'"
            ).fetchone() == (3,)

        # --- the live dashboard shows them, posted: pushed to it by NOTIFY, not polled
        assert f"dashboard    http://127.0.0.1:{dashboard_port}" in log.read_text()

        def dashboard_posted_uses() -> Any:
            api = f"http://127.0.0.1:{dashboard_port}/api/state"
            with urllib.request.urlopen(api, timeout=10) as r:
                state = json.load(r)
            posted = [
                e
                for e in state["events"]
                if e["type"] == "urination"
                and any(p["backend"] == "dry_run" and p["status"] == "posted" for p in e["posts"])
            ]
            return len(posted) == 3 and state

        state = wait_for("the dashboard's three posted uses", dashboard_posted_uses, 60, log)
        assert state["watermark"] is not None and state["now"]["NODE3000005"] is not None
        assert state["today"]["uses"] >= 3

        def backfill_status() -> str | None:
            result = graphql(client, BACKFILL_STATUS, id=backfill_id)["partitionBackfillOrError"]
            status = result.get("status")
            return (
                status
                if status in ("COMPLETED", "COMPLETED_SUCCESS", "FAILED", "COMPLETED_FAILED")
                else None
            )

        assert wait_for("the backfill", backfill_status, 240, log) in (
            "COMPLETED",
            "COMPLETED_SUCCESS",
        )
        runs = graphql(
            client,
            """
            query($id: String!) { partitionBackfillOrError(backfillId: $id) {
              ... on PartitionBackfill { runs(limit: 100) { status } } } }
        """,
            id=backfill_id,
        )["partitionBackfillOrError"]["runs"]
        assert [r["status"] for r in runs] == ["SUCCESS"]  # single_run: one run for the range
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
        try:
            code = proc.wait(120)
        finally:
            leftovers = processes_using(home)
            for pid in leftovers:  # never leak into the rest of the suite
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    text = log.read_text()
    assert leftovers == [], f"processes left running: {leftovers}"
    assert code == 0, text[-3000:]
    assert "stopped" in text.splitlines()[-1]
