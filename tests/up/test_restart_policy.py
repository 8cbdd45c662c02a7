"""The restart policy of `peebot up`, as the pure function it is."""

from __future__ import annotations

from peebot.restart_policy import GiveUp, Restart, RestartPolicy, decide

POLICY = RestartPolicy(max_restarts=3, window_s=60.0, base_delay_s=1.0, max_delay_s=5.0)


def test_first_failure_restarts_after_the_base_delay() -> None:
    assert decide(POLICY, [], now=100.0) == Restart(delay_s=1.0, attempt=1)


def test_back_off_doubles_with_each_recent_failure_up_to_the_cap() -> None:
    assert decide(POLICY, [90.0], now=100.0) == Restart(delay_s=2.0, attempt=2)
    assert decide(POLICY, [80.0, 90.0], now=100.0) == Restart(delay_s=4.0, attempt=3)
    capped = RestartPolicy(max_restarts=10, window_s=60.0, base_delay_s=1.0, max_delay_s=5.0)
    assert decide(capped, [95.0, 96.0, 97.0, 98.0], now=100.0) == Restart(delay_s=5.0, attempt=5)


def test_gives_up_once_max_restarts_were_used_inside_the_window() -> None:
    assert decide(POLICY, [50.0, 70.0, 90.0], now=100.0) == GiveUp(failures=4)


def test_failures_older_than_the_window_are_forgotten() -> None:
    # three failures, but the first fell out of the 60 s window: one restart left
    assert decide(POLICY, [39.0, 70.0, 90.0], now=100.0) == Restart(delay_s=4.0, attempt=3)
    # a child that ran well for a long time starts over at the base delay
    assert decide(POLICY, [10.0, 20.0, 30.0], now=1000.0) == Restart(delay_s=1.0, attempt=1)


def test_order_of_earlier_failures_does_not_matter() -> None:
    assert decide(POLICY, [90.0, 50.0, 70.0], now=100.0) == GiveUp(failures=4)
