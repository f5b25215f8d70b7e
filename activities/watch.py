"""The long-running watch of one service (design notes §2).

One activity per service probes every replica every interval, feeds the pure detector and
returns to the workflow only when a replica changes state, so a healthy service writes almost no
workflow history. Its progress (the detector's tracks) rides on every heartbeat: a retried watch,
on this worker or another, resumes with the same counters. A monitor uses it when no watch group
serves it (``activities/watch_group.py`` watches many services with one activity).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pydantic import TypeAdapter
from temporalio import activity

from activities.probes.engine import ProbeEngine
from activities.probes.ticker import ticks
from activities.process_view import ProcessView
from activities.service_watch import ServiceWatch
from activities.state import StateReplicator
from activities.watch_metrics import NO_METRICS, WatchMetrics
from drc.model import Transition
from drc.names import WATCH_SERVICE
from drc.watch import WatchInput, WatchProgress, WatchResult

_PROGRESS = TypeAdapter(WatchProgress)


def log_transition(service: str, transition: Transition) -> None:
    """The watch's own line for a transition it returns (the monitor logs its decision)."""
    about = {"service": service, "replica": transition.replica, "action": "transition"}
    activity.logger.info(
        "transition: %s",
        transition.reason,
        extra={"drc": {**about, "state": transition.new.value, "severity": transition.severity}},
    )


def progress_from_details(details: object) -> WatchProgress:
    """Parse heartbeat details (as the converter hands them back, untyped) into progress."""
    return _PROGRESS.validate_python(details)


class WatchActivities:
    """Owns the worker's probe engine; one ``watch_service`` runs per monitored service."""

    def __init__(
        self,
        engine: ProbeEngine,
        state: StateReplicator | None = None,
        processes: ProcessView | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._engine = engine
        self._state = state
        self._processes = processes
        self._clock = clock

    def service_watch(
        self, inp: WatchInput, resumed: WatchProgress | None, metrics: WatchMetrics = NO_METRICS
    ) -> ServiceWatch:
        """A ``ServiceWatch`` of ``inp``, resuming the tracks and sync of ``resumed``."""
        return ServiceWatch(
            inp.service,
            resumed.tracks if resumed else inp.tracks,
            resumed.sync if resumed else inp.sync,
            inp.primary,
            inp.supervisor_url,
            self._engine,
            self._state,
            self._processes,
            self._clock,
            metrics,
        )

    @activity.defn(name=WATCH_SERVICE)
    async def watch_service(self, inp: WatchInput) -> WatchResult:
        """Probe until a replica changes state (or ``max_duration_s`` passes), then return.

        Safe to retry: it only reads the world, and it resumes from the tracks of its last
        heartbeat, so a retry neither loses nor double-counts a missed heartbeat.
        """
        details = activity.info().heartbeat_details
        resumed = progress_from_details(details[0]) if details else None
        watch = self.service_watch(inp, resumed, WatchMetrics.of_activity())
        progress = WatchProgress(tracks=watch.tracks, sync=watch.sync)
        started = time.monotonic()
        try:
            async for tick in ticks(inp.service.probe.interval_ms / 1000):
                transitions, events = await watch.tick(tick)
                progress.ticks, progress.skipped_ticks = watch.ticks, watch.skipped_ticks
                progress.max_lateness_ms = watch.max_lateness_ms
                progress.tilt = watch.tilt
                for transition in transitions:
                    log_transition(inp.service.name, transition)
                    progress.last_transitions = transitions
                activity.heartbeat(progress)
                if transitions or events or time.monotonic() - started >= inp.max_duration_s:
                    return WatchResult(transitions, watch.tracks, events, watch.sync)
        finally:
            watch.close()
        raise RuntimeError("the ticker ended")  # ticks() is infinite
