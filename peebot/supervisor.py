"""A small process supervisor for `peebot up`: start children in their own process groups,
stream their output with a prefix, watch them (a child that dies is named with why, then
restarted after a back-off or the stack is stopped: `restart_policy.py`), stop them in order,
and leave nothing behind."""

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
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from peebot.restart_policy import GiveUp, RestartPolicy, decide

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


class StackFailed(RuntimeError):
    """A child kept dying (or may not be restarted): the stack was given up; one line."""


# How many of a child's last output lines a death report repeats.
TAIL_LINES = 5


def describe_exit(returncode: int) -> str:
    """`subprocess` return code in words: negative means killed by that signal."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"was killed by {name}"
    return f"exited with status {returncode}"


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
    # Daemons are meant to run until stopped: a death is restarted (with back-off). A child
    # with restart=False stops the stack when it dies.
    restart: bool = True
    # The command line for a restart when it differs from the first start's.
    restart_argv: list[str] | None = None
    proc: subprocess.Popen[str] | None = field(default=None, repr=False)
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES), repr=False)
    failures: list[float] = field(default_factory=list, repr=False)  # monotonic times
    restart_at: float | None = field(default=None, repr=False)
    pump: threading.Thread | None = field(default=None, repr=False)
    groups: list[int] = field(default_factory=list, repr=False)  # every process group started


class Supervisor:
    def __init__(self, out: IO[str] | None = None, width: int = 9) -> None:
        self.children: list[Child] = []
        self.out = out or sys.stdout
        self.width = width
        self._lock = threading.Lock()
        self._state_lock = threading.Lock()  # `_stopping` against a restart in progress
        self._stopping = False

    def say(self, name: str, line: str) -> None:
        with self._lock:
            self.out.write(f"{name:<{self.width}}| {line}\n")
            self.out.flush()

    def _pump(self, child: Child, stream: IO[str]) -> None:
        for raw in stream:
            line = _ANSI.sub("", raw.rstrip())
            if line and not any(n in line for n in _NOISE):
                child.tail.append(line[:300])
                self.say(child.name, line[:300])

    def _spawn(self, child: Child, argv: list[str]) -> None:
        try:
            proc = subprocess.Popen(
                argv,
                env=child.env,
                cwd=child.cwd,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                bufsize=1,
                start_new_session=True,  # our own Ctrl-C handling decides when they stop
            )
        except OSError as exc:
            raise StartupError(f"cannot start {child.name}: {argv[0]}: {exc.strerror}") from exc
        child.proc = proc
        child.groups.append(proc.pid)
        child.tail.clear()
        assert proc.stdout is not None
        child.pump = threading.Thread(target=self._pump, args=(child, proc.stdout), daemon=True)
        child.pump.start()

    def start(self, child: Child) -> None:
        """Start `child` and wait until it is ready (StartupError if it dies or times out)."""
        self._spawn(child, child.argv)
        self.children.append(child)
        assert child.proc is not None
        if child.ready is None:
            return
        deadline = time.monotonic() + child.ready_timeout
        while time.monotonic() < deadline:
            if child.proc.poll() is not None:
                if child.pump is not None:
                    child.pump.join(timeout=2)
                last = f": {child.tail[-1]}" if child.tail else ""
                raise StartupError(
                    f"{child.name} {describe_exit(child.proc.returncode)} while starting{last}"
                )
            if child.ready():
                return
            time.sleep(0.2)
        raise StartupError(f"{child.name} was not ready after {child.ready_timeout:.0f} s")

    def watch(
        self,
        policy: RestartPolicy,
        *,
        interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Run until interrupted: each child that dies is reported (which, why, its last
        lines) and restarted after the policy's back-off. Raises StackFailed when the policy
        gives up on a child, or a child that may not be restarted dies. Returns once
        `stop_all` has begun."""
        while not self._stopping:
            now = clock()
            for child in self.children:
                if child.restart_at is not None:
                    if now >= child.restart_at:
                        self._restart(child, now)
                elif child.proc is not None and child.proc.poll() is not None:
                    self._child_died(child, policy, now)
            time.sleep(interval)

    def _child_died(self, child: Child, policy: RestartPolicy, now: float) -> None:
        assert child.proc is not None
        if child.pump is not None:
            # the last lines first (a grandchild holding the pipe open must not block us)
            child.pump.join(timeout=2)
        why = describe_exit(child.proc.returncode)
        self.say("up", f"{child.name} (pid {child.proc.pid}) {why}")
        if child.tail:
            self.say("up", f"last output of {child.name}:")
            for line in child.tail:
                self.say("up", f"  {child.name}> {line}")
        if not child.restart:
            self.say("up", f"{child.name} is not restarted; stopping the stack")
            raise StackFailed(f"{child.name} {why}; the stack was stopped")
        decision = decide(policy, child.failures, now)
        child.failures.append(now)
        if isinstance(decision, GiveUp):
            self.say(
                "up",
                f"{child.name} failed {decision.failures} times in {policy.window_s:.0f} s; "
                "giving up and stopping the stack",
            )
            raise StackFailed(
                f"{child.name} {why}, its {decision.failures}th failure in "
                f"{policy.window_s:.0f} s; gave up and stopped the stack"
            )
        self.say(
            "up",
            f"restarting {child.name} in {decision.delay_s:g} s (restart {decision.attempt} "
            f"of at most {policy.max_restarts} in {policy.window_s:.0f} s)",
        )
        child.restart_at = now + decision.delay_s

    def _restart(self, child: Child, now: float) -> None:
        child.restart_at = None
        try:
            with self._state_lock:
                if self._stopping:
                    return
                self._spawn(child, child.restart_argv or child.argv)
        except StartupError as exc:
            # counts as another failure: the next watch pass sees a dead process
            self.say("up", str(exc))
            child.restart_at = now + 1.0
            return
        assert child.proc is not None
        self.say("up", f"{child.name} restarted (pid {child.proc.pid})")

    def stop_all(self) -> None:
        """Stop children in the reverse order of the list given by `stop_order` (or of start)."""
        with self._state_lock:
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
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(child.stop_timeout)
            except subprocess.TimeoutExpired:
                self.say(child.name, f"did not stop in {child.stop_timeout:.0f} s; killing it")
        # grandchildren (run workers) share the group; so do those of a dead earlier process
        for group in child.groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
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
