"""`peebot up`: the whole stack on one machine.

Database (embedded unless PEEBOT_DATABASE_URL is set), migrations, the local simulator
(`--simulate`) or the live feed, the ingest daemon, and Dagster's webserver and daemon on an
instance stored in the same PostgreSQL server (its own database). Ctrl-C stops all of it.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import click

from peebot.partitions_start import MINUTE_FMT, stack_partitions_start
from peebot.restart_policy import RestartPolicy
from peebot.settings import get_settings
from peebot.supervisor import (
    Child,
    StackFailed,
    StartupError,
    Supervisor,
    free_port,
    port_accepts,
    port_is_free,
    signals_raise_keyboard_interrupt,
)
from peebot_dagster.process_env import DAGSTER_PROCESS_ENV
from peebot_dagster.settings import get_settings as dagster_settings
from peebot_ingest import db as database
from peebot_ingest import migrations
from peebot_ingest.settings import get_settings as ingest_settings


def _bin(name: str) -> str:
    """An executable of this environment (the venv's bin folder first)."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if not found:
        raise StartupError(f"missing dependency: `{name}` is not installed (run `uv sync`)")
    return found


def dagster_storage_url(app_url: str) -> str:
    """Dagster's instance storage: PEEBOT_DAGSTER_STORAGE_URL, or a second database
    (`peebot_dagster`) on the same server as the application database."""
    explicit = get_settings().dagster_storage_url
    if explicit:
        return explicit
    url = database.ensure_database(
        database.with_database(app_url, "postgres"), database.DAGSTER_DB_NAME
    )
    return database.sqlalchemy_url(url)


# The code location as an installed module: no working directory, so the same code server
# serves a clone (editable install) and a wheel.
CODE_LOCATION_MODULE = "peebot_dagster.definitions"
CODE_LOCATION_NAME = "peebot"


def workspace_yaml(code_server_port: int) -> str:
    """The webserver and the daemon both talk to `up`'s one long-lived code server.

    Why not a `python_module` entry: then each of them starts a code server of its own, and
    the daemon replaces its one every 60 s (Dagster's workspace refresh), abandoning the old
    one to die of "No heartbeat received in 20 seconds" after importing the whole code
    location again: about one import of pandas, matplotlib and Dagster a minute on a 2-core
    machine. A code server that `up` supervises loads the code once (docs/ARCHITECTURE.md,
    "Running it")."""
    return (
        "load_from:\n"
        "  - grpc_server:\n"
        "      host: 127.0.0.1\n"
        f"      port: {code_server_port}\n"
        f"      location_name: {CODE_LOCATION_NAME}\n"
    )


def instance_config() -> str:
    """The project's Dagster instance config (package data, so a wheel carries it too)."""
    return (resources.files("peebot") / "config" / "dagster.yaml").read_text(encoding="utf-8")


def prepare_dagster_home(home: Path, code_server_port: int) -> Path:
    """DAGSTER_HOME with the project's dagster.yaml and a workspace.yaml (written fresh on
    every start)."""
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text(instance_config(), encoding="utf-8")
    (dagster_home / "workspace.yaml").write_text(workspace_yaml(code_server_port), encoding="utf-8")
    return dagster_home


@dataclass(frozen=True)
class UpOptions:
    simulate: bool
    speed: float
    scenario: str | None
    seed: int | None
    random_events: bool
    port: int
    host: str
    sim_port: int
    no_dagster: bool
    dashboard_port: int


# A child that dies is restarted after 1, 2, 4, 8, 16 s; the sixth death inside five minutes
# stops the stack with a non-zero exit.
RESTART_POLICY = RestartPolicy(max_restarts=5, window_s=300.0, base_delay_s=1.0, max_delay_s=30.0)

# Posts of the offline demo (`--simulate`) wait this long after each other, unless
# PEEBOT_POST_MIN_GAP_MINUTES says otherwise.
DEMO_POST_GAP_MINUTES = 1

# Without --scenario, the offline demo schedules a few uses so that events (and dry-run
# posts) appear within minutes of starting; the crew's random uses follow.
DEMO_SCENARIO = "use@+40s,use@+3m,use@+7m"


@click.command("up")
@click.option("--simulate", is_flag=True, help="Use the local simulator instead of ISS Live.")
@click.option(
    "--speed",
    type=float,
    default=1.0,
    show_default=True,
    help="Simulated time runs this many times faster (with --simulate).",
)
@click.option(
    "--scenario",
    default=None,
    help="Simulator scenario (e.g. 'use@+60s,use@+180s'); see `peebot simulate --help`.",
)
@click.option("--seed", type=int, default=None, help="Simulator seed.")
@click.option(
    "--random-events/--no-random-events",
    default=True,
    show_default=True,
    help="Simulated crew uses, transfers and LOS at random, besides the scenario.",
)
@click.option("--port", type=int, default=3000, show_default=True, help="Dagster UI port.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Dagster UI host.")
@click.option("--sim-port", type=int, default=0, help="Simulator port (default: a free one).")
@click.option("--no-dagster", is_flag=True, help="Only database, feed and ingest.")
@click.option(
    "--dashboard-port",
    type=int,
    default=8000,
    show_default=True,
    help="Live dashboard port (on --host; 0: no dashboard).",
)
def up(**options: Any) -> None:
    """Run the whole stack: database, feed, ingest, Dagster. Ctrl-C stops all of it."""
    sup = Supervisor()
    state = {"started_embedded": False}
    try:
        with signals_raise_keyboard_interrupt():
            _run(sup, state, UpOptions(**options))
    except (StartupError, StackFailed, database.DatabaseError) as exc:
        _shutdown(sup, state)
        raise click.ClickException(str(exc)) from exc
    except KeyboardInterrupt:
        sup.say("up", "stopping (Ctrl-C)...")
    _shutdown(sup, state)
    sup.say("up", "stopped")


def stack_defaults(home: Path, simulate: bool) -> dict[str, str]:
    """What `up` sets for its children where the operator set nothing (in the environment
    or in `.env`: a value there is theirs to keep): dry-run posts in the home, and a demo's
    posts a minute apart (its scheduled uses come minutes apart; production waits 20 min)."""
    chosen = dagster_settings().model_fields_set
    defaults: dict[str, str] = {}
    if "dry_run_file" not in chosen:
        defaults["PEEBOT_DRY_RUN_FILE"] = str(home / "posts.jsonl")
    if simulate and "post_min_gap_minutes" not in chosen:
        defaults["PEEBOT_POST_MIN_GAP_MINUTES"] = str(DEMO_POST_GAP_MINUTES)
    return defaults


def posts_line(env: dict[str, str], home: Path) -> str:
    """The startup banner's line about posts, as the children will see the settings."""
    settings = dagster_settings()
    backends = ", ".join(settings.post_backends)
    where = env.get("PEEBOT_DRY_RUN_FILE") or str(settings.dry_run_file or home / "posts.jsonl")
    gap = env.get("PEEBOT_POST_MIN_GAP_MINUTES") or f"{settings.post_min_gap_minutes:g}"
    shown = f"dry run -> {where}" if backends == "dry_run" else backends
    return f"posts        {shown}, at least {gap} min apart"


def first_reading(url: str) -> datetime | None:
    """When the application database's first reading was taken (None while it has none)."""
    with database.connect(url) as conn:
        first: datetime | None = database.scalar(conn, "SELECT min(ts) FROM telemetry_reading")
    return first


def _shutdown(sup: Supervisor, state: dict[str, bool]) -> None:
    sup.stop_all()
    if state["started_embedded"]:
        # `up` started the embedded server, so `up` stops it: nothing is left running.
        database.stop_embedded()


def _run(sup: Supervisor, state: dict[str, bool], opts: UpOptions) -> None:
    home = database.peebot_home()
    embedded = not ingest_settings().database_url
    was_running = (home / "pgdata" / "postmaster.pid").exists()
    if not opts.no_dagster and not port_is_free(opts.host, opts.port):
        raise StartupError(
            f"port {opts.port} on {opts.host} is in use (Dagster UI); choose another with --port"
        )
    if opts.dashboard_port and not port_is_free(opts.host, opts.dashboard_port):
        raise StartupError(
            f"port {opts.dashboard_port} on {opts.host} is in use (dashboard); "
            "choose another with --dashboard-port"
        )
    if opts.simulate and opts.sim_port and not port_is_free("127.0.0.1", opts.sim_port):
        raise StartupError(
            f"port {opts.sim_port} is in use (simulator); choose another with --sim-port"
        )
    if not opts.no_dagster:
        for name in ("dagster", "dagster-webserver", "dagster-daemon"):
            _bin(name)
    # Everything PeeBot writes under the home (database, truth file, posts, Dagster's home)
    # needs it, also when the database is elsewhere.
    home.mkdir(parents=True, exist_ok=True)

    state["started_embedded"] = embedded and not was_running
    app_url = database.resolve_database_url()
    result = migrations.migrate(app_url)
    sup.say(
        "db",
        f"{database.describe_url(app_url)}: schema v{result.current_version}, {result.mode} mode",
    )
    for warning in result.warnings:
        sup.say("db", warning)

    env = dict(os.environ)
    env["PEEBOT_DATABASE_URL"] = app_url
    env["PEEBOT_HOME"] = str(home)
    env.update(stack_defaults(home, opts.simulate))
    env["PYTHONUNBUFFERED"] = "1"
    peebot = [sys.executable, "-m", "peebot.cli"]

    now = datetime.now(UTC).replace(microsecond=0)
    # Simulated time must never run ahead of the wall clock (Dagster's minute partitions end
    # at the current minute, and posts skip stale events): at --speed N start N x 3 minutes
    # back, so the simulator runs fast for about three minutes and then follows the clock (it
    # caps itself at "now").
    sim_start = now - timedelta(minutes=max(opts.speed, 1.0) * 3 - 3)
    configured_start = dagster_settings().partitions_start  # environment or .env
    if configured_start is None:
        partitions_from = stack_partitions_start(
            home, first_reading(app_url), sim_start if opts.simulate else now, now
        )
        env["PEEBOT_PARTITIONS_START"] = partitions_from
    else:
        partitions_from = configured_start.strftime(MINUTE_FMT)

    feed_url = ingest_settings().feed_url
    if opts.simulate:
        sim_port = opts.sim_port or free_port()
        argv = [
            *peebot,
            "simulate",
            "--port",
            str(sim_port),
            "--speed",
            str(opts.speed),
            "--truth",
            str(home / "truth.jsonl"),
            "--scenario",
            opts.scenario or DEMO_SCENARIO,
            "--start",
            sim_start.isoformat(),
            "--random-events" if opts.random_events else "--no-random-events",
        ]
        if opts.seed is not None:
            argv += ["--seed", str(opts.seed)]
        start_at = argv.index("--start") + 1
        sup.start(
            Child(
                "simulate",
                argv,
                env,
                ready=lambda: port_accepts("127.0.0.1", sim_port),
                ready_timeout=30,
                # a restarted simulator goes on from now, never back to simulated time
                # the database already has
                restart_argv=[*argv[:start_at], "now", *argv[start_at + 1 :]],
            )
        )
        feed_url = f"http://127.0.0.1:{sim_port}"
        # simulated TimeStamps do not follow the wall clock while the simulator catches up
        env["PEEBOT_CLOCK_CHECK"] = "off"

    ingest_argv = [*peebot, "ingest", "--feed-url", feed_url]
    sup.start(Child("ingest", ingest_argv, env, stop_timeout=30))

    if opts.dashboard_port:
        dashboard_argv = [
            *peebot,
            "dashboard",
            "--host",
            opts.host,
            "--port",
            str(opts.dashboard_port),
        ]
        sup.start(
            Child(
                "dashboard",
                dashboard_argv,
                env,
                ready=lambda: port_accepts(opts.host, opts.dashboard_port),
                ready_timeout=60,
            )
        )

    if not opts.no_dagster:
        code_port = free_port()
        dagster_home = prepare_dagster_home(home, code_port)
        env["DAGSTER_HOME"] = str(dagster_home)
        for name, value in DAGSTER_PROCESS_ENV.items():
            env.setdefault(name, value)
        env["PEEBOT_DAGSTER_STORAGE_URL"] = dagster_storage_url(app_url)
        workspace = str(dagster_home / "workspace.yaml")
        sup.start(
            Child(
                "code",
                [
                    _bin("dagster"),
                    "code-server",
                    "start",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(code_port),
                    "-m",
                    CODE_LOCATION_MODULE,
                    "--location-name",
                    CODE_LOCATION_NAME,
                ],
                env,
                cwd=str(dagster_home),
                ready=lambda: port_accepts("127.0.0.1", code_port),
                ready_timeout=120,
            )
        )
        sup.start(
            Child(
                "daemon",
                [_bin("dagster-daemon"), "run", "-w", workspace],
                env,
                cwd=str(dagster_home),
            )
        )
        sup.start(
            Child(
                "dagster",
                [_bin("dagster-webserver"), "-h", opts.host, "-p", str(opts.port), "-w", workspace],
                env,
                cwd=str(dagster_home),
                ready=lambda: port_accepts(opts.host, opts.port),
                ready_timeout=120,
            )
        )

    lines = []
    if not opts.no_dagster:
        lines.append(f"Dagster UI   http://{opts.host}:{opts.port}")
    if opts.dashboard_port:
        lines.append(f"dashboard    http://{opts.host}:{opts.dashboard_port}")
    lines += [
        f"feed         {feed_url}"
        + (f" (simulated, speed x{opts.speed:g})" if opts.simulate else ""),
        f"database     {database.describe_url(app_url)}",
        f"partitions   one a minute from {partitions_from} UTC",
        posts_line(env, home),
        "Ctrl-C stops everything.",
    ]
    for line in lines:
        sup.say("up", line)

    sup.watch(RESTART_POLICY)
