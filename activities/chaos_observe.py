"""What a chaos experiment reads: the experiment file, the steady state, and drc at work.

Every activity here only reads (files, HTTP front ends, monitor and fleet queries), so each is
trivially idempotent and safe to retry; ``chaos_watch`` heartbeats what it has seen, and a
retry re-derives the same detection from the monitors' decisions, which carry their times.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import httpx
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError

from activities.watch_group import group_progress
from drc.catalog import Catalog
from drc.chaos import (
    PrepareInput,
    ProbeOutcome,
    SteadyInput,
    SteadyProbe,
    SteadyState,
    WatchInput,
    WatchOutcome,
)
from drc.errors import ChaosError
from drc.fleet import FleetStatus
from drc.model import ReplicaState, ServiceState
from drc.names import (
    CHAOS_PREPARE,
    CHAOS_STEADY_STATE,
    CHAOS_WATCH,
    CHAOS_WORKFLOW,
    FLEET_ID,
    monitor_id,
)
from drc.status import MonitorStatus
from drc.sync import SyncStats
from runbooks.chaos import CHAOS_DIR, Prepared, experiment_path, load_experiment

POLL_S = 0.2
"""How often the watch and a settling steady state look again."""

RECOVERY_SAMPLES = 3
"""A sync-lag probe judging a recovery reads the latest this many lags taken since the watch
began looking for it. The hypothesis' own window (``samples``, 20 by default: 20 s at one
sample a second) would hold the standby's catch-up lag right after a re-attachment against it
for 20 s; a recovery is the trend now, the steady state is checked over the full window after.
"""


class ChaosObserveActivities:
    """Reads for the ChaosExperiment workflow; built once per worker."""

    def __init__(
        self, client: Client, http: httpx.AsyncClient, catalog: Catalog, folder: Path = CHAOS_DIR
    ) -> None:
        self._client, self._http, self._catalog, self._folder = client, http, catalog, folder

    @activity.defn(name=CHAOS_PREPARE)
    async def chaos_prepare(self, inp: PrepareInput) -> Prepared:
        """Load and validate the experiment, and read the monitors' primaries and health.

        A ``ChaosError`` (unknown experiment, invalid file, hostile target) is non-retryable
        and carries every located problem in its message: nothing was touched.
        """
        try:
            experiment = load_experiment(
                experiment_path(inp.experiment, self._folder), self._catalog
            )
        except ChaosError as exc:
            raise ApplicationError(str(exc), type="ChaosError", non_retryable=True) from None
        statuses = await self._statuses()
        return Prepared(
            experiment=experiment,
            catalog=self._catalog,
            primaries={n: s.primary for n, s in statuses.items() if s.primary},
            healthy={
                n: [r.name for r in s.replicas if r.state is ReplicaState.HEALTHY]
                for n, s in statuses.items()
            },
            others_running=await self._other_experiments(inp.run),
        )

    @activity.defn(name=CHAOS_STEADY_STATE)
    async def chaos_steady_state(self, inp: SteadyInput) -> SteadyState:
        """Check the probes once, or until they hold within ``within_s`` (heartbeating)."""
        deadline = time.time() + inp.within_s
        while True:
            state = await self._check(inp.probes)
            if state.ok or time.time() >= deadline:
                return state
            activity.heartbeat(state.failing())
            await asyncio.sleep(POLL_S)

    @activity.defn(name=CHAOS_WATCH)
    async def chaos_watch(self, inp: WatchInput) -> WatchOutcome:
        """Watch for the detection, the recovery and the safeguards until done or ``until_s``.

        Recovery is judged on what was measured since the watch began to look for it: a
        sync-lag probe takes the latest ``RECOVERY_SAMPLES`` lags taken since then, so a
        standby's catch-up right after the rollback is not held against it for ``samples``
        seconds (the steady state after the rollbacks still checks the full window).
        """
        outcome = WatchOutcome()
        marks: dict[str, int] | None = None  # lag samples measured per standby back then
        while time.time() < inp.since + inp.until_s:
            statuses = await self._statuses()
            breach = await self._breach(inp, statuses)
            if breach is not None:
                outcome.breach = breach
                return outcome
            if outcome.detected_at is None:
                _detect(inp, statuses, outcome)
            if outcome.detected_at is not None and inp.detect_only:
                return outcome
            if outcome.detected_at is not None and time.time() >= inp.recover_after:
                if marks is None:
                    marks = await self._sync_marks(inp.recovery, statuses)
                state = await self._check(inp.recovery, statuses, marks)
                if state.ok:
                    outcome.recovered_at = state.at
                    return outcome
                outcome.last = state.failing()
            activity.heartbeat(outcome.detected_by or "waiting for drc to detect")
            await asyncio.sleep(POLL_S)
        return outcome

    # --- reading -------------------------------------------------------------------------------

    async def _statuses(self) -> dict[str, MonitorStatus]:
        found: dict[str, MonitorStatus] = {}
        for service in self._catalog.services:
            handle = self._client.get_workflow_handle(monitor_id(service.name))
            try:
                found[service.name] = await handle.query("status", result_type=MonitorStatus)
            except RPCError:
                continue  # no monitor answers: that service is simply not seen
        return found

    async def _fleet(self) -> FleetStatus | None:
        try:
            handle = self._client.get_workflow_handle(FLEET_ID)
            found: FleetStatus = await handle.query("status", result_type=FleetStatus)
        except RPCError:
            return None
        return found

    async def _other_experiments(self, run: str) -> list[str]:
        query = f"WorkflowType = '{CHAOS_WORKFLOW}' AND ExecutionStatus = 'Running'"
        return [wf.id async for wf in self._client.list_workflows(query) if wf.id != run]

    async def _check(
        self,
        probes: list[SteadyProbe],
        statuses: dict[str, MonitorStatus] | None = None,
        marks: dict[str, int] | None = None,
    ) -> SteadyState:
        """One look at every probe.

        ``statuses``: the monitors' answers already read now; ``marks``: judge sync lag only
        on the samples measured after these counts (``_sync_marks``).
        """
        statuses = statuses if statuses is not None else await self._statuses()
        fleet = await self._fleet() if any(p.type == "no-incident" for p in probes) else None
        outcomes = [await self._probe(p, statuses, fleet, marks) for p in probes]
        return SteadyState(all(o.ok for o in outcomes), outcomes, time.time())

    async def _sync_marks(
        self, probes: list[SteadyProbe], statuses: dict[str, MonitorStatus]
    ) -> dict[str, int]:
        """How many lag samples each standby of a sync-lag probe's service has had so far."""
        marks: dict[str, int] = {}
        for probe in probes:
            status = statuses.get(probe.service or "")
            if probe.type == "sync-lag" and status is not None:
                for s in await self._live_sync(status):
                    marks[sync_key(status.name, s.replica)] = s.measured
        return marks

    async def _probe(
        self,
        probe: SteadyProbe,
        statuses: dict[str, MonitorStatus],
        fleet: FleetStatus | None,
        marks: dict[str, int] | None = None,
    ) -> ProbeOutcome:
        if probe.type == "http":
            return await self._http_probe(probe)
        if probe.type == "no-incident":
            return _no_incident(probe, fleet)
        status = statuses.get(probe.service or "")
        if status is None:
            return ProbeOutcome(probe.name, False, f"no monitor of {probe.service} answers")
        if probe.type == "service-healthy":
            ok = status.state is ServiceState.HEALTHY
            return ProbeOutcome(probe.name, ok, f"{status.name} is {status.state.value}")
        return judge_sync_lag(probe, status, await self._live_sync(status), marks)

    async def _live_sync(self, status: MonitorStatus) -> list[SyncStats]:
        """The replication stats the watch measures now (the monitor keeps older ones)."""
        progress = (
            await group_progress(self._client, status.watch_group) if status.watch_group else None
        )
        member = progress.members.get(status.name) if progress is not None else None
        return list(member.sync.values()) if member is not None and member.sync else status.sync

    async def _http_probe(self, probe: SteadyProbe) -> ProbeOutcome:
        assert probe.url is not None
        said = f"{probe.method} {probe.url}"
        try:
            answer = await self._http.request(
                probe.method,
                probe.url,
                content=probe.body,
                headers={"content-type": "application/json"} if probe.body else None,
                timeout=2.0,
            )
        except httpx.HTTPError as exc:
            return ProbeOutcome(probe.name, False, f"{said}: {exc!r}")
        ok = probe.status_min <= answer.status_code <= probe.status_max
        return ProbeOutcome(probe.name, ok, f"{said}: {answer.status_code}")

    async def _breach(self, inp: WatchInput, statuses: dict[str, MonitorStatus]) -> str | None:
        for name, status in statuses.items():
            if name in inp.services:
                continue
            failed = [r.name for r in status.replicas if r.state is ReplicaState.FAILED]
            if failed:
                return f"{name} failed too ({', '.join(failed)}): beyond the blast radius"
        fleet = await self._fleet()
        for incident in fleet.incidents if fleet is not None else []:
            if incident.service not in inp.services:
                return f"an incident opened on {incident.service}: beyond the blast radius"
        return None


def _detect(inp: WatchInput, statuses: dict[str, MonitorStatus], outcome: WatchOutcome) -> None:
    seen = [
        d
        for name in inp.services
        for d in (statuses[name].decisions if name in statuses else [])
        if d.replica in inp.replicas and d.at >= inp.since
    ]
    if seen:
        first = min(seen, key=lambda d: d.at)
        outcome.detected_at, outcome.detected_by = first.at, f"{first.action}: {first.reason}"


def _no_incident(probe: SteadyProbe, fleet: FleetStatus | None) -> ProbeOutcome:
    if fleet is None:
        return ProbeOutcome(probe.name, False, "the fleet does not answer: incidents unknown")
    if fleet.incidents:
        open_ = ", ".join(f"{i.incident_id or i.service}" for i in fleet.incidents)
        return ProbeOutcome(probe.name, False, f"incidents open: {open_}")
    return ProbeOutcome(probe.name, True, "no incident open")


def sync_key(service: str, replica: str) -> str:
    """The key of a standby in the watch's sample marks."""
    return f"{service}/{replica}"


def judge_sync_lag(
    probe: SteadyProbe,
    status: MonitorStatus,
    sync: list[SyncStats],
    marks: dict[str, int] | None = None,
) -> ProbeOutcome:
    """The p99 of the latest ``probe.samples`` lags of every standby, all of them in sync.

    With ``marks`` (a recovery) only the latest ``RECOVERY_SAMPLES`` measured after the mark
    count, at least one per standby: what happens now, not the fault's own samples.
    """
    if not sync:
        return ProbeOutcome(probe.name, False, f"{status.name} reports no replication")
    recent = [replace(s, lags_ms=_window(probe, status.name, s, marks)) for s in sync]
    unsampled = [s.replica for s in recent if marks is not None and not s.lags_ms]
    worst = max((s.percentile(99) or 0.0) for s in recent)
    bad = [s.replica for s in sync if s.state != "in_sync"]
    limit = probe.below_ms if probe.below_ms is not None else float("inf")
    ok = not bad and not unsampled and worst < limit
    since = " since the recovery watch began" if marks is not None else ""
    window = min(probe.samples, RECOVERY_SAMPLES) if marks is not None else probe.samples
    detail = f"lag p99 {worst:.1f} ms over the last {window} samples{since}"
    detail += f" (limit {limit:g} ms)"
    if bad:
        detail += f"; not in sync: {', '.join(bad)}"
    if unsampled:
        detail += f"; no lag measured since: {', '.join(unsampled)}"
    return ProbeOutcome(probe.name, ok, detail)


def _window(
    probe: SteadyProbe, service: str, stats: SyncStats, marks: dict[str, int] | None
) -> list[float]:
    """The lags ``probe`` judges: the latest ``samples``; for a recovery, see ``judge_sync_lag``."""
    count = probe.samples
    if marks is not None:
        since = stats.measured - marks.get(sync_key(service, stats.replica), 0)
        count = min(count, RECOVERY_SAMPLES, since)
    return stats.lags_ms[-count:] if count > 0 else []
