"""When a child of `peebot up` dies: restart it after a back-off, or give up.

Pure logic on plain data (the supervisor does the I/O). A daemon that keeps dying is not
restarted forever: after `max_restarts` failures inside `window_s` the stack stops with a
non-zero exit, so a service manager (or the operator) sees a broken stack instead of a loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class RestartPolicy:
    """Back-off doubles from `base_delay_s` with each failure still inside the window, up to
    `max_delay_s`. A child that failed `max_restarts` times inside `window_s` and fails again
    is given up on."""

    max_restarts: int = 5
    window_s: float = 300.0
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0


@dataclass(frozen=True)
class Restart:
    delay_s: float
    attempt: int  # 1 for the first restart inside the window


@dataclass(frozen=True)
class GiveUp:
    failures: int  # failures inside the window, this one included


Decision = Restart | GiveUp


def decide(policy: RestartPolicy, failures: Sequence[float], now: float) -> Decision:
    """What to do about a failure at `now`, given the times of earlier failures (monotonic
    seconds, any order). `failures` must not include the one at `now`."""
    recent = [t for t in failures if now - t < policy.window_s]
    if len(recent) >= policy.max_restarts:
        return GiveUp(failures=len(recent) + 1)
    delay = min(policy.base_delay_s * 2 ** len(recent), policy.max_delay_s)
    return Restart(delay_s=delay, attempt=len(recent) + 1)
