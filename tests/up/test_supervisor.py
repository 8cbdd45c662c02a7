"""The supervisor with real child processes (tiny Python scripts): a child that dies is named,
with why and its last lines, then restarted after the back-off, or the stack is given up."""

from __future__ import annotations

import io
import os
import signal
import sys
import threading
from pathlib import Path

from peebot.restart_policy import RestartPolicy
from peebot.supervisor import Child, StackFailed, Supervisor, describe_exit
from tests.support.waiting import wait_until

FAST = RestartPolicy(max_restarts=2, window_s=600.0, base_delay_s=0.05, max_delay_s=0.2)


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_describe_exit_names_the_signal_or_the_status() -> None:
    assert describe_exit(-signal.SIGKILL) == "was killed by SIGKILL"
    assert describe_exit(3) == "exited with status 3"
    assert describe_exit(0) == "exited with status 0"


def _watch_in_thread(sup: Supervisor, policy: RestartPolicy) -> dict[str, BaseException]:
    outcome: dict[str, BaseException] = {}

    def run() -> None:
        try:
            sup.watch(policy, interval=0.02)
        except BaseException as exc:
            outcome["error"] = exc

    threading.Thread(target=run, daemon=True).start()
    return outcome


def test_a_dying_child_is_reported_restarted_and_finally_given_up(tmp_path: Path) -> None:
    """Each run appends a line to a file and dies with status 3 after saying why: the report
    names the child, the status and the last line; it is restarted twice, then given up."""
    runs = tmp_path / "runs"
    code = (
        "import sys, pathlib\n"
        f"p = pathlib.Path({str(runs)!r})\n"
        "p.open('a').write('x')\n"
        "print('starting', flush=True)\n"
        "print('fatal: the disk is on fire', flush=True)\n"
        "sys.exit(3)\n"
    )
    out = io.StringIO()
    sup = Supervisor(out=out)
    sup.start(Child("burner", _python(code), dict(os.environ)))
    outcome = _watch_in_thread(sup, FAST)
    wait_until(lambda: "error" in outcome, timeout=60, message=lambda: out.getvalue())
    try:
        error = outcome["error"]
        assert isinstance(error, StackFailed)
        assert "burner exited with status 3" in str(error) and "gave up" in str(error)
        text = out.getvalue()
        assert text.count("burner (pid") == 3  # the first run and two restarts, each reported
        assert "exited with status 3" in text
        assert "burner> fatal: the disk is on fire" in text
        assert "restarting burner in 0.05 s (restart 1 of at most 2" in text
        assert "restarting burner in 0.1 s (restart 2 of at most 2" in text
        assert "burner failed 3 times in 600 s; giving up and stopping the stack" in text
        assert runs.read_text() == "xxx"
    finally:
        sup.stop_all()


def test_a_killed_child_is_restarted_and_keeps_running(tmp_path: Path) -> None:
    out = io.StringIO()
    sup = Supervisor(out=out)
    code = "import time\nprint('serving', flush=True)\nwhile True: time.sleep(1)\n"
    child = Child("server", _python(code), dict(os.environ))
    sup.start(child)
    outcome = _watch_in_thread(sup, FAST)
    try:
        assert child.proc is not None
        first = child.proc.pid
        wait_until(lambda: "serving" in out.getvalue())
        os.kill(first, signal.SIGKILL)
        wait_until(
            lambda: child.proc is not None and child.proc.pid != first,
            timeout=30,
            message=lambda: out.getvalue(),
        )
        text = wait_until(
            lambda: "server restarted" in out.getvalue() and out.getvalue(), timeout=30
        )
        assert f"server (pid {first}) was killed by SIGKILL" in text
        assert "server> serving" in text  # its last line, repeated in the report
        assert child.proc.poll() is None and "error" not in outcome
    finally:
        sup.stop_all()
    assert child.proc.poll() is not None


def test_a_child_that_may_not_restart_stops_the_stack_at_once() -> None:
    out = io.StringIO()
    sup = Supervisor(out=out)
    sup.start(Child("once", _python("raise SystemExit(7)"), dict(os.environ), restart=False))
    outcome = _watch_in_thread(sup, FAST)
    wait_until(lambda: "error" in outcome, timeout=30, message=lambda: out.getvalue())
    assert str(outcome["error"]) == "once exited with status 7; the stack was stopped"
    assert "restarting" not in out.getvalue()


def test_restart_argv_is_used_for_restarts(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    code = (
        "import sys, pathlib, time\n"
        "pathlib.Path(sys.argv[1]).open('a').write(sys.argv[2])\n"
        "time.sleep(60)\n"
    )
    out = io.StringIO()
    sup = Supervisor(out=out)
    child = Child(
        "argv",
        [*_python(code), str(marks), "first"],
        dict(os.environ),
        restart_argv=[*_python(code), str(marks), "again"],
    )
    sup.start(child)
    outcome = _watch_in_thread(sup, FAST)
    try:
        wait_until(lambda: marks.exists() and marks.read_text() == "first")
        assert child.proc is not None
        os.kill(child.proc.pid, signal.SIGKILL)
        wait_until(lambda: marks.read_text() == "firstagain", message=lambda: out.getvalue())
        assert "error" not in outcome
    finally:
        sup.stop_all()
