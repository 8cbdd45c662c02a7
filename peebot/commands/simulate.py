"""`peebot simulate`: a local ISS Live (Lightstreamer TLCP) server fed by the physical model,
or by a deterministic counter script for loss-counting tests."""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from peebot_iss.utc import as_utc

_RELATIVE = re.compile(r"^-(\d+(?:\.\d+)?)\s*([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
DEFAULT_PAST_WHEN_FAST = timedelta(days=1)


def parse_start(text: str | None, speed: float, now: datetime | None = None) -> datetime:
    """`now`, `-90m`/`-2h`/`-1d` (relative to now) or an ISO time (UTC if no zone). Default:
    now at speed <= 1; at higher speeds one day ago, so simulated time (which never runs ahead of
    the wall clock unless --allow-future) has a day to catch up through."""
    now = now or datetime.now(UTC).replace(microsecond=0)
    if text is None or text.strip() == "":
        return now - DEFAULT_PAST_WHEN_FAST if speed > 1 else now
    text = text.strip()
    if text == "now":
        return now
    m = _RELATIVE.match(text)
    if m:
        return now - timedelta(seconds=float(m.group(1)) * _UNITS[m.group(2)])
    return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))


@click.command(
    "simulate",
    epilog=(
        "Simulated time runs SPEED times faster than the wall clock and the TimeStamps follow "
        "it. By default it never runs ahead of the wall clock: at SPEED > 1 the default start "
        "is one day ago, the feed runs fast until it reaches now, then continues at speed 1 "
        "(--allow-future lifts the cap). At high speed the non-essential analog channels are "
        "thinned to stay under --max-rate updates/s; the urine/water items and TIME_000001 "
        "never are (TIME_000001 alone is SPEED updates/s)."
    ),
)
@click.option("--host", default=None, help="Address [PEEBOT_SIM_HOST, default 127.0.0.1].")
@click.option("--port", default=None, type=int, help="Port [PEEBOT_SIM_PORT, default 8080].")
@click.option(
    "--speed",
    default=None,
    type=float,
    help="Simulated seconds per wall-clock second [PEEBOT_SIM_SPEED, default 1].",
)
@click.option("--seed", default=None, type=int, help="Model seed [PEEBOT_SIM_SEED, default 0].")
@click.option(
    "--start",
    "start_text",
    default=None,
    help="Simulated start: ISO UTC time, 'now', or '-2h'/'-1d' (default: see below) "
    "[PEEBOT_SIM_START].",
)
@click.option(
    "--crew", default=6, show_default=True, type=int, help="Crew size (uses scale with it)."
)
@click.option(
    "--noise",
    default=1.0,
    show_default=True,
    type=float,
    help="Noise scale (0: no tank flips, no analog jitter).",
)
@click.option(
    "--scenario",
    default=None,
    help="Scheduled events, e.g. 'use@+60s,use@+180s:3.5,transfer@+600s,los@+1h/10m', "
    "or a JSON file of {kind, at, amount, duration} objects.",
)
@click.option(
    "--random-events/--no-random-events",
    default=True,
    show_default=True,
    help="Random uses, transfers and LOS periods (scenario events always happen).",
)
@click.option(
    "--truth",
    "truth_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Append ground-truth events (JSON lines) as they complete.",
)
@click.option(
    "--sent-log",
    type=click.Path(dir_okay=False),
    default=None,
    help="Append every U sent (session, item, decoded fields, wall time) as JSON lines "
    "[PEEBOT_SIM_SENT_LOG].",
)
@click.option(
    "--keepalive-ms",
    default=None,
    type=int,
    help="PROBE period when the client does not ask for one "
    "[PEEBOT_SIM_KEEPALIVE_MS, default 2000].",
)
@click.option("--adapter-set", default="ISSLIVE", show_default=True)
@click.option(
    "--max-rate",
    default=None,
    type=float,
    help="Updates/s budget at high speed [PEEBOT_SIM_MAX_RATE, default 2500].",
)
@click.option(
    "--analog-interval-scale",
    default=1.0,
    show_default=True,
    type=float,
    help="Sample-interval multiplier of the non-essential analog channels: 1 gives about "
    "5 updates/s at speed 1, 0.05 about 80/s (raised automatically at high speed to respect "
    "--max-rate).",
)
@click.option(
    "--allow-future", is_flag=True, help="Let simulated time run ahead of the wall clock."
)
@click.option(
    "--script",
    type=click.Choice(["model", "counter"]),
    default="model",
    show_default=True,
    help="'counter': update k has Value k, goes to item k mod N, wall-clock TimeStamp.",
)
@click.option(
    "--items",
    "n_items",
    default=10,
    show_default=True,
    type=int,
    help="counter: number of items (the first N catalogue items).",
)
@click.option(
    "--rate", default=100.0, show_default=True, type=float, help="counter: updates per second."
)
@click.option(
    "--count",
    default=1000,
    show_default=True,
    type=int,
    help="counter: stop after sequence number COUNT-1 (total over restarts).",
)
@click.option(
    "--resume/--no-resume",
    default=True,
    show_default=True,
    help="counter: continue after the highest sequence number in --sent-log.",
)
@click.option("--log-level", default=None, help="Log level [PEEBOT_LOG_LEVEL, default INFO].")
def simulate(
    host: str | None,
    port: int | None,
    speed: float | None,
    seed: int | None,
    start_text: str | None,
    crew: int,
    noise: float,
    scenario: str | None,
    random_events: bool,
    truth_path: str | None,
    sent_log: str | None,
    keepalive_ms: int | None,
    adapter_set: str,
    max_rate: float | None,
    analog_interval_scale: float,
    allow_future: bool,
    script: str,
    n_items: int,
    rate: float,
    count: int,
    resume: bool,
    log_level: str | None,
) -> None:
    """Serve a simulated ISS Live feed (Lightstreamer TLCP) until SIGTERM or Ctrl-C.

    Clients connect with LightstreamerClient("http://HOST:PORT", "ISSLIVE"). On SIGTERM or
    Ctrl-C every client gets END,48 (it reconnects on its own) and the command exits 0. If the
    feed stops (an error in the model, an unwritable --truth file), the server stops too and
    the command exits 1 with the reason."""
    from peebot_sim.feeds import CounterFeed, ModelFeed
    from peebot_sim.model import SimConfig, parse_scenario
    from peebot_sim.settings import SettingsError, get_settings
    from peebot_sim.tlcp import FeedStopped, TlcpServer, run_server

    try:
        settings = get_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc
    # an option given on the command line wins over the settings
    host = settings.sim_host if host is None else host
    port = settings.sim_port if port is None else port
    speed = settings.sim_speed if speed is None else speed
    seed = settings.sim_seed if seed is None else seed
    start_text = settings.sim_start if start_text is None else start_text
    if sent_log is None and settings.sim_sent_log is not None:
        sent_log = str(settings.sim_sent_log)
    keepalive_ms = settings.sim_keepalive_ms if keepalive_ms is None else keepalive_ms
    max_rate = settings.sim_max_rate if max_rate is None else max_rate
    log_level = settings.log_level if log_level is None else log_level

    logging.basicConfig(
        level=getattr(logging, log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    feed: CounterFeed | ModelFeed
    if script == "counter":
        start_seq = 0
        if resume and sent_log:
            last = CounterFeed.last_sequence(sent_log)
            start_seq = 0 if last is None else last + 1
        feed = CounterFeed(n_items, rate, count, start_seq=start_seq)
        what = f"counter: {n_items} items, {rate:g}/s, sequence {start_seq}..{count - 1}"
    else:
        try:
            start = parse_start(start_text, speed)
            events = parse_scenario(scenario) if scenario else []
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from exc
        config = SimConfig(
            seed=seed,
            start=start,
            crew=crew,
            noise=noise,
            random_events=random_events,
            scenario=events,
            analog_interval_scale=analog_interval_scale,
        )
        feed = ModelFeed(
            config, speed, max_rate=max_rate, catch_up=not allow_future, truth_path=truth_path
        )
        what = (
            f"model: seed {seed}, start {start.isoformat()}, speed {speed:g}, "
            f"{len(events)} scenario events, analog thinning x{config.analog_interval_scale:.3g}"
        )

    def ready(server: TlcpServer) -> None:
        click.echo(f"peebot simulate: ISS Live ({adapter_set}) at {server.url} [{what}]", err=True)
        sys.stderr.flush()

    if sent_log:
        Path(sent_log).parent.mkdir(parents=True, exist_ok=True)
    try:
        run_server(
            feed,
            host=host,
            port=port,
            keepalive_ms=keepalive_ms,
            adapter_set=adapter_set,
            sent_log=sent_log,
            on_ready=ready,
        )
    except FeedStopped as exc:
        # never a server that stays up sending nothing: the client (and `peebot up`) must see it
        raise click.ClickException(f"the feed stopped ({exc}); server stopped") from exc


if __name__ == "__main__":
    simulate()
