"""The supervision of ``drc up``'s parts, on real short-lived child processes.

Time is a fake clock the tests move by hand, so backoff is asserted through the decisions
logged and the pids observed, never by measuring how long anything took.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from pathlib import Path

from workers.devstack import Child, spawn
from workers.supervision import Backoff, StartPart, Supervisor


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def starter(logs: Path, name: str, argv: list[str], calls: list[int] | None = None) -> StartPart:
    def start(restart: int) -> Child:
        if calls is not None:
            calls.append(restart)
        return spawn(name, argv, logs)

    return start


SLEEP = ["sleep", "60"]
CRASH = [sys.executable, "-c", "raise SystemExit(3)"]
DIED = re.compile(r"(\S+) exited with (-?\d+); restarting in ([\d.]+) s \(restart (\d+)\); see .+")


def test_a_killed_part_is_restarted_after_its_backoff_while_the_others_keep_running(
    tmp_path: Path,
) -> None:
    clock, lines = Clock(), []
    supervisor = Supervisor(lines.append, clock=clock)
    bystander = supervisor.start("bystander", starter(tmp_path, "bystander", SLEEP))
    first = supervisor.start("worker", starter(tmp_path, "worker", SLEEP))
    try:
        assert supervisor.tick() == []
        os.kill(first.proc.pid, signal.SIGKILL)
        first.proc.wait()

        died = supervisor.tick()
        assert died == [
            f"worker exited with -9; restarting in 0.5 s (restart 1); see {tmp_path}/worker.log"
        ]
        assert supervisor.child("worker") is None
        clock.now += 0.4
        assert supervisor.tick() == [], "not due yet"
        clock.now += 0.1
        restarted = supervisor.tick()

        second = supervisor.child("worker")
        assert second is not None and second.proc.pid != first.proc.pid
        assert second.proc.poll() is None
        assert restarted == [f"worker restarted (pid {second.proc.pid})"]
        assert lines == died + restarted
        assert supervisor.child("bystander") is bystander and bystander.proc.poll() is None
    finally:
        supervisor.stop()


def test_quick_deaths_double_the_delay_up_to_the_cap(tmp_path: Path) -> None:
    clock, calls = Clock(), []
    supervisor = Supervisor(lambda _: None, clock=clock)
    supervisor.start("crasher", starter(tmp_path, "crasher", CRASH, calls))
    delays, restarts = [], []
    try:
        for _ in range(8):
            child = supervisor.child("crasher")
            assert child is not None
            child.proc.wait()
            [died] = supervisor.tick()
            match = DIED.fullmatch(died)
            assert match is not None and match.group(1, 2) == ("crasher", "3"), died
            delays.append(float(match[3]))
            restarts.append(int(match[4]))
            clock.now += float(match[3])
            [restarted] = supervisor.tick()
            assert restarted.startswith("crasher restarted (pid ")
    finally:
        supervisor.stop()
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert restarts == [1, 2, 3, 4, 5, 6, 7, 8]
    assert calls == [0, 1, 2, 3, 4, 5, 6, 7, 8], "start is told which restart it is"


def test_a_part_that_ran_a_minute_starts_its_backoff_again(tmp_path: Path) -> None:
    clock = Clock()
    supervisor = Supervisor(lambda _: None, Backoff(reset_after_s=60), clock=clock)
    supervisor.start("crasher", starter(tmp_path, "crasher", CRASH))
    delays = []
    try:
        for uptime in (0.0, 0.0, 60.0, 0.0):
            child = supervisor.child("crasher")
            assert child is not None
            child.proc.wait()
            clock.now += uptime  # how long it seemed to run before it died
            [died] = supervisor.tick()
            match = DIED.fullmatch(died)
            assert match is not None, died
            delays.append(float(match[3]))
            clock.now += float(match[3])
            supervisor.tick()
    finally:
        supervisor.stop()
    assert delays == [0.5, 1.0, 0.5, 1.0]


def test_a_part_that_cannot_start_again_is_retried_later(tmp_path: Path) -> None:
    clock, lines = Clock(), []
    argvs = [SLEEP, ["/nonexistent/drc-part"], SLEEP]

    def start(restart: int) -> Child:
        return spawn("flaky", argvs[restart], tmp_path)

    supervisor = Supervisor(lines.append, clock=clock)
    first = supervisor.start("flaky", start)
    try:
        os.kill(first.proc.pid, signal.SIGKILL)
        first.proc.wait()
        supervisor.tick()
        clock.now += 0.5
        [failed] = supervisor.tick()
        assert failed == (
            "flaky did not start: [Errno 2] No such file or directory: '/nonexistent/drc-part'; "
            "retrying in 1.0 s (restart 2)"
        )
        clock.now += 0.9
        assert supervisor.tick() == []
        clock.now += 0.1
        [restarted] = supervisor.tick()
        second = supervisor.child("flaky")
        assert second is not None and second.proc.poll() is None
        assert restarted == f"flaky restarted (pid {second.proc.pid})"
    finally:
        supervisor.stop()


def test_stop_ends_every_part_in_reverse_order_and_restarts_nothing(tmp_path: Path) -> None:
    stopped = tmp_path / "stopped"
    clock = Clock()
    supervisor = Supervisor(lambda _: None, clock=clock)
    children = []
    for name in ("temporal", "supervisord", "worker"):
        # Records its name when it is asked to stop (SIGTERM), then exits.
        ready = tmp_path / f"{name}.ready"
        script = (
            f'trap "echo {name} >> {stopped}; exit 0" TERM; touch {ready}; '
            "while :; do sleep 0.05; done"
        )
        children.append(supervisor.start(name, starter(tmp_path, name, ["sh", "-c", script])))
        while not ready.exists():  # its trap is set: a SIGTERM now is recorded
            time.sleep(0.01)
    supervisor.stop()
    assert stopped.read_text().split() == ["worker", "supervisord", "temporal"]
    assert all(c.proc.poll() is not None for c in children)
    clock.now += 3600
    assert supervisor.tick() == []
    assert all(supervisor.child(n) in children for n in ("temporal", "supervisord", "worker"))
