"""The long-running watch of one service (design notes §2).

One activity per service probes every replica every interval, feeds the pure detector and
returns to the workflow only when a replica changes state, so a healthy service writes almost no
workflow history. Its progress (the detector's tracks) rides on every heartbeat: a retried watch,
on this worker or another, resumes with the same counters.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from pydantic import TypeAdapter
from temporalio import activity

from activities.probes.engine import ProbeEngine
from activities.probes.ticker import ticks
from activities.process_view import ProcessVerdict, ProcessView
from activities.state import StateReplicator
from activities.state_actions import replica_endpoint
from activities.sync_poller import SyncPoller
from drc.catalog import Replica, Service
from drc.detector import Detector, Observation
from drc.model import ProbeResult, Transition
from drc.names import WATCH_SERVICE
from drc.sync import SyncEvent, SyncSample, SyncStats
from drc.sync import observe as observe_sync
from drc.watch import WatchInput, WatchProgress, WatchResult

HEALTH_TIMEOUT_CAP_MS = 5000

_PROGRESS = TypeAdapter(WatchProgress)


def progress_from_details(details: object) -> WatchProgress:
    """Parse heartbeat details (as the converter hands them back, untyped) into progress."""
    return _PROGRESS.validate_python(details)


class _HealthPoller:
    """Runs a replica's /health and checks in the background so a slow one never delays a tick."""

    def __init__(self, engine: ProbeEngine, replica: Replica, timeout_ms: int) -> None:
        self._engine, self._replica, self._timeout_ms = engine, replica, timeout_ms
        self._task: asyncio.Task[ProbeResult] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._engine.health(self._replica, self._timeout_ms))

    def take(self) -> ProbeResult | None:
        """The finished result, once; None while running or idle."""
        if self._task is None or not self._task.done():
            return None
        task, self._task = self._task, None
        return task.result()

    def cancel(self) -> None:
        """Drop the probe in flight, if any: its answer would describe a replica now gone."""
        if self._task is not None:
            self._task.cancel()
            self._task = None


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

    @activity.defn(name=WATCH_SERVICE)
    async def watch_service(self, inp: WatchInput) -> WatchResult:
        """Probe until a replica changes state (or ``max_duration_s`` passes), then return.

        Safe to retry: it only reads the world, and it resumes from the tracks of its last
        heartbeat, so a retry neither loses nor double-counts a missed heartbeat.
        """
        details = activity.info().heartbeat_details
        resumed = progress_from_details(details[0]) if details else None
        tracks = resumed.tracks if resumed else inp.tracks
        sync = resumed.sync if resumed else inp.sync
        detector = Detector(inp.service, tracks, now=self._clock())
        pollers = self._pollers(inp.service)
        syncers = self._sync_pollers(inp)
        for name in syncers:
            sync.setdefault(name, SyncStats(replica=name, primary=inp.primary or ""))
        sync = {name: stats for name, stats in sync.items() if name in syncers}
        try:
            return await self._loop(inp, detector, pollers, syncers, sync)
        finally:
            for poller in pollers.values():
                poller.cancel()
            for syncer in syncers.values():
                syncer.cancel()

    async def _loop(
        self,
        inp: WatchInput,
        detector: Detector,
        pollers: dict[str, _HealthPoller],
        syncers: dict[str, SyncPoller],
        sync: dict[str, SyncStats],
    ) -> WatchResult:
        service = inp.service
        progress = WatchProgress(tracks=detector.tracks, sync=sync)
        started = time.monotonic()
        async for tick in ticks(service.probe.interval_ms / 1000):
            if progress.ticks % service.probe.health_every == 0:
                for poller in pollers.values():
                    poller.start()
                for syncer in syncers.values():
                    syncer.start()
            transitions = await self._probe_once(inp, detector, pollers)
            events = self._sync_once(service, syncers, sync)
            progress.ticks += 1
            progress.skipped_ticks += tick.skipped
            progress.max_lateness_ms = max(progress.max_lateness_ms, tick.lateness_s * 1000)
            if transitions:
                progress.last_transitions = transitions
            activity.heartbeat(progress)
            if transitions or events or time.monotonic() - started >= inp.max_duration_s:
                return WatchResult(transitions, detector.tracks, events, sync)
        raise RuntimeError("the ticker ended")  # ticks() is infinite

    async def _probe_once(
        self, inp: WatchInput, detector: Detector, pollers: dict[str, _HealthPoller]
    ) -> list[Transition]:
        service = inp.service
        timeout_ms = service.probe.timeout_ms
        beats = await asyncio.gather(
            *(self._bounded_heartbeat(replica, timeout_ms) for replica in service.replicas)
        )
        verdicts = await self._verdicts(inp, beats)
        now = self._clock()
        transitions = []
        for replica, beat in zip(service.replicas, beats, strict=True):
            poller = pollers[replica.name]
            if not beat.ok:
                poller.cancel()  # a /health answer from a replica that misses beats is stale
            said = verdicts.get(replica.name, ProcessVerdict())
            obs = Observation(beat, poller.take(), said.starting, said.dead)
            transition = detector.observe(replica.name, obs, now)
            if transition is not None:
                activity.logger.info("transition: %s", transition.reason)
                transitions.append(transition)
        return transitions

    async def _verdicts(
        self, inp: WatchInput, beats: list[ProbeResult]
    ) -> dict[str, ProcessVerdict]:
        """For each replica that missed its heartbeat: what process control says of it."""
        missed = [r for r, b in zip(inp.service.replicas, beats, strict=True) if not b.ok]
        if self._processes is None or not inp.supervisor_url or not missed:
            return {}
        grace = inp.service.probe.startup_grace_s
        found = await asyncio.gather(
            *(self._processes.verdict(inp.supervisor_url, r, grace) for r in missed)
        )
        return {r.name: v for r, v in zip(missed, found, strict=True)}

    async def _bounded_heartbeat(self, replica: Replica, timeout_ms: int) -> ProbeResult:
        """A heartbeat that cannot stall the tick, whatever a client library does on close."""
        budget = timeout_ms / 1000 + 0.5
        try:
            return await asyncio.wait_for(self._engine.heartbeat(replica, timeout_ms), budget)
        except TimeoutError:
            return ProbeResult(False, budget * 1000, f"no answer within {budget * 1000:.0f} ms")

    def _sync_once(
        self, service: Service, syncers: dict[str, SyncPoller], sync: dict[str, SyncStats]
    ) -> list[SyncEvent]:
        events = []
        for name, syncer in syncers.items():
            stats = sync[name]
            if (check := syncer.take_check()) is not None:
                stats.consistency = check
            if (sample := syncer.take_lag()) is None:
                continue
            event = observe_sync(
                stats,
                SyncSample(
                    lag_ms=sample.lag_ms,
                    primary_offset=sample.primary_offset,
                    replica_offset=sample.replica_offset,
                    link_up=sample.link_up,
                    error=sample.error,
                    primary_reachable=sample.primary_reachable,
                    link_down_since_s=sample.link_down_since_s,
                    replid=sample.replid,
                ),
                service.thresholds.sync_lag_ms,
                self._clock(),
            )
            if event is not None:
                activity.logger.info("sync: %s", event.reason)
                events.append(event)
        return events

    def _sync_pollers(self, inp: WatchInput) -> dict[str, SyncPoller]:
        """One lag poller per standby of a replicated-state service whose primary is known."""
        service = inp.service
        if self._state is None or not service.stateful or inp.primary is None:
            return {}
        primary = replica_endpoint(service, inp.primary)
        timeout_ms = min(service.probe.interval_ms * service.probe.health_every, 2000)
        return {
            r.name: SyncPoller(self._state, primary, replica_endpoint(service, r.name), timeout_ms)
            for r in service.replicas
            if r.name != inp.primary
        }

    def _pollers(self, service: Service) -> dict[str, _HealthPoller]:
        budget = service.probe.interval_ms * service.probe.health_every
        timeout_ms = min(max(budget, service.probe.timeout_ms), HEALTH_TIMEOUT_CAP_MS)
        return {r.name: _HealthPoller(self._engine, r, timeout_ms) for r in service.replicas}
