"""Background replication-lag and consistency measurements of one standby, for the watch."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from activities.state import (
    ConsistencyResult,
    Endpoint,
    LagSample,
    StateError,
    StateReplicator,
    StateUnreachableError,
)
from drc.sync import ConsistencySummary

CONSISTENCY_EVERY_S = 30.0

_ORPHANS: set[asyncio.Task[Any]] = set()  # dropped measurements, kept alive until they end


def _forget(task: asyncio.Task[Any]) -> None:
    _ORPHANS.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved, so an error in an ignored answer is not reported unread


CONSISTENCY_SAMPLE = 50


class SyncPoller:
    """Measures lag (pt-heartbeat) when asked and compares keys now and then, off the tick."""

    def __init__(
        self, state: StateReplicator, primary: Endpoint, replica: Endpoint, timeout_ms: int
    ) -> None:
        self._state, self._primary, self._replica = state, primary, replica
        self._timeout_ms = timeout_ms
        self._lag: asyncio.Task[LagSample] | None = None
        self._check: asyncio.Task[ConsistencySummary] | None = None
        self._last_check = time.monotonic()  # first comparison one period after the start

    def start(self) -> None:
        """Start a lag measurement (unless one runs) and, when due, a consistency check."""
        if self._lag is None:
            self._lag = asyncio.create_task(
                self._state.measure_lag(self._primary, self._replica, self._timeout_ms)
            )
        if self._check is None and time.monotonic() - self._last_check >= CONSISTENCY_EVERY_S:
            self._last_check = time.monotonic()
            self._check = asyncio.create_task(self._consistency())

    def take_lag(self) -> LagSample | None:
        """A finished lag sample, once; None while measuring or idle.

        A primary that does not answer gives a sample with ``primary_reachable`` False and the
        replica's own view (see ``StateReplicator.measure_lag``). One that answers but refuses
        the heartbeat (fenced during a failover, or no longer a primary) gives a sample with
        nothing measured and the refusal as its error.
        """
        if self._lag is None or not self._lag.done():
            return None
        task, self._lag = self._lag, None
        try:
            return task.result()
        except StateError as exc:
            return LagSample(
                None,
                -1,
                -1,
                False,
                time.time(),
                f"no measurement: {exc}",
                primary_reachable=not isinstance(exc, StateUnreachableError),
            )

    def take_check(self) -> ConsistencySummary | None:
        """A finished consistency summary, once."""
        if self._check is None or not self._check.done():
            return None
        task, self._check = self._check, None
        return task.result()

    def cancel(self) -> None:
        """Drop whatever is in flight, letting it finish on its own.

        Cancelling a Redis command half-way through was seen to leave the shared client's
        connection unusable for the next measurements; each measurement is bounded by its
        timeouts, so it is allowed to end by itself and its answer is ignored.
        """
        for task in (self._lag, self._check):
            if task is not None and not task.done():
                _ORPHANS.add(task)
                task.add_done_callback(_forget)
        self._lag = self._check = None

    async def _consistency(self) -> ConsistencySummary:
        try:
            result = await self._state.consistency(self._primary, self._replica, CONSISTENCY_SAMPLE)
            if not result.ok:  # a key written between the two reads looks different: look again
                await asyncio.sleep(0.2)
                result = await self._state.consistency(
                    self._primary, self._replica, CONSISTENCY_SAMPLE
                )
        except StateError as exc:
            return ConsistencySummary(False, 0, 0, 0, False, time.time(), f"not checked: {exc}")
        return _summary(result)


def _summary(result: ConsistencyResult) -> ConsistencySummary:
    return ConsistencySummary(
        ok=result.ok,
        checked=result.checked,
        missing=len(result.missing_on_replica),
        mismatched=len(result.mismatched),
        offsets_equal=result.offsets_equal,
        at=result.at,
        detail=str(result),
    )
