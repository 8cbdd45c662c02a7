"""`peebot dashboard`: the live web page, its WebSocket and JSON API."""

from __future__ import annotations

import asyncio
import logging

import click

from peebot.commands import one_line_errors


@click.command("dashboard")
@click.option("--host", default=None, help="Address to bind [PEEBOT_DASHBOARD_HOST, 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port [PEEBOT_DASHBOARD_PORT, 8000].")
@one_line_errors
def dashboard(host: str | None, port: int | None) -> None:
    """Serve the live dashboard: tank level, signal, events and posts, pushed over WebSocket.

    Read-only, except POST /api/inject when PEEBOT_DASHBOARD_TOKEN is set. Binds to
    127.0.0.1 by default: put a reverse proxy in front to publish it (see the README)."""
    from peebot.commands.ingest import prepare_database
    from peebot.dashboard.server import serve
    from peebot.settings import get_settings

    settings = get_settings()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    url = prepare_database()
    host = host or settings.dashboard_host
    port = settings.dashboard_port if port is None else port
    click.echo(f"dashboard on http://{host}:{port}", err=True)
    try:
        asyncio.run(serve(url, host, port, settings))
    except OSError as exc:
        raise click.ClickException(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from exc
