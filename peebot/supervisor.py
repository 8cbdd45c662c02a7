"""A small process supervisor for `peebot up`: start children in their own process groups,
stream their output with a prefix, stop them in order, and leave nothing behind."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

# Lines from children that say nothing an operator needs while things work.
_NOISE = (
    " - DEBUG - ",  # Dagster's per-step event log, one line per event
    "partition_mapping=dg.TimeWindowPartitionMapping(",
    "return SensorDefinition(",
    "return fn(*args, **kwargs)",
    "No cursor for event type",
    "RuntimeDirWarning",
    "return Path(self.user_runtime_dir)",
    "BetaWarning",
    "PreviewWarning",
    "SupersessionWarning",
    "warnings.warn(",
)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class StartupError(RuntimeError):
    """Something `up` needs is not there; worded for one line."""


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_accepts(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def processes_using(home: Path) -> list[int]:
    """Processes (other than this one) whose environment says PEEBOT_HOME=home or whose
    command line names it: what a stack under that home left running."""
    found = []
    marker = f"PEEBOT_HOME={home}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0") or str(home).encode() in cmdline:
            found.append(int(entry.name))
    return found


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    ready: Callable[[], bool] | None = None
    ready_timeout: float = 60.0
    stop_timeout: float = 20.0
    cwd: str | None = None
    proc: subprocess.Popen[str] | None = field(default=None, repr=False)


class Supervisor:
    def __init__(self, out: IO[str] | None = None, width: int = 9) -> None:
        self.children: list[Child] = []
        self.out = out or sys.stdout
        self.width = width
        self._lock = threading.Lock()
        self._stopping = False

    def say(self, name: str, line: str) -> None:
        with self._lock:
            self.out.write(f"{name:<{self.width}}| {line}\n")
            self.out.flush()

    def _pump(self, child: Child) -> None:
        assert child.proc is not None and child.proc.stdout is not None
        for raw in child.proc.stdout:
            line = _ANSI.sub("", raw.rstrip())
            if line and not any(n in line for n in _NOISE):
                self.say(child.name, line[:300])

    def start(self, child: Child) -> None:
        try:
            child.proc = subprocess.Popen(
                child.argv,
                env=child.env,
                cwd=child.cwd,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                bufsize=1,
                start_new_session=True,  # our own Ctrl-C handling decides when they stop
            )
        except FileNotFoundError as exc:
            raise StartupError(f"cannot start {child.name}: {child.argv[0]} not found") from exc
        self.children.append(child)
        threading.Thread(target=self._pump, args=(child,), daemon=True).start()
        if child.ready is None:
            return
        deadline = time.monotonic() + child.ready_timeout
        while time.monotonic() < deadline:
            if child.proc.poll() is not None:
                raise StartupError(
                    f"{child.name} exited with status {child.proc.returncode} while starting"
                )
            if child.ready():
                return
            time.sleep(0.2)
        raise StartupError(f"{child.name} was not ready after {child.ready_timeout:.0f} s")

    def first_exited(self) -> Child | None:
        for child in self.children:
            if child.proc is not None and child.proc.poll() is not None:
                return child
        return None

    def stop_all(self) -> None:
        """Stop children in the reverse order of the list given by `stop_order` (or of start)."""
        if self._stopping:
            return
        self._stopping = True
        # A second Ctrl-C (or a service manager repeating SIGTERM) must not cut the orderly
        # shutdown short and leave children running.
        previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            for child in self.stop_order():
                self._stop(child)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def stop_order(self) -> list[Child]:
        return list(reversed(self.children))

    def _stop(self, child: Child) -> None:
        proc = child.proc
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(child.stop_timeout)
        except subprocess.TimeoutExpired:
            self.say(child.name, f"did not stop in {child.stop_timeout:.0f} s; killing it")
        # grandchildren (Dagster's code servers and run workers) share the group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)


@contextlib.contextmanager
def signals_raise_keyboard_interrupt() -> Any:
    """SIGINT and SIGTERM both raise KeyboardInterrupt, so Ctrl-C and a service manager stop
    `up` the same way. SIGINT is set explicitly: a shell starts background jobs with SIGINT
    ignored, and Python keeps an inherited "ignore"."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
