"""Keep child processes running: a dead one is restarted with exponential backoff.

``drc up`` supervises every part it starts (Temporal, supervisord, HAProxy when it is a direct
child, the worker) with a ``Supervisor``: a part that dies is started again after a delay that
doubles with every quick death, while the other parts keep running. Nothing here ever gives up
or exits because a child died; stopping is the caller's decision (``stop``).

Every decision is a sentence, logged and returned by ``tick`` so that tests assert on it:
``"worker exited with -9; restarting in 1.0 s (restart 2); see .drc/logs/worker.log"``.

The caller ticks it (``drc up`` every quarter second). Parts are started and restarted from
the thread that calls ``start`` and ``tick``: children spawned with
``drc.process.die_with_parent`` die with that thread, so it must be one that lives as long as
they should (the main thread in ``drc up``). Restarts happen one at a time in that thread: a
slow start (Temporal waits until it answers) delays another part's restart, never stops a
running part.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from workers.devstack import Child

StartPart = Callable[[int], Child]
"""Starts a part and returns its child; gets the restart number (0 for the first start)."""


@dataclass(frozen=True)
class Backoff:
    """How long a dead part waits before it is started again."""

    initial_s: float = 0.5
    """Delay before the first restart of a run of quick deaths."""
    factor: float = 2.0
    """Each further quick death multiplies the delay by this."""
    max_s: float = 30.0
    """The delay never exceeds this: a part that keeps dying is still tried twice a minute."""
    reset_after_s: float = 60.0
    """A part that ran at least this long before it died starts again from ``initial_s``."""

    def delay(self, restart: int) -> float:
        """Seconds to wait before restart number ``restart`` (1 for the first)."""
        return min(self.max_s, self.initial_s * self.factor ** max(0, restart - 1))


@dataclass
class _Part:
    name: str
    start: StartPart
    child: Child | None = None
    started_at: float = 0.0
    restarts: int = 0
    """Consecutive restarts: since the part last ran ``reset_after_s``."""
    due: float | None = None
    """When a dead part is to be started again; None while it runs."""


class Supervisor:
    """Parts started in order, each restarted with backoff when it dies, stopped in reverse."""

    def __init__(
        self,
        log: Callable[[str], None] = print,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Log each decision with ``log``; ``clock`` (monotonic seconds) is replaceable in tests."""
        self._log = log
        self._backoff = backoff or Backoff()
        self._clock = clock
        self._parts: list[_Part] = []
        self._stopped = False

    def start(self, name: str, start: StartPart) -> Child:
        """Start a part now (``start(0)``) and supervise it from then on.

        Raises whatever ``start`` raises: a part that cannot start the first time is a
        configuration problem for the caller, not something to retry.
        """
        part = _Part(name, start)
        part.child = start(0)
        part.started_at = self._clock()
        self._parts.append(part)
        return part.child

    def child(self, name: str) -> Child | None:
        """The running (or just died) child of part ``name``; None while it awaits a restart."""
        return next((p.child for p in self._parts if p.name == name), None)

    def pids(self) -> set[int]:
        """The pids of the parts' current children (dead or alive, not yet replaced)."""
        return {p.child.proc.pid for p in self._parts if p.child is not None}

    def tick(self) -> list[str]:
        """Look at every part once: schedule a restart of each that died, restart those due.

        Returns the decisions taken, each also logged. After ``stop`` it does nothing.
        """
        decisions: list[str] = []
        for part in self._parts:
            if self._stopped:
                break
            if part.child is not None and part.child.proc.poll() is not None:
                decisions.append(self._died(part, part.child))
            if part.due is not None and self._clock() >= part.due:
                decisions.append(self._restart(part))
        for decision in decisions:
            self._log(decision)
        return decisions

    def stop(self) -> None:
        """Stop every part, the last started first; no part is restarted afterwards."""
        self._stopped = True
        for part in reversed(self._parts):
            if part.child is not None:
                part.child.stop()

    def _died(self, part: _Part, child: Child) -> str:
        if self._clock() - part.started_at >= self._backoff.reset_after_s:
            part.restarts = 0  # it ran long enough: this death is not part of a crash loop
        part.restarts += 1
        delay = self._backoff.delay(part.restarts)
        part.child = None
        part.due = self._clock() + delay
        return (
            f"{part.name} exited with {child.proc.returncode}; restarting in {delay:.1f} s "
            f"(restart {part.restarts}); see {child.log}"
        )

    def _restart(self, part: _Part) -> str:
        part.due = None
        try:
            part.child = part.start(part.restarts)
        # A loop boundary: whatever kept the part from starting, the others must keep running
        # and the part is tried again later.
        except Exception as exc:
            part.restarts += 1
            delay = self._backoff.delay(part.restarts)
            part.due = self._clock() + delay
            return (
                f"{part.name} did not start: {exc}; retrying in {delay:.1f} s "
                f"(restart {part.restarts})"
            )
        part.started_at = self._clock()
        return f"{part.name} restarted (pid {part.child.proc.pid})"
