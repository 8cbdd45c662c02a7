"""Helpers for tests (here and in other areas): run the local ISS Live server in a thread or a
subprocess, and a real `LightstreamerClient` tuned for fast tests.

    feed = ScriptedFeed()
    with run_server_in_thread(feed) as srv:
        client = make_test_client(srv.url)
        ...

    with run_server_subprocess(["--script", "counter", "--items", "5", "--rate", "50",
                                "--count", "500", "--sent-log", str(log)]) as srv:
        srv.kill(); srv.restart()            # SIGKILL, then start again on the same port
        srv.terminate()                      # SIGTERM: END,48 to clients, exit 0
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from lightstreamer.client import (
    ClientListener,
    ItemUpdate,
    LightstreamerClient,
    Subscription,
    SubscriptionListener,
)

from peebot_iss.catalog import FIELDS
from peebot_sim.tlcp import DEFAULT_ADAPTER_SET, Feed, TlcpServer

__all__ = [
    "CollectingListener",
    "StatusRecorder",
    "SubprocessServer",
    "ThreadServer",
    "free_port",
    "make_test_client",
    "read_sent_log",
    "run_server_in_thread",
    "run_server_subprocess",
    "subscribe",
]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        try:
            s.connect((host, port))
        except OSError:
            return False
        return True


# ---------------------------------------------------------------- in-process server


class ThreadServer:
    """A `TlcpServer` on its own event loop in a daemon thread."""

    def __init__(
        self,
        feed: Feed,
        host: str = "127.0.0.1",
        port: int = 0,
        keepalive_ms: int = 1000,
        sent_log: str | Path | None = None,
        adapter_set: str = DEFAULT_ADAPTER_SET,
    ) -> None:
        self.feed = feed
        self.host = host
        self.port = port
        self.keepalive_ms = keepalive_ms
        self.sent_log = sent_log
        self.adapter_set = adapter_set
        self.server: TlcpServer | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ThreadServer:
        ready = threading.Event()
        errors: list[BaseException] = []
        previous_state = self.server.hub.state if self.server is not None else None

        def main() -> None:
            loop = asyncio.new_event_loop()
            self.loop = loop
            asyncio.set_event_loop(loop)
            server = TlcpServer(
                self.feed,
                host=self.host,
                port=self.port,
                keepalive_ms=self.keepalive_ms,
                adapter_set=self.adapter_set,
                sent_log=self.sent_log,
            )
            if previous_state:
                server.hub.state.update(previous_state)
            self.server = server
            try:
                loop.run_until_complete(server.start())
            except BaseException as exc:
                errors.append(exc)
                ready.set()
                return
            self.port = server.port
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=main, name="tlcp-server", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            raise errors[0]
        return self

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run `fn` on the server's loop and return its result (e.g. to inspect sessions)."""
        assert self.loop is not None

        async def _call() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(_call(), self.loop).result(10)

    def has_subscription(self) -> bool:
        """Some client has subscribed. Being connected is not enough before publishing: an
        update published before the subscription is not served to that client (its snapshot
        carries only each item's latest value)."""
        server = self.server
        if server is None or self.loop is None:
            return False
        return bool(self.call(lambda: any(s.subs for s in server.hub.sessions.values())))

    def stop(self) -> None:
        """Graceful stop: END,48 to every client (they reconnect), then close the port."""
        if self.loop is None or self.server is None or self._thread is None:
            return
        if self.loop.is_running():
            asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(15)
            self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop = None

    def restart(self) -> ThreadServer:
        """Stop, then serve the same feed on the same port (snapshot state carried over)."""
        self.stop()
        return self.start()


@contextlib.contextmanager
def run_server_in_thread(
    feed: Feed,
    host: str = "127.0.0.1",
    port: int = 0,
    keepalive_ms: int = 1000,
    sent_log: str | Path | None = None,
    adapter_set: str = DEFAULT_ADAPTER_SET,
) -> Iterator[ThreadServer]:
    srv = ThreadServer(feed, host, port, keepalive_ms, sent_log, adapter_set).start()
    try:
        yield srv
    finally:
        srv.stop()


# ---------------------------------------------------------------- subprocess server


class SubprocessServer:
    """`python -m peebot.commands.simulate ARGS --host H --port P` (or `uv run peebot
    simulate ...` with `use_uv`), restartable on the same port."""

    def __init__(
        self,
        args: Sequence[str] = (),
        port: int | None = None,
        host: str = "127.0.0.1",
        *,
        env: dict[str, str] | None = None,
        cwd: str | Path | None = None,
        ready_timeout: float = 30.0,
        use_uv: bool = False,
        log_path: str | Path | None = None,
    ) -> None:
        self.args = list(args)
        self.host = host
        self.port = port or free_port(host)
        self.env = {**os.environ, **(env or {})}
        self.cwd = str(cwd) if cwd else None
        self.ready_timeout = ready_timeout
        self.use_uv = use_uv
        if log_path is None:
            fd, name = tempfile.mkstemp(prefix="peebot-simulate-", suffix=".log")
            os.close(fd)
            log_path = name
        self.log_path = Path(log_path)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def command(self) -> list[str]:
        tail = [*self.args, "--host", self.host, "--port", str(self.port)]
        if self.use_uv:
            return ["uv", "run", "peebot", "simulate", *tail]
        return [sys.executable, "-m", "peebot.commands.simulate", *tail]

    def start(self) -> SubprocessServer:
        if self.is_running():
            raise RuntimeError("server already running")
        out = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(
                self.command(), stdout=out, stderr=subprocess.STDOUT, env=self.env, cwd=self.cwd
            )
        finally:
            out.close()
        deadline = time.monotonic() + self.ready_timeout
        while not port_open(self.host, self.port):
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"simulator exited with {self.proc.returncode}:\n{self.output()[-3000:]}"
                )
            if time.monotonic() > deadline:
                self.kill()
                raise TimeoutError(f"simulator not listening after {self.ready_timeout} s")
            time.sleep(0.05)
        return self

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def kill(self) -> int | None:
        """SIGKILL: no END, the client notices only through its keepalive timers."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        return self.proc.wait(10)

    def terminate(self, timeout: float = 15.0) -> int | None:
        """SIGTERM: the server sends END,48 to its clients and exits 0."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait(10)

    def restart(self) -> SubprocessServer:
        if self.is_running():
            self.terminate()
        return self.start()


@contextlib.contextmanager
def run_server_subprocess(
    args: Sequence[str] = (),
    port: int | None = None,
    host: str = "127.0.0.1",
    **kwargs: Any,
) -> Iterator[SubprocessServer]:
    srv = SubprocessServer(args, port, host, **kwargs).start()
    try:
        yield srv
    finally:
        srv.terminate()


# ---------------------------------------------------------------- the real client, tuned


def make_test_client(
    url: str,
    adapter_set: str = DEFAULT_ADAPTER_SET,
    transport: str | None = None,
    keepalive_ms: int = 1000,
) -> LightstreamerClient:
    """A `LightstreamerClient` that notices a dead server in ~2.5 s and reconnects within ~1 s
    (notes section 5). `transport`: e.g. "WS-STREAMING" or "HTTP-STREAMING"."""
    client = LightstreamerClient(url, adapter_set)
    opts = client.connectionOptions
    opts.setKeepaliveInterval(keepalive_ms)
    opts.setStalledTimeout(500)
    opts.setReconnectTimeout(1000)
    opts.setRetryDelay(1000)
    opts.setFirstRetryMaxDelay(100)
    opts.setSessionRecoveryTimeout(0)
    if transport:
        opts.setForcedTransport(transport)
    return client


class CollectingListener(SubscriptionListener):
    """Records everything a subscription receives; safe to wait on from the test thread."""

    def __init__(self) -> None:
        self.updates: list[dict[str, Any]] = []
        self.errors: list[tuple[int, str]] = []
        self.subscribed = 0
        self.unsubscribed = 0
        self._cond = threading.Condition()

    def onItemUpdate(self, update: ItemUpdate) -> None:
        row = {
            "item": update.getItemName(),
            "pos": update.getItemPos(),
            "snapshot": update.isSnapshot(),
            "fields": dict(update.getFields()),
            "changed": dict(update.getChangedFields()),
            "t": time.time(),
        }
        with self._cond:
            self.updates.append(row)
            self._cond.notify_all()

    def onSubscription(self) -> None:
        with self._cond:
            self.subscribed += 1
            self._cond.notify_all()

    def onUnsubscription(self) -> None:
        with self._cond:
            self.unsubscribed += 1
            self._cond.notify_all()

    def onSubscriptionError(self, code: int, message: str) -> None:
        with self._cond:
            self.errors.append((code, message))
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[CollectingListener], Any], timeout: float = 10) -> Any:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                result = predicate(self)
                if result:
                    return result
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"not met within {timeout} s ({len(self.updates)} updates, "
                        f"{self.subscribed} subscriptions, errors {self.errors})"
                    )
                self._cond.wait(min(left, 0.2))

    def values(self, item: str) -> list[str | None]:
        with self._cond:
            return [u["fields"].get("Value") for u in self.updates if u["item"] == item]


class StatusRecorder(ClientListener):
    def __init__(self) -> None:
        self.statuses: list[tuple[float, str]] = []
        self.server_errors: list[tuple[int, str]] = []
        self._cond = threading.Condition()

    def onStatusChange(self, status: str) -> None:
        with self._cond:
            self.statuses.append((time.time(), status))
            self._cond.notify_all()

    def onServerError(self, code: int, message: str) -> None:
        with self._cond:
            self.server_errors.append((code, message))
            self._cond.notify_all()

    def wait_for_status(self, prefix: str, timeout: float = 10, after: int = 0) -> str:
        """Wait for a status starting with `prefix` among those recorded from index `after`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for _, status in self.statuses[after:]:
                    if status.startswith(prefix):
                        return status
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no status {prefix!r} in {self.statuses[after:]}")
                self._cond.wait(min(left, 0.2))


def subscribe(
    client: LightstreamerClient,
    items: Sequence[str],
    fields: Sequence[str] = FIELDS,
    snapshot: bool = True,
) -> tuple[Subscription, CollectingListener]:
    """A MERGE subscription with a `CollectingListener` attached (call before or after connect)."""
    sub = Subscription("MERGE", list(items), list(fields))
    sub.setRequestedSnapshot("yes" if snapshot else "no")
    listener = CollectingListener()
    sub.addListener(listener)
    client.subscribe(sub)
    return sub, listener


def read_sent_log(path: str | Path) -> list[dict[str, Any]]:
    """The records of a `--sent-log` file (one JSON object per U the server sent)."""
    import json

    p = Path(path)
    if not p.exists():
        return []
    rows = []
    for line in p.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(ValueError):
            rows.append(json.loads(line))
    return rows
