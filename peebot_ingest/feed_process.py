"""The feed client in a process of its own, so it has a core and an interpreter lock to itself
(docs/ARCHITECTURE.md, "Ingest").

The child (spawned) runs `FeedSource`; its listener puts each update on a bounded queue and a
sender thread hands whatever is there, up to `BATCH` messages at a time, down a pipe to the
daemon's writer thread as one pickled list. The channel is bounded and loses nothing:

- Writer slow: the pipe fills, the sender blocks, the queue fills and the client's listener
  thread blocks (counted: `stalls`); the server keeps what it has not sent. Nothing is
  dropped, nothing is spilled.
- Writer (parent) killed: the child's control pipe reaches end of file and the child exits at
  once (Linux also sends it SIGKILL when the parent dies). What it held dies with it, as the
  parent's own queue does; the restarted daemon subscribes again with a snapshot and
  `event_id` dedupes what was already written.
- Client (child) killed: the writer reads end of file, logs one line saying which process
  and why, records the feed as DISCONNECTED and starts a new child, which subscribes again
  with a snapshot; `event_id` dedupes what the snapshot repeats. As on any dropped session,
  updates the server sent to the dead one are gone; the snapshot brings each item's latest.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

log = logging.getLogger("peebot.ingest.feed")

BATCH = 1000  # messages per pipe send, at most
_STOP = "stop"


@dataclass(frozen=True)
class FeedOptions:
    """What the child needs to run the client (pickled to it)."""

    feed_url: str
    adapter_set: str
    items: list[str]
    fast_reconnect: bool = False
    transport: str | None = None
    reconnect_seconds: float = 10.0
    queue_size: int = 10_000


class FeedProcess:
    """The parent's side: starts the child, receives its batches, restarts it if it dies.

    Used by the daemon's writer thread only (`receive`, `more_waiting`, `finished`); the main
    thread calls `start` and `stop`."""

    def __init__(self, options: FeedOptions) -> None:
        self.options = options
        self.received = 0  # updates the client delivered, over every child
        self.stalls = 0  # times a child's listener waited for room in the channel
        self.restarts = 0
        self.status = "DISCONNECTED"
        self.queued = 0  # the child's queue, as of its last batch
        self._ctx = multiprocessing.get_context("spawn")
        self._proc: Any = None
        self._data: Connection | None = None
        self._control: Connection | None = None
        self._base_received = 0
        self._base_stalls = 0
        self._stopping = False
        self._ended = False

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def start(self) -> None:
        data_r, data_w = self._ctx.Pipe(duplex=False)
        control_r, control_w = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(
            target=child_main,
            args=(data_w, control_r, self.options),
            name="peebot-feed-client",
            daemon=True,
        )
        proc.start()
        data_w.close()  # only the child writes: its death is our end of file
        control_r.close()  # only the child reads: our death is its end of file
        self._proc, self._data, self._control = proc, data_r, control_w

    def stop(self) -> None:
        """Ask the child to disconnect and send what it holds; `finished` then turns True."""
        self._stopping = True
        if self._control is not None:
            with contextlib.suppress(OSError):
                self._control.send(_STOP)

    @property
    def finished(self) -> bool:
        """After `stop`: the child has sent everything and ended."""
        return self._ended

    def more_waiting(self) -> bool:
        data = self._data
        try:
            return data is not None and data.poll(0)
        except (OSError, EOFError):
            return True  # end of file waiting to be read

    def receive(self, timeout: float, limit: int = BATCH) -> list[tuple[Any, ...]]:
        """The next batch of messages (see `FeedSource`), [] if none came within `timeout`
        (the child sends at most BATCH at a time; `limit` is for the interface's sake)."""
        data = self._data
        if data is None or self._ended:
            time.sleep(timeout)
            return []
        try:
            if not data.poll(timeout):
                return []
            kind, received, stalls, queued, msgs = data.recv()
        except (EOFError, OSError):
            return self._child_gone()
        self.received = self._base_received + received
        self.stalls = self._base_stalls + stalls
        self.queued = queued
        for msg in msgs:
            if msg[0] == "s":
                self.status = msg[1]
        if kind == "end":
            self._ended = True
            self._reap(timeout=5.0)
        return msgs

    def _child_gone(self) -> list[tuple[Any, ...]]:
        proc = self._proc
        code = self._reap(timeout=5.0)
        if self._stopping:  # asked to stop, it ended without sending its last batch
            log.warning(
                "feed client process %s ended before sending what it held (%s)",
                proc.pid if proc is not None else "?",
                describe_exit(code),
            )
            self._ended = True
            return []
        log.error(
            "feed client process %s died (%s); starting a new one, which subscribes again "
            "with a snapshot",
            proc.pid if proc is not None else "?",
            describe_exit(code),
        )
        self._base_received = self.received
        self._base_stalls = self.stalls
        self.status = "DISCONNECTED"
        self.start()
        # counted once the new child is in place (`pid` is the new one by then)
        self.restarts += 1
        if self._stopping:
            # `stop` came from the main thread while there was no child to tell (between
            # the reap and the start): tell the new one, or it would stream forever
            self.stop()
        return [("s", "DISCONNECTED", time.time())]

    def _reap(self, timeout: float) -> int | None:
        proc, data = self._proc, self._data
        self._data = None
        if data is not None:
            data.close()
        if self._control is not None:
            self._control.close()
            self._control = None
        if proc is None:
            return None
        proc.join(timeout)
        if proc.exitcode is None:  # hung: it must not outlive its channel
            proc.kill()
            proc.join(5.0)
        return proc.exitcode  # type: ignore[no-any-return]

    def kill(self) -> None:
        """End the child at once (the daemon's own failure path)."""
        self._stopping = True
        if self._proc is not None and self._proc.exitcode is None:
            self._proc.kill()
        self._reap(timeout=5.0)
        self._ended = True


def describe_exit(code: int | None) -> str:
    """A process's exit code in words."""
    if code is None:
        return "exit status unknown"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


# --------------------------------------------------------------------------- the child


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent dies (belt and braces: the control pipe's
    end of file does it too)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)


def child_main(data: Connection, control: Connection, options: FeedOptions) -> None:
    """The child process: the client, a sender thread, and this thread watching the parent
    and the client's status."""
    _die_with_parent()
    # Ctrl-C and a supervisor's SIGTERM reach the whole process group: the parent decides
    # when the client stops (it asks, and the child sends what it holds first)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from peebot_ingest.feed_source import FeedSource
    from peebot_ingest.logs import configure_logging

    configure_logging()
    out: queue.Queue[Any] = queue.Queue(maxsize=options.queue_size)
    source = FeedSource(
        options.feed_url,
        options.adapter_set,
        options.items,
        out,
        fast_reconnect=options.fast_reconnect,
        transport=options.transport,
    )
    sender = threading.Thread(target=_send, args=(out, data, source), name="feed-sender")
    sender.start()
    source.connect()
    down_since: float | None = None
    while True:
        try:
            ready = control.poll(1.0)
            message = control.recv() if ready else None
        except (EOFError, OSError):
            log.error("ingest writer process gone; the feed client exits")
            os._exit(0)
        if message == _STOP:
            break
        # the client retries by itself, except after a terminal error: then reconnect
        if source.status == "DISCONNECTED":  # not retrying by itself
            now = time.monotonic()
            if down_since is None:
                down_since = now
            elif now - down_since > options.reconnect_seconds:
                log.warning("feed client gave up; connecting again")
                down_since = now
                source.connect()
        else:
            down_since = None
    source.disconnect()
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline and source.status != "DISCONNECTED":
        time.sleep(0.05)
    time.sleep(0.2)  # callbacks already handed to the client's user thread
    out.put(None)  # the sender sends what is queued, then "end"
    sender.join()
    os._exit(0)


def _send(out: queue.Queue[Any], data: Connection, source: Any) -> None:
    """Whatever is queued, up to BATCH at a time, as one message; blocks while the pipe is
    full (the writer is behind)."""
    ending = False
    while not ending:
        msgs = [out.get()]
        take_waiting(out, msgs, BATCH)
        if msgs[-1] is None:
            msgs.pop()
            ending = True
        kind = "end" if ending else "batch"
        try:
            data.send((kind, source.received, source.stalls, out.qsize(), msgs))
        except OSError:  # the parent is gone
            log.error("ingest writer process gone; the feed client exits")
            os._exit(0)


def take_waiting(out: queue.Queue[Any], msgs: list[Any], limit: int) -> None:
    """Move what is waiting on `out` to `msgs`, up to `limit` in all, in one hold of the
    queue's lock (`get_nowait` one at a time was a tenth of the client process's time), and
    wake a listener blocked on a full queue."""
    with out.mutex:
        waiting = out.queue
        n = min(len(waiting), limit - len(msgs))
        if n <= 0:
            return
        msgs.extend([waiting.popleft() for _ in range(n)])
        out.not_full.notify_all()
