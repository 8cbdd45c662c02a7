"""The wheel is the product: built, installed into a fresh virtual environment away from the
clone, `peebot up --simulate` starts the whole stack from what the wheel carries (Dagster's
instance config and workspace come from package data, the migrations from `_sql`)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import urllib.request
import zipfile
from pathlib import Path

import pytest

from peebot.supervisor import free_port, processes_using
from peebot_ingest import speedups
from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(900)]


def _uv() -> str:
    found = shutil.which("uv")
    if found is None:
        pytest.skip("uv is not on PATH: it builds the wheel and the fresh environment")
    return found


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _code_location_loaded(port: int) -> bool:
    query = json.dumps({"query": "{ repositoriesOrError { __typename } }"}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=query,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            body = json.loads(response.read())
    except OSError:
        return False
    return bool(
        body.get("data", {}).get("repositoriesOrError", {}).get("__typename")
        == "RepositoryConnection"
    )


def test_installed_wheel_runs_the_stack(tmp_path: Path, scratch_dir: Path) -> None:
    uv = _uv()
    dist = tmp_path / "dist"
    _run([uv, "build", "--wheel", "--out-dir", str(dist)], cwd=REPO)
    wheel = next(dist.glob("peebot-*.whl"))

    # the locked versions, then the wheel itself (no editable install, no clone on sys.path)
    requirements = tmp_path / "requirements.txt"
    _run(
        [
            uv,
            "export",
            "--frozen",
            "--no-dev",
            "--no-hashes",
            "--no-emit-project",
            "-o",
            str(requirements),
        ],
        cwd=REPO,
    )
    venv = scratch_dir / "venv"  # it holds the embedded PostgreSQL's binaries
    _run([uv, "venv", "--python", sys.executable, str(venv)], cwd=tmp_path)
    python = venv / "bin" / "python"
    _run(
        [uv, "pip", "install", "--python", str(python), "-r", str(requirements), str(wheel)],
        cwd=tmp_path,
    )

    # nothing of the clone may leak in: run from an empty folder with a clean environment
    work = scratch_dir / "elsewhere"
    work.mkdir()
    home = work / "home"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PEEBOT_", "DAGSTER_", "PYTHON", "VIRTUAL_ENV", "UV_"))
    }
    env.update(PEEBOT_HOME=str(home), PYTHONUNBUFFERED="1")
    origin = _run(
        [str(python), "-c", "import peebot, peebot_dagster; print(peebot.__file__)"],
        cwd=work,
        env=env,
    )
    assert str(venv) in origin, f"peebot imported from {origin.strip()}, not the wheel"
    # the writer's C loops: in the wheel wherever the build here compiled them
    loops = _run(
        [str(python), "-c", "from peebot_ingest import speedups; print(speedups.describe())"],
        cwd=work,
        env=env,
    )
    assert loops.strip() == speedups.describe()

    port, dashboard_port = free_port(), free_port()
    log = tmp_path / "up.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                str(venv / "bin" / "peebot"),
                "up",
                "--simulate",
                "--port",
                str(port),
                "--dashboard-port",
                str(dashboard_port),
            ],
            cwd=work,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until(
            lambda: _code_location_loaded(port),
            timeout=300,
            message=lambda: f"the wheel's Dagster UI on :{port}\n{log.read_text()[-3000:]}",
            alive=proc,
        )
        assert (home / "dagster" / "dagster.yaml").is_file()
        assert (home / "dagster" / "workspace.yaml").is_file()
        # the dashboard's page and its vendored scripts are package data of the wheel
        for path in ("/", "/static/app.js", "/static/vendor/uplot/uPlot.iife.min.js"):
            with urllib.request.urlopen(
                f"http://127.0.0.1:{dashboard_port}{path}", timeout=10
            ) as r:
                assert r.status == 200 and r.read(), path
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 0, log.read_text()[-3000:]
        wait_until(
            lambda: not processes_using(home),
            timeout=60,
            message=lambda: f"processes left under {home}: {processes_using(home)}",
        )
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        for pid in processes_using(home):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_without_a_compiler_the_wheel_is_pure_python(tmp_path: Path) -> None:
    """The C loops are optional: with no working compiler the build goes on, says why in one
    line, and the wheel carries no compiled module (any platform's)."""
    uv = _uv()
    dist = tmp_path / "dist"
    env = {**os.environ, "CC": str(tmp_path / "no-such-cc")}
    done = subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(dist)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "the optional C loops were not built" in done.stderr
    wheel = next(dist.glob("peebot-*.whl"))
    assert wheel.name.endswith("-py3-none-any.whl"), wheel.name
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
    assert not [n for n in names if n.endswith(".so") or n.endswith(".c")], names
    assert "peebot_ingest/speedups.py" in names


def test_the_sdist_carries_the_c_source_not_a_compiled_module(tmp_path: Path) -> None:
    """An sdist is built anywhere: it ships `_speedups.c` and the build hook, never a module
    compiled for this machine (the hook compiles for wheels only)."""
    uv = _uv()
    _run([uv, "build", "--sdist", "--out-dir", str(tmp_path)], cwd=REPO)
    sdist = next(tmp_path.glob("peebot-*.tar.gz"))
    with tarfile.open(sdist) as tf:
        names = tf.getnames()
    assert not [n for n in names if n.endswith(".so")], names
    assert any(n.endswith("peebot_ingest/_speedups.c") for n in names)
    assert any(n.endswith("/hatch_build.py") for n in names)
