"""One service's watch, tick by tick: probes, the pure detector, replication samples.

Driven by ``watch_service`` (one activity per service) and by ``watch_group`` (one activity per
group of services); it only reads the world.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

from activities.probes.engine import ProbeEngine
from activities.probes.ticker import Tick
from activities.process_view import ProcessVerdict, ProcessView
from activities.state import StateReplicator
from activities.state_actions import replica_endpoint
from activities.sync_poller import SyncPoller
from activities.watch_metrics import NO_METRICS, WatchMetrics
from drc.catalog import Replica, Service
from drc.detector import Detector, Observation
from drc.model import ProbeResult, ReplicaState, ReplicaTrack, Transition
from drc.sync import SyncEvent, SyncSample, SyncStats
from drc.sync import observe as observe_sync
from drc.tilt import Clocks, quiet_period_s, tilt_reason

log = logging.getLogger("drc.watch")

HEALTH_TIMEOUT_CAP_MS = 5000
FAST_PROBES_PER_INTERVAL = 4
FAST_PROBE_MIN_S = 0.05
FAILED = ReplicaState.FAILED


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


class ServiceWatch:
    """The detector and the pollers of one service; ``tick`` runs one round of probes."""

    def __init__(
        self,
        service: Service,
        tracks: dict[str, ReplicaTrack],
        sync: dict[str, SyncStats],
        primary: str | None,
        supervisor_url: str | None,
        engine: ProbeEngine,
        state: StateReplicator | None,
        processes: ProcessView | None,
        clock: Callable[[], float],
        metrics: WatchMetrics = NO_METRICS,
    ) -> None:
        self.service, self.primary, self._supervisor_url = service, primary, supervisor_url
        self._engine, self._processes, self._clock = engine, processes, clock
        self._metrics = metrics.of_service(service.name)
        self.detector = Detector(service, tracks, now=clock())
        budget = service.probe.interval_ms * service.probe.health_every
        timeout_ms = min(max(budget, service.probe.timeout_ms), HEALTH_TIMEOUT_CAP_MS)
        self._pollers = {r.name: _HealthPoller(engine, r, timeout_ms) for r in service.replicas}
        self._syncers = self._sync_pollers(state)
        self.sync = {
            name: sync.get(name) or SyncStats(replica=name, primary=primary or "")
            for name in self._syncers
        }
        self.ticks = 0
        self.skipped_ticks = 0
        self.max_lateness_ms = 0.0
        self.tilt: str | None = None
        """Set while the watch distrusts itself (drc/tilt.py): it feeds the detector nothing."""
        self._tilt_until = 0.0
        self._answered: dict[str, float] = {}
        """Replica -> when (monotonic) it last answered a heartbeat, seen by this watch."""
        self._clocks: Clocks | None = None

    @property
    def tracks(self) -> dict[str, ReplicaTrack]:
        """The detector's memory of every replica."""
        return self.detector.tracks

    async def tick(self, tick: Tick) -> tuple[list[Transition], list[SyncEvent]]:
        """One round: heartbeats (and, every N ticks, health and lag); what changed.

        While a replica is failed, it is probed again at a quarter of the interval until the
        next tick is due (HAProxy's ``fastinter``): a restarted replica is seen back sooner.
        Only recovery is quickened: a failure still needs misses at the normal cadence.
        """
        if self._tilted(tick):
            self.ticks += 1
            self.skipped_ticks += tick.skipped
            return [], []
        if self.ticks % self.service.probe.health_every == 0:
            for poller in self._pollers.values():
                poller.start()
            for syncer in self._syncers.values():
                syncer.start()
        transitions = await self._probe_once(self.service.replicas)
        events = self._sync_once()
        self.ticks += 1
        self.skipped_ticks += tick.skipped
        self.max_lateness_ms = max(self.max_lateness_ms, tick.lateness_s * 1000)
        if not transitions and not events:
            transitions = await self._recovery_probes(tick)
        return transitions, events

    def _tilted(self, tick: Tick) -> bool:
        """Whether this tick must act on nothing: the watch stalled or the clock jumped lately."""
        interval = self.service.probe.interval_ms / 1000
        now = Clocks(self._clock(), time.monotonic())
        reason = tilt_reason(self._clocks, now, tick.lateness_s, interval)
        self._clocks = now
        if reason is not None:
            if self.tilt is None:
                log.warning("TILT %s: %s; acting on nothing", self.service.name, reason)
            self.tilt, self._tilt_until = reason, now.mono + quiet_period_s(interval)
        if self.tilt is not None and now.mono >= self._tilt_until:
            log.warning("TILT over for %s: the watch is back in time", self.service.name)
            self.tilt = None
        return self.tilt is not None

    async def _recovery_probes(self, tick: Tick) -> list[Transition]:
        interval = self.service.probe.interval_ms / 1000
        step = max(interval / FAST_PROBES_PER_INTERVAL, FAST_PROBE_MIN_S)
        due = tick.scheduled + interval  # the next tick (the ticker's clock is monotonic)
        while True:
            failed = [r for r in self.service.replicas if self.tracks[r.name].state is FAILED]
            if not failed or time.monotonic() + step >= due - step / 2:
                return []
            await asyncio.sleep(step)
            transitions = await self._probe_once(failed)
            if transitions:
                return transitions

    def close(self) -> None:
        """Drop every measurement in flight."""
        for poller in self._pollers.values():
            poller.cancel()
        for syncer in self._syncers.values():
            syncer.cancel()

    async def _probe_once(self, replicas: Sequence[Replica]) -> list[Transition]:
        service = self.service
        beats = await asyncio.gather(
            *(self._bounded_heartbeat(r, service.probe.timeout_ms) for r in replicas)
        )
        answered_at = time.monotonic()
        for replica, beat in zip(replicas, beats, strict=True):
            self._metrics.probed(replica.name, "heartbeat", beat)
            if beat.ok:
                self._answered[replica.name] = answered_at
        verdicts = await self._verdicts(replicas, beats)
        now = self._clock()
        transitions = []
        for replica, beat in zip(replicas, beats, strict=True):
            poller = self._pollers[replica.name]
            if not beat.ok:
                poller.cancel()  # a /health answer from a replica that misses beats is stale
            said = verdicts.get(replica.name, ProcessVerdict())
            health = poller.take()
            if health is not None:
                self._metrics.probed(replica.name, "health", health)
            obs = Observation(beat, health, said.starting, said.dead)
            transition = self.detector.observe(replica.name, obs, now)
            if transition is not None:
                transitions.append(transition)
        return transitions

    async def _verdicts(
        self, replicas: Sequence[Replica], beats: list[ProbeResult]
    ) -> dict[str, ProcessVerdict]:
        """For each replica that missed its heartbeat: what process control says of it."""
        missed = [r for r, b in zip(replicas, beats, strict=True) if not b.ok]
        if self._processes is None or not self._supervisor_url or not missed:
            return {}
        grace = self.service.probe.startup_grace_s
        url, mono = self._supervisor_url, time.monotonic()
        ago = {r.name: mono - at for r in missed if (at := self._answered.get(r.name)) is not None}
        found = await asyncio.gather(
            *(self._processes.verdict(url, r, grace, ago.get(r.name)) for r in missed)
        )
        return {r.name: v for r, v in zip(missed, found, strict=True)}

    async def _bounded_heartbeat(self, replica: Replica, timeout_ms: int) -> ProbeResult:
        """A heartbeat that cannot stall the tick, whatever a client library does on close."""
        budget = timeout_ms / 1000 + 0.5
        try:
            return await asyncio.wait_for(self._engine.heartbeat(replica, timeout_ms), budget)
        except TimeoutError:
            return ProbeResult(False, budget * 1000, f"no answer within {budget * 1000:.0f} ms")

    def _sync_once(self) -> list[SyncEvent]:
        events = []
        for name, syncer in self._syncers.items():
            stats = self.sync[name]
            if (check := syncer.take_check()) is not None:
                stats.consistency = check
            if (sample := syncer.take_lag()) is None:
                continue
            if sample.lag_ms is not None:
                self._metrics.lagged(name, sample.lag_ms)
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
                self.service.thresholds.sync_lag_ms,
                self._clock(),
            )
            if event is not None:
                events.append(event)
        return events

    def _sync_pollers(self, state: StateReplicator | None) -> dict[str, SyncPoller]:
        """One lag poller per standby of a replicated-state service whose primary is known."""
        service = self.service
        if state is None or not service.stateful or self.primary is None:
            return {}
        primary = replica_endpoint(service, self.primary)
        timeout_ms = min(service.probe.interval_ms * service.probe.health_every, 2000)
        return {
            r.name: SyncPoller(state, primary, replica_endpoint(service, r.name), timeout_ms)
            for r in service.replicas
            if r.name != self.primary
        }
