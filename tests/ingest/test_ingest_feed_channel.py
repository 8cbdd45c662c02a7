"""The feed process's sender takes what is waiting in one go (`feed_process.take_waiting`):
in order, up to its limit, and a listener blocked on the full queue goes on."""

from __future__ import annotations

import queue
import threading
from typing import Any

from peebot_ingest.feed_process import take_waiting
from tests.support.waiting import wait_until


def test_takes_in_order_up_to_the_limit() -> None:
    out: queue.Queue[Any] = queue.Queue(maxsize=100)
    for k in range(10):
        out.put(k)
    msgs: list[Any] = [out.get()]
    take_waiting(out, msgs, 4)
    assert msgs == [0, 1, 2, 3]
    take_waiting(out, msgs, 100)
    assert msgs == list(range(10)) and out.empty()
    take_waiting(out, msgs, 100)  # nothing waiting: nothing taken
    assert msgs == list(range(10))


def test_a_listener_blocked_on_a_full_queue_goes_on() -> None:
    out: queue.Queue[Any] = queue.Queue(maxsize=3)
    for k in range(3):
        out.put(k)
    blocked = threading.Event()
    put_done = threading.Event()

    def listener() -> None:
        blocked.set()
        out.put(3)  # blocks: the queue is full
        put_done.set()

    thread = threading.Thread(target=listener)
    thread.start()
    assert blocked.wait(10)
    waiting_puts = out.not_full._waiters  # type: ignore[attr-defined]
    wait_until(lambda: waiting_puts, interval=0.01, message="the listener's put waiting")
    msgs: list[Any] = []
    take_waiting(out, msgs, 10)
    assert put_done.wait(30), "the listener stayed blocked"
    thread.join(30)
    take_waiting(out, msgs, 10)
    assert msgs == [0, 1, 2, 3]
