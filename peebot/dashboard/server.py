"""The dashboard's HTTP server (aiohttp): the page, its WebSocket and the JSON API.

Routes: `/` (the page), `/static/...` (its scripts, styles and the vendored uPlot),
`/ws` (WebSocket: a `state` message at once, then deltas), `GET /api/state`,
`GET /api/events?since=`, `GET /api/level?item=&from=&to=`, `GET /api/health`, and
`POST /api/inject` (off unless PEEBOT_DASHBOARD_TOKEN is set). Errors are JSON
`{"error": "<one line>"}` with 400 (bad parameter), 401/403 (inject), 404, 503 (database
unavailable) or 500 (a bug, logged); nothing a client sends can stop the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import signal
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from peebot.dashboard import params, queries
from peebot.dashboard.live import LiveDashboard, dumps
from peebot.settings import Settings, get_settings

log = logging.getLogger("peebot.dashboard")

STATIC = Path(str(resources.files("peebot.dashboard") / "static"))
LIVE: web.AppKey[LiveDashboard] = web.AppKey("live", LiveDashboard)
SETTINGS: web.AppKey[Settings] = web.AppKey("settings", Settings)
URL: web.AppKey[str] = web.AppKey("url", str)
MAX_BODY = 16 * 1024  # the largest request body (inject's JSON is ~100 bytes)
MAX_WS_MESSAGE = 4 * 1024  # the page sends nothing; anything bigger closes the socket
HEARTBEAT_S = 30.0
# The page loads only its own files and talks only to its own origin.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


def error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers or None)


def json_ok(data: Any) -> web.Response:
    return web.Response(text=dumps(data), content_type="application/json")


@web.middleware
async def one_line_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        response = await handler(request)
    except params.BadParameter as exc:
        return error(400, str(exc))
    except queries.DatabaseDown as exc:
        return error(503, f"database unavailable: {exc}")
    except web.HTTPException as exc:
        if exc.status >= 400 and exc.content_type != "application/json":
            return error(exc.status, exc.reason)
        raise
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path)
        return error(500, "internal error (logged by the server)")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if request.path == "/":
        response.headers["Content-Security-Policy"] = CSP
        response.headers["Cache-Control"] = "no-cache"
    return response


# --------------------------------------------------------------------------- handlers


async def page(request: web.Request) -> web.StreamResponse:
    return web.FileResponse(STATIC / "index.html")


async def websocket(request: web.Request) -> web.StreamResponse:
    live = request.app[LIVE]
    if len(live.fanout.clients) >= request.app[SETTINGS].dashboard_max_clients:
        return error(503, "too many clients; try again later")
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=MAX_WS_MESSAGE)
    await ws.prepare(request)
    client = live.fanout.join(
        ws, live.snapshot_text(), peer=str(request.remote), transport=request.transport
    )
    try:
        async for msg in ws:
            if msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                break
            # the page sends nothing we act on; reading keeps pings and closes flowing
    finally:
        live.fanout.leave(client)
    return ws


async def api_state(request: web.Request) -> web.Response:
    return web.Response(text=request.app[LIVE].snapshot_text(), content_type="application/json")


async def api_events(request: web.Request) -> web.Response:
    since = params.events_since(request.query, datetime.now(UTC))
    live = request.app[LIVE]
    events, truncated = await queries.events_since(live.db, since)
    return json_ok({"since": since.isoformat(), "events": events, "truncated": truncated})


async def api_level(request: web.Request) -> web.Response:
    query = params.level_query(request.query, datetime.now(UTC))
    found = await queries.level(request.app[LIVE].db, query.item, query.start, query.end)
    if found is None:
        raise params.BadParameter(f"item: {query.item} is not a known item")
    return json_ok(
        {
            "item": found.item,
            "from": query.start.isoformat(),
            "to": query.end.isoformat(),
            "resolution": found.resolution,
            "columns": ["t", "value"] if found.resolution == "raw" else ["t", "min", "max", "last"],
            "points": found.points,
            "truncated": found.truncated,
        }
    )


async def api_health(request: web.Request) -> web.Response:
    return json_ok(request.app[LIVE].health())


async def api_inject(request: web.Request) -> web.Response:
    from peebot.injection import InjectRejected, inject_reading
    from peebot_ingest.sink import DatabaseUnavailable

    token = request.app[SETTINGS].dashboard_token
    if not token:
        return error(403, "injection is off: set PEEBOT_DASHBOARD_TOKEN to turn it on")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        return error(401, "missing or wrong bearer token", **{"WWW-Authenticate": "Bearer"})
    try:
        raw = await request.json()
    except ValueError:
        raise params.BadParameter("the body is not JSON") from None
    body = params.inject_body(raw)
    when = body.at or datetime.now(UTC)
    try:
        done = await asyncio.to_thread(
            inject_reading,
            request.app[URL],
            body.item,
            body.value,
            when,
            body.status_class,
            {"via": "dashboard"},
        )
    except InjectRejected as exc:
        raise params.BadParameter(f"rejected (recorded in rejected_update): {exc}") from exc
    except DatabaseUnavailable as exc:
        raise queries.DatabaseDown(str(exc)) from exc
    return json_ok(
        {
            "written": done.written,
            "item": done.item,
            "value": done.value,
            "ts": done.ts.isoformat(),
            "event_id": done.event_id,
        }
    )


# --------------------------------------------------------------------------- the app


def create_app(url: str, settings: Settings | None = None) -> web.Application:
    settings = settings or get_settings()
    app = web.Application(middlewares=[one_line_errors], client_max_size=MAX_BODY)
    app[SETTINGS] = settings
    app[URL] = url

    async def start_live(app: web.Application) -> None:
        app[LIVE] = LiveDashboard(url, settings)
        await app[LIVE].start()

    async def stop_live(app: web.Application) -> None:
        await app[LIVE].stop()

    app.on_startup.append(start_live)
    app.on_shutdown.append(stop_live)
    app.router.add_get("/", page)
    app.router.add_get("/ws", websocket)
    app.router.add_get("/api/state", api_state)
    app.router.add_get("/api/events", api_events)
    app.router.add_get("/api/level", api_level)
    app.router.add_get("/api/health", api_health)
    app.router.add_post("/api/inject", api_inject)
    app.router.add_static("/static", STATIC, follow_symlinks=False)
    return app


async def serve(url: str, host: str, port: int, settings: Settings | None = None) -> None:
    """Serve until SIGINT or SIGTERM."""
    runner = web.AppRunner(create_app(url, settings), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    log.info("dashboard on http://%s:%d", host, port)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
