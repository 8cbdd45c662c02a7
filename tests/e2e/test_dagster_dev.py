"""A Dagster user's first moves, on a clean clone with a clean environment (no PEEBOT_* and no
DAGSTER_* variables): `dagster definitions validate -w workspace.yaml` passes, and `dagster dev`
comes up and serves the code location over GraphQL, with Dagster's own temporary storage."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from peebot.supervisor import free_port
from tests.support.up_process import graphql
from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]

ASSETS = """
{ repositoriesOrError { ... on RepositoryConnection { nodes {
    location { name } assetNodes { assetKey { path } } } } } }
"""


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not on PATH")
    return found


def _clean_env() -> dict[str, str]:
    drop = ("PEEBOT_", "DAGSTER_", "VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


@pytest.fixture(scope="module")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A `git clone` of this repository (what is committed) with its own `uv sync`."""
    if not (REPO / ".git").exists():
        pytest.skip(f"{REPO} is not a git checkout")
    git, uv = _tool("git"), _tool("uv")
    target = tmp_path_factory.mktemp("clone") / "peebot"
    subprocess.run([git, "clone", "--quiet", str(REPO), str(target)], check=True, timeout=300)
    done = subprocess.run(
        [uv, "sync", "--frozen", "--quiet"],
        cwd=target,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    yield target


def test_definitions_validate_on_a_clean_clone(clone: Path) -> None:
    done = subprocess.run(
        [_tool("uv"), "run", "--frozen", "dagster", "definitions", "validate", "-w",
         "workspace.yaml"],
        cwd=clone,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "Validation successful for code location peebot" in output, output
    assert "PEEBOT_DAGSTER_STORAGE_URL" not in output


def test_dagster_dev_on_a_clean_clone_serves_the_code_location(clone: Path) -> None:
    port = free_port()
    log = clone / "dagster-dev.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [_tool("uv"), "run", "--frozen", "dagster", "dev", "-p", str(port)],
            cwd=clone,
            env=_clean_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:

        def asset_keys() -> set[str]:
            data = graphql(port, ASSETS)
            nodes = (data or {}).get("repositoriesOrError", {}).get("nodes") or []
            return {"/".join(a["assetKey"]["path"]) for n in nodes for a in n["assetNodes"]}

        keys = wait_until(
            asset_keys,
            timeout=300,
            message=lambda: (
                "dagster dev to serve the code location\n" + log.read_text(errors="replace")[-3000:]
            ),
            alive=proc,
        )
        assert {"telemetry_reading", "urine_tank_events"} <= keys
    finally:
        family = [proc.pid]
        with contextlib.suppress(psutil.NoSuchProcess):
            family += [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C, as a terminal sends it
        try:
            proc.wait(120)
        finally:
            for pid in family:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
    text = log.read_text(errors="replace")
    # the instance config of `peebot up` (which needs Dagster's storage URL) is not picked up
    assert "PEEBOT_DAGSTER_STORAGE_URL" not in text, text[-3000:]
