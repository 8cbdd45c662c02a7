"""A local Lightstreamer server speaking TLCP-2.5.0, enough for `lightstreamer-client-lib` 2.2.3.

Transports: WebSocket (`GET /lightstreamer`) and HTTP (`POST /lightstreamer/<request>.txt`):
create/bind/control, WSOK, CONOK, SUBOK, U (unchanged fields sent empty, values escaped),
PROBE keepalives, REQERR/CONERR, CONERR,4 for recovery requests, END,48 on a graceful stop,
LOOP,0 after an HTTP create. MERGE mode only, with snapshot. The wire sequences are those of
../shared/notes/lightstreamer.md (measured against the real client).

The server is generic over a *feed* (see `feeds.py`): the feed names the items it serves,
gives their current fields and pushes updates through `TelemetryHub.publish`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import parse_qs

from aiohttp import WSMsgType, web

from peebot_iss.catalog import FIELDS

log = logging.getLogger("peebot.simulator")

PROTOCOL = "TLCP-2.5.0"
WS_SUBPROTOCOL = "TLCP-2.5.0.lightstreamer.com"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_KEEPALIVE_MS = 2000  # PROBE period when the client asks for none
DEFAULT_ADAPTER_SET = "ISSLIVE"
REQUEST_LIMIT = 50_000
# Sessions created over HTTP wait this long for their bind before being dropped.
UNBOUND_SESSION_TTL_S = 30.0

FieldValue = str | None
Publish = Callable[[str, Mapping[str, FieldValue]], None]


class FeedStopped(RuntimeError):
    """The feed task ended (feeds run until cancelled): the server has nothing left to serve."""


class Feed(Protocol):
    """What the server needs from a source of telemetry."""

    def item_names(self) -> Collection[str]:
        """Items a client may subscribe to (others get REQERR)."""
        ...

    def initial_state(self) -> Mapping[str, Mapping[str, FieldValue]]:
        """Fields of each item at start, served as the snapshot until updates replace them."""
        ...

    async def run(self, publish: Publish) -> None:
        """Produce updates by calling `publish(item, fields)` on the server's event loop."""
        ...


# ---------------------------------------------------------------- encoding (pure functions)


def escape_value(value: FieldValue) -> str:
    """One field as TLCP sends it: `#` null, `$` empty, else percent-escaped."""
    if value is None:
        return "#"
    if value == "":
        return "$"
    out = value.replace("%", "%25").replace("|", "%7C").replace("\r", "%0D").replace("\n", "%0A")
    if out[0] in "#$^":
        out = f"%{ord(out[0]):02X}" + out[1:]
    return out


def encode_update(
    sub_id: int, pos: int, values: Sequence[FieldValue], previous: Sequence[FieldValue] | None
) -> str:
    """`U,<sub>,<pos>,<v1>|<v2>|...`; fields equal to `previous` are sent empty (unchanged)."""
    if previous is None:
        parts = [escape_value(v) for v in values]
    else:
        parts = ["" if v == p else escape_value(v) for v, p in zip(values, previous, strict=True)]
    return f"U,{sub_id},{pos},{'|'.join(parts)}"


def parse_request(line: str) -> dict[str, str]:
    """One URL-encoded TLCP request line as a dict (last value wins)."""
    return {k: v[-1] for k, v in parse_qs(line, keep_blank_values=True).items()}


# ---------------------------------------------------------------- sessions and subscriptions


@dataclass
class Subscription:
    sub_id: int
    items: list[str]
    fields: list[str]
    snapshot: bool
    # item name -> 1-based positions (an item may appear twice in a group)
    positions: dict[str, list[int]] = field(default_factory=dict)
    last_sent: dict[int, list[FieldValue]] = field(default_factory=dict)


class _Sink:
    async def send(self, data: str) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    async def close(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class _WsSink(_Sink):
    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws

    async def send(self, data: str) -> None:
        await self.ws.send_str(data)

    async def close(self) -> None:
        await self.ws.close()


class _HttpSink(_Sink):
    """An open HTTP streaming response (bind_session.txt)."""

    def __init__(self, resp: web.StreamResponse, content_length: int) -> None:
        self.resp = resp
        self.remaining = content_length
        self.done = asyncio.Event()

    async def send(self, data: str) -> None:
        raw = (data + "\r\n").encode("utf-8")
        await self.resp.write(raw)
        self.remaining -= len(raw)

    async def close(self) -> None:
        self.done.set()


class Session:
    def __init__(self, server: TlcpServer, sid: str, keepalive_ms: int) -> None:
        self.server = server
        self.sid = sid
        self.keepalive_ms = keepalive_ms
        self.subs: dict[int, Subscription] = {}
        self.sink: _Sink | None = None
        self.closed = False
        self.probes_sent = 0  # keepalives: what kept a quiet session up
        self._out: list[str] = []
        self._log: list[dict[str, Any]] = []
        self._wake = asyncio.Event()
        self._sink_ready = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._writer())
        self.unbound_since: float | None = time.monotonic()

    # -- output
    def send(self, line: str, record: dict[str, Any] | None = None) -> None:
        if self.closed:
            return
        self._out.append(line)
        if record is not None:
            self._log.append(record)
        self._wake.set()

    def send_first(self, *lines: str) -> None:
        """Queue lines ahead of anything already queued (CONOK must open a stream)."""
        self._out[:0] = lines
        self._wake.set()

    def attach(self, sink: _Sink) -> None:
        old, self.sink = self.sink, sink
        self.unbound_since = None
        if old is not None and old is not sink:
            asyncio.get_running_loop().create_task(old.close())
        self._sink_ready.set()
        self._wake.set()

    def detach(self, sink: _Sink) -> None:
        if self.sink is sink:
            self.sink = None
            self.unbound_since = time.monotonic()
            self._sink_ready.clear()

    async def take_queued(self, wait_s: float) -> tuple[list[str], list[dict[str, Any]]]:
        """What is queued, with its sent-log records, waiting up to `wait_s` for something
        when nothing is (an HTTP poll)."""
        if not self._out and wait_s > 0:
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait_s)
        lines, self._out = self._out, []
        records, self._log = self._log, []
        return lines, records

    async def _writer(self) -> None:
        try:
            while not self.closed:
                if self.sink is None:
                    await self._sink_ready.wait()
                    continue
                if not self._out:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.keepalive_ms / 1000.0)
                self._wake.clear()
                sink = self.sink
                if sink is None or self.closed:
                    continue
                probe = not self._out
                lines, self._out = (self._out or ["PROBE"]), []
                records, self._log = self._log, []
                # Logged before the send: the write can wait for the client (a full socket),
                # and a server killed meanwhile must not have sent what its log lacks (the
                # counter script resumes after the last logged number).
                if records:
                    self.server.log_sent(records)
                try:
                    await sink.send("\r\n".join(lines))
                    self.probes_sent += probe
                except (ConnectionError, RuntimeError) as exc:
                    log.debug("session %s: send failed (%s); closing", self.sid, exc)
                    self.server.close_session(self)
                    return
                if isinstance(sink, _HttpSink) and sink.remaining <= 0:
                    # Content length used up: tell the client to rebind (HTTP streaming).
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        await sink.send("LOOP,0")
                    self.detach(sink)
                    await sink.close()
        except asyncio.CancelledError:
            pass

    async def end(self, code: int, message: str) -> None:
        """Flush, send END and close the transport (graceful server stop)."""
        sink = self.sink
        self.closed = True
        self._task.cancel()
        if sink is None:
            return
        lines = [*self._out, f"END,{code},{message}"]
        self._out = []
        if self._log:
            self.server.log_sent(self._log)  # before the send, as in `_writer`
            self._log = []
        with contextlib.suppress(Exception):
            await sink.send("\r\n".join(lines))
            await sink.close()

    def shutdown(self) -> None:
        self.closed = True
        self._task.cancel()
        sink, self.sink = self.sink, None
        if sink is not None:
            asyncio.get_running_loop().create_task(sink.close())


# ---------------------------------------------------------------- the hub (feed -> sessions)


class TelemetryHub:
    """Current fields of every item, and the fan-out of updates to subscriptions."""

    def __init__(self, feed: Feed, fields: Sequence[str] = FIELDS) -> None:
        self.feed = feed
        self.fields = tuple(fields)
        self.items = set(feed.item_names())
        self.state: dict[str, dict[str, FieldValue]] = {
            item: dict(values) for item, values in feed.initial_state().items()
        }
        self.sessions: dict[str, Session] = {}
        self.updates_published = 0

    def publish(self, item: str, fields: Mapping[str, FieldValue]) -> None:
        current = self.state.setdefault(item, {})
        current.update(fields)
        self.items.add(item)
        self.updates_published += 1
        for session in self.sessions.values():
            for sub in session.subs.values():
                positions = sub.positions.get(item)
                if positions:
                    for pos in positions:
                        _send_item(session, sub, pos, item, current, snapshot=False)


def _send_item(
    session: Session,
    sub: Subscription,
    pos: int,
    item: str,
    current: Mapping[str, FieldValue],
    snapshot: bool,
) -> None:
    values = [current.get(f) for f in sub.fields]
    previous = sub.last_sent.get(pos)
    if previous == values and not snapshot:
        return
    sub.last_sent[pos] = values
    record = None
    if session.server.sent_log is not None:
        record = {
            "t": time.time(),
            "session": session.sid,
            "sub": sub.sub_id,
            "item": item,
            "snapshot": snapshot,
            "fields": dict(zip(sub.fields, values, strict=True)),
        }
    session.send(encode_update(sub.sub_id, pos, values, previous), record)


# ---------------------------------------------------------------- the server


class TlcpServer:
    """The aiohttp application; `start()`/`stop()` on a running event loop."""

    def __init__(
        self,
        feed: Feed,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        keepalive_ms: int = DEFAULT_KEEPALIVE_MS,
        adapter_set: str = DEFAULT_ADAPTER_SET,
        sent_log: str | Path | None = None,
        fields: Sequence[str] = FIELDS,
    ) -> None:
        self.host = host
        self.port = port
        self.keepalive_ms = keepalive_ms
        self.adapter_set = adapter_set
        self.hub = TelemetryHub(feed, fields)
        self.sent_log_path = Path(sent_log) if sent_log else None
        self.sent_log: IO[str] | None = None
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._feed_task: asyncio.Task[None] | None = None
        self._reaper: asyncio.Task[None] | None = None
        # A feed with `wait_for_subscriber = True` (a recording) starts at the first
        # subscription: played to nobody, its beginning would be lost to the client.
        self.first_subscription = asyncio.Event()
        self._prefix = f"S{int(time.time() * 1000) % 10**9:x}"
        self.stopping = False
        self.app = web.Application()
        self.app.router.add_get("/lightstreamer", self._ws_handler)
        self.app.router.add_post(
            "/lightstreamer/{kind:create_session|bind_session|control|heartbeat}.txt",
            self._http_handler,
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- lifecycle
    async def start(self) -> None:
        if self.sent_log_path is not None:
            self.sent_log = self.sent_log_path.open("a", encoding="utf-8")
        self._runner = web.AppRunner(self.app, handle_signals=False, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        if self.port == 0:
            self.port = self._runner.addresses[0][1]  # the port the system chose
        loop = asyncio.get_running_loop()
        self._feed_task = loop.create_task(self._run_feed())
        self._reaper = loop.create_task(self._reap_unbound())

    @property
    def feed_task(self) -> asyncio.Task[None] | None:
        return self._feed_task

    async def _run_feed(self) -> None:
        """Feeds run until cancelled: ending any other way raises FeedStopped, so whoever runs
        the server (`serve_until_signal`) can stop it instead of serving silence."""
        try:
            if getattr(self.hub.feed, "wait_for_subscriber", False):
                log.info("feed starts when the first client subscribes")
                await self.first_subscription.wait()
            await self.hub.feed.run(self.hub.publish)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.debug("feed stopped", exc_info=True)
            reason = f"{type(exc).__name__}: {exc}"
            log.error("feed stopped: %s", reason)
            raise FeedStopped(reason) from exc
        log.error("feed stopped: it ended without an error")
        raise FeedStopped("the feed ended")

    async def _reap_unbound(self) -> None:
        while True:
            await asyncio.sleep(5)
            now = time.monotonic()
            for session in list(self.hub.sessions.values()):
                since = session.unbound_since
                if (
                    session.sink is None
                    and since is not None
                    and now - since > UNBOUND_SESSION_TTL_S
                ):
                    self.close_session(session)

    async def stop(self, end_code: int = 48, message: str = "Server shutting down") -> None:
        """Graceful stop: END,<code> to every session (48 makes the client reconnect)."""
        self.stopping = True
        for task in (self._feed_task, self._reaper):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        sessions = list(self.hub.sessions.values())
        self.hub.sessions.clear()
        await asyncio.gather(*(s.end(end_code, message) for s in sessions), return_exceptions=True)
        log.info("stopped: END,%d sent to %d session(s)", end_code, len(sessions))
        if self._runner is not None:
            await self._runner.cleanup()
        if self.sent_log is not None:
            self.sent_log.close()
            self.sent_log = None

    # -- sent log
    def log_sent(self, records: list[dict[str, Any]]) -> None:
        if self.sent_log is None:
            return
        self.sent_log.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        self.sent_log.flush()

    # -- sessions
    def new_session(self, params: Mapping[str, str]) -> Session | str:
        """A session, or the CONERR line that refuses it."""
        if self.stopping:
            return "CONERR,7,Server is shutting down"
        adapter = params.get("LS_adapter_set", "DEFAULT")
        if adapter != self.adapter_set:
            return "CONERR,2,Requested Adapter Set not available"
        sid = f"{self._prefix}-{next(self._ids)}"
        session = Session(self, sid, self._keepalive(params))
        self.hub.sessions[sid] = session
        log.info("session %s created (keepalive %d ms)", sid, session.keepalive_ms)
        return session

    def find_session(self, params: Mapping[str, str]) -> Session | str:
        if "LS_recovery_from" in params:
            return "CONERR,4,Recovery not supported"
        session = self.hub.sessions.get(params.get("LS_session", ""))
        if session is None or session.closed:
            return "CONERR,20,Session not found"
        if "LS_keepalive_millis" in params:
            session.keepalive_ms = self._keepalive(params)
        return session

    def close_session(self, session: Session) -> None:
        if self.hub.sessions.get(session.sid) is session:
            del self.hub.sessions[session.sid]
            log.info("session %s closed", session.sid)
        session.shutdown()

    def _keepalive(self, params: Mapping[str, str]) -> int:
        try:
            return max(100, int(params["LS_keepalive_millis"]))
        except (KeyError, ValueError):
            return self.keepalive_ms

    def conok(self, session: Session) -> str:
        return f"CONOK,{session.sid},{REQUEST_LIMIT},{session.keepalive_ms},*"

    # -- control requests
    def control(self, session: Session, req: Mapping[str, str], http: bool) -> str | None:
        """Apply one control request. Returns the line answering it (REQOK/REQERR) or None.

        Over WebSocket the answer goes on the socket; over HTTP in the control response.
        Data (SUBOK, U, UNSUB) always goes on the session's stream."""
        req_id = req.get("LS_reqId", "0")
        op = req.get("LS_op", "")
        ack = http or req.get("LS_ack", "true") != "false"
        if op == "add":
            return self._add(session, req, req_id, ack, http)
        if op == "delete":
            try:
                sub = session.subs.pop(int(req.get("LS_subId", "")))
            except (KeyError, ValueError):
                return f"REQERR,{req_id},19,Unknown subscription"
            session.send(f"UNSUB,{sub.sub_id}")
            return f"REQOK,{req_id}" if ack else None
        if op == "destroy":
            self.close_session(session)
            return f"REQOK,{req_id}" if http else None
        if op in ("reconf", "constrain", "force_rebind"):
            return f"REQOK,{req_id}"
        return f"REQERR,{req_id},15,Unsupported operation {op!r}"

    def _add(
        self, session: Session, req: Mapping[str, str], req_id: str, ack: bool, http: bool
    ) -> str | None:
        try:
            sub_id = int(req["LS_subId"])
        except (KeyError, ValueError):
            return f"REQERR,{req_id},15,Missing or bad LS_subId"
        mode = req.get("LS_mode", "MERGE")
        if mode != "MERGE":
            return f"REQERR,{req_id},24,Only MERGE mode is supported"
        items = req.get("LS_group", "").split()
        fields = req.get("LS_schema", "").split()
        if not items:
            return f"REQERR,{req_id},21,Bad Item name"
        unknown = [i for i in items if i not in self.hub.items]
        if unknown:
            return f"REQERR,{req_id},21,Bad Item name: {' '.join(unknown[:5])}"
        bad = [f for f in fields if f not in self.hub.fields]
        if not fields or bad:
            return f"REQERR,{req_id},23,Bad Field name: {' '.join(bad[:5])}"
        snapshot = req.get("LS_snapshot", "false") == "true"
        sub = Subscription(sub_id, items, fields, snapshot)
        for pos, item in enumerate(items, start=1):
            sub.positions.setdefault(item, []).append(pos)
        session.subs[sub_id] = sub
        answer = None
        if ack:
            if http:
                answer = f"REQOK,{req_id}"
            else:
                session.send(f"REQOK,{req_id}")  # on the socket, before the data
        session.send(f"SUBOK,{sub_id},{len(items)},{len(fields)}")
        if snapshot:
            for pos, item in enumerate(items, start=1):
                current = self.hub.state.get(item)
                if current:
                    _send_item(session, sub, pos, item, current, snapshot=True)
        self.first_subscription.set()
        return answer

    # -- WebSocket transport
    async def _ws_handler(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(protocols=(WS_SUBPROTOCOL,), autoping=True)
        await ws.prepare(request)
        sink = _WsSink(ws)
        session: Session | None = None
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    if msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                        break
                    continue
                lines = [ln for ln in msg.data.split("\r\n") if ln != ""]
                if not lines:
                    continue
                command, requests = lines[0], lines[1:]
                if command == "wsok":
                    await ws.send_str("WSOK")
                elif command in ("create_session", "bind_session"):
                    params = parse_request(requests[0] if requests else "")
                    if command == "create_session":
                        found = self.new_session(params)
                    else:
                        found = self.find_session(params)
                    if isinstance(found, str):
                        await ws.send_str(found)
                        continue
                    session = found
                    if command == "create_session":
                        session.send_first(self.conok(session), "SERVNAME,PeeBot local ISS Live")
                    else:
                        session.send_first(self.conok(session))
                    session.attach(sink)
                elif command == "control":
                    if session is None:
                        found = self.find_session(parse_request(requests[0]) if requests else {})
                        if isinstance(found, str):
                            await ws.send_str(found)
                            continue
                        session = found
                    for line in requests:
                        answer = self.control(session, parse_request(line), http=False)
                        if answer:
                            session.send(answer)
                # heartbeat and anything else: ignored
        finally:
            if session is not None and session.sink is sink:
                self.close_session(session)
        return ws

    # -- HTTP transport
    async def _http_handler(self, request: web.Request) -> web.StreamResponse:
        kind = request.match_info["kind"]
        body = await request.text()
        lines = [ln for ln in body.split("\r\n") if ln != ""]
        if kind == "control":
            return await self._http_control(request, lines)
        if kind == "heartbeat":
            return web.Response(text="", content_type="text/plain")
        params = parse_request(lines[0] if lines else "")
        for key in ("LS_session",):
            if key in request.query and key not in params:
                params[key] = request.query[key]
        found = self.new_session(params) if kind == "create_session" else self.find_session(params)
        if isinstance(found, str):
            return web.Response(text=found + "\r\n", content_type="text/plain")
        session = found
        if params.get("LS_polling") == "true":
            if kind == "create_session":
                # Create over HTTP: CONOK, then LOOP so the client binds a stream (or polls).
                text = "\r\n".join([self.conok(session), "LOOP,0"]) + "\r\n"
                return web.Response(text=text, content_type="text/plain")
            return web.Response(text=await self._poll(session, params), content_type="text/plain")
        resp = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        await resp.prepare(request)
        try:
            length = int(params.get("LS_content_length", "50000000"))
        except ValueError:
            length = 50_000_000
        sink = _HttpSink(resp, length)
        session.send_first(self.conok(session))
        session.attach(sink)
        await sink.done.wait()
        session.detach(sink)
        with contextlib.suppress(ConnectionError, RuntimeError):
            await resp.write_eof()
        return resp

    async def _poll(self, session: Session, params: Mapping[str, str]) -> str:
        """One HTTP poll: CONOK, what is queued (waiting up to LS_idle_millis for something),
        then LOOP. Answering at once with nothing would make the client busy-poll."""
        try:
            idle_s = min(int(params.get("LS_idle_millis", "0")), 30_000) / 1000.0
        except ValueError:
            idle_s = 0.0
        lines, records = await session.take_queued(idle_s)
        if records:
            self.log_sent(records)
        session.unbound_since = time.monotonic()
        polling_ms = params.get("LS_polling_millis", "0")
        return "".join(f"{ln}\r\n" for ln in [self.conok(session), *lines, f"LOOP,{polling_ms}"])

    async def _http_control(self, request: web.Request, lines: list[str]) -> web.StreamResponse:
        answers = []
        for line in lines:
            req = parse_request(line)
            if "LS_session" not in req and "LS_session" in request.query:
                req["LS_session"] = request.query["LS_session"]
            found = self.find_session(req)
            if isinstance(found, str):
                answers.append(f"REQERR,{req.get('LS_reqId', '0')},20,Session not found")
                continue
            answer = self.control(found, req, http=True)
            if answer:
                answers.append(answer)
        return web.Response(text="".join(a + "\r\n" for a in answers), content_type="text/plain")


# ---------------------------------------------------------------- running until a signal


async def serve_until_signal(
    server: TlcpServer, on_ready: Callable[[TlcpServer], None] | None = None
) -> None:
    """Start `server`, call `on_ready`, run until SIGTERM/SIGINT, then stop with END,48.
    If the feed stops first, stop the server too and raise FeedStopped: a server that
    stays up sending nothing looks to a client like a quiet station."""
    import signal

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    if on_ready is not None:
        on_ready(server)
    stopped = loop.create_task(stop.wait())
    feed = server.feed_task
    assert feed is not None
    try:
        await asyncio.wait({stopped, feed}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        stopped.cancel()
        await server.stop()
    if feed.done() and not feed.cancelled() and not stop.is_set():
        error = feed.exception()
        raise error if isinstance(error, FeedStopped) else FeedStopped(str(error))


def run_server(
    feed: Feed,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    keepalive_ms: int = DEFAULT_KEEPALIVE_MS,
    adapter_set: str = DEFAULT_ADAPTER_SET,
    sent_log: str | Path | None = None,
    on_ready: Callable[[TlcpServer], None] | None = None,
) -> None:
    """Blocking: serve `feed` until SIGTERM/Ctrl-C (used by `peebot simulate` and
    `peebot replay --serve`). Raises FeedStopped if the feed stops first."""
    server = TlcpServer(
        feed,
        host=host,
        port=port,
        keepalive_ms=keepalive_ms,
        adapter_set=adapter_set,
        sent_log=sent_log,
    )
    asyncio.run(serve_until_signal(server, on_ready))
