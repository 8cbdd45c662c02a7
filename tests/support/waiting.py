"""Waiting on conditions, the one way the suite waits: poll until true or a generous deadline.

A test never sleeps for a fixed time and never asserts on speed (CI shares a busy machine);
speed is for `bench/`."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Any


def wait_until(
    predicate: Callable[[], Any],
    timeout: float = 30.0,
    interval: float = 0.05,
    message: str | Callable[[], str] = "condition",
    alive: subprocess.Popen[Any] | None = None,
) -> Any:
    """Poll `predicate` until it returns something truthy and return that. Raise
    AssertionError after `timeout` seconds, or at once if the `alive` process has exited,
    naming what was awaited (`message`, or a callable giving it, e.g. a log tail)."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if alive is not None and alive.poll() is not None:
            raise AssertionError(
                f"process exited ({alive.returncode}) while waiting for {_text(message)}"
            )
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {_text(message)}")
        time.sleep(interval)


def _text(message: str | Callable[[], str]) -> str:
    return message() if callable(message) else message
