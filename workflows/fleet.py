"""Fleet: one per deployment; every monitor reports to it, and it judges across services.

Monitors signal ``report`` whenever their service's availability or failures change. The fleet
then works out (``drc.fleet``, pure) which services are held by a root cause (a down
dependency: their automatic repairs wait while its repair holds the lease, and they recover by
themselves after) and the storm brake's mode (``normal``; ``paced`` at system_failure, repairs
by token; ``frozen`` when every region looks down at once), and signals each monitor whose
directive changed. While paced, monitors ask for a token (``request_token``) before an
automatic repair, and the fleet grants them from its bucket as it refills. Operator repairs are
never held or paced.

A region whose every replica failed (while another region answers) is evacuated by a child
``evacuate-region/<region>`` (workflows/evacuation.py, patch ``region-evacuation``); until it
ends, directives name the region so that monitors hold their automatic repairs of replicas
there. The fleet follows the evacuation to its end however it ends, across continue-as-new.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from drc.evacuation import EvacuationInput, dependency_levels, evacuees
    from drc.fleet import (
        NORMAL_REASON,
        BrakeMode,
        FleetConfig,
        FleetDirective,
        FleetNote,
        FleetStatus,
        Health,
        OpenIncident,
        ServiceHealthReport,
        TokenBucket,
        TokenGrant,
        TokenRequest,
        brake,
        failure_rate,
        holds,
        regions_down,
        system_health,
    )
    from drc.incident import FailureRecord, IncidentUpdate
    from drc.names import (
        EVACUATION_WORKFLOW,
        FLEET_WORKFLOW,
        RECORD_INCIDENT,
        evacuation_id,
        monitor_id,
    )
    from drc.repair import RepairEnd, RepairRef
from workflows.child_ends import follow_to_end
from workflows.incident_outbox import RECORD_RETRY
from workflows.telemetry import log_decision

PATCH_EVACUATION = "region-evacuation"

MAX_NOTES = 50
MAX_HISTORY = 5000


@dataclass
class FleetState:
    """What the fleet carries across continue-as-new."""

    reports: dict[str, ServiceHealthReport] = field(default_factory=dict)
    sent: dict[str, FleetDirective] = field(default_factory=dict)
    mode: BrakeMode = "normal"
    reason: str = NORMAL_REASON
    bucket: TokenBucket | None = None
    queue: list[TokenRequest] = field(default_factory=list)
    notes: list[FleetNote] = field(default_factory=list)
    evacuations: dict[str, RepairRef] = field(default_factory=dict)
    """Region -> its running evacuation."""
    regions_down: list[str] = field(default_factory=list)
    """Regions judged down at the last judgement (an evacuation starts on the change only)."""


@dataclass
class FleetInput:
    """The fleet's configuration (replaced by ``reconfigure``) and carried state."""

    config: FleetConfig = field(default_factory=FleetConfig)
    state: FleetState = field(default_factory=FleetState)


@workflow.defn(name=FLEET_WORKFLOW)
class FleetWorkflow:
    """See the module docstring."""

    @workflow.init
    def __init__(self, inp: FleetInput) -> None:
        self._cfg, self._st = inp.config, inp.state
        self._dirty = True
        self._following: set[str] = set()

    @workflow.run
    async def run(self, inp: FleetInput) -> None:
        """Judge on every report, grant tokens as the bucket refills; forever."""
        for ref in self._st.evacuations.values():
            self._follow(ref)
        while not self._time_for_new_run():
            try:
                await workflow.wait_condition(lambda: self._dirty, timeout=self._next_token())
            except TimeoutError:
                pass  # a token accrued
            self._dirty = False
            await self._judge()
            await self._grant()
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(FleetInput(self._cfg, self._st))

    def _time_for_new_run(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested() or info.get_current_history_length() > MAX_HISTORY
        )

    # --- judgement ------------------------------------------------------------------------------

    def _health(self) -> dict[str, Health]:
        return {
            name: (self._st.reports[name].health if name in self._st.reports else "up")
            for name in self._cfg.graph
        }

    async def _judge(self) -> None:
        st, cfg, now = self._st, self._cfg, workflow.now().timestamp()
        health = self._health()
        mode, reason = brake(health, st.reports, cfg.graph, cfg.system_failure_share)
        if (mode, reason) != (st.mode, st.reason):
            if mode != st.mode and mode != "normal":
                self._record_failure(mode, reason, now)
            st.mode, st.reason = mode, reason
            self._note("brake", f"{mode}: {reason}")
            if mode == "paced" and st.bucket is None:
                st.bucket = TokenBucket(cfg.bucket_per_minute, 1.0, now)
        if workflow.patched(PATCH_EVACUATION):
            await self._judge_regions(now)
        held = holds(health, cfg.graph)
        for service in cfg.graph:
            root = held.get(service)
            root_report = st.reports.get(root) if root else None
            directive = FleetDirective(
                held_by=root,
                root_incident=root_report.incident_id if root_report else None,
                mode=mode,
                reason=reason,
                evacuating=sorted(st.evacuations),
            )
            # A monitor starts unheld and unbraked: that needs no signal (1,000 at boot).
            before = st.sent.get(service, FleetDirective(mode="normal", reason=NORMAL_REASON))
            if before == directive:
                continue
            if root is not None and before.held_by != root:
                why = f"{service} waits for {root}: {root} is its root cause"
                self._note("hold", why, service=service, incident=directive.root_incident)
            elif root is None and before.held_by is not None:
                why = f"{service} is no longer held: {before.held_by} is back"
                self._note("release", why, service=service)
            if await self._signal(self._monitor_of(service), "fleet_directive", directive):
                st.sent[service] = directive

    # --- regions --------------------------------------------------------------------------------

    async def _judge_regions(self, now: float) -> None:
        """Start an evacuation for each region newly down (edge-triggered: once per loss)."""
        st, cfg = self._st, self._cfg
        down = regions_down(st.reports, cfg.graph)
        for region in down:
            if region in st.regions_down or region in st.evacuations:
                continue
            why = f"region_down: every replica in {region} failed while other regions answer"
            self._record_failure_of("region_down", why, now, region)
            if not cfg.evacuate:
                self._note("region-down", f"{why}; evacuation is off in the catalog", region=region)
                continue
            await self._start_evacuation(region, why)
        for region in st.regions_down:
            if region not in down:
                self._note("region-back", f"{region} answers again", region=region)
        st.regions_down = down

    async def _start_evacuation(self, region: str, why: str) -> None:
        st, cfg = self._st, self._cfg
        inp = EvacuationInput(
            region,
            dependency_levels(evacuees(region, cfg.graph), cfg.graph),
            cfg.return_check_s,
            why,
        )
        wid = evacuation_id(region)
        order = " → ".join("+".join(e.service for e in level) for level in inp.levels)
        try:
            handle = await workflow.start_child_workflow(
                EVACUATION_WORKFLOW,
                inp,
                id=wid,
                parent_close_policy=ParentClosePolicy.ABANDON,
                static_summary=f"evacuate {region}: {order}",
                static_details=why,
            )
            ref = RepairRef(wid, handle.first_execution_run_id)
        except WorkflowAlreadyStartedError:  # an evacuation of this region runs: follow it
            ref = RepairRef(wid, None)
        st.evacuations[region] = ref
        self._note(
            "evacuate",
            f"{why}: evacuating {region} ({wid}), dependencies first: {order}",
            region=region,
        )
        self._follow(ref)

    def _follow(self, ref: RepairRef) -> None:
        if ref.workflow_id not in self._following:
            self._following.add(ref.workflow_id)
            follow_to_end(ref, lambda end: self._evacuation_ended(ref, end))

    def _evacuation_ended(self, ref: RepairRef, end: RepairEnd) -> None:
        self._following.discard(ref.workflow_id)
        region = next((r for r, e in self._st.evacuations.items() if e == ref), None)
        if region is None:
            return
        del self._st.evacuations[region]
        if end.status == "completed":
            self._note(
                "evacuated", f"{region} returned: {ref.workflow_id} re-protected it", region=region
            )
        else:
            self._note(
                "evacuated",
                f"{ref.workflow_id} ended {end.status} ({end.message}): automatic repairs "
                f"of the replicas in {region} are no longer held",
                region=region,
            )
        self._dirty = True

    async def _grant(self) -> None:
        st, now = self._st, workflow.now().timestamp()
        while st.queue:
            request = st.queue[0]
            if st.mode == "paced" and st.bucket is not None and not st.bucket.take(now):
                return
            st.queue.pop(0)
            grant = TokenGrant(request.replica, request.seq)
            await self._signal(
                request.monitor or monitor_id(request.service), "repair_token", grant
            )
            self._note(
                "token",
                f"{request.service}/{request.replica} may repair now",
                service=request.service,
                replica=request.replica,
            )

    def _next_token(self) -> timedelta | None:
        st = self._st
        if not st.queue or st.mode != "paced" or st.bucket is None:
            return None
        wait = st.bucket.next_token_in(workflow.now().timestamp())
        return timedelta(seconds=max(wait, 0.05))

    def _monitor_of(self, service: str) -> str:
        report = self._st.reports.get(service)
        return (report.monitor if report is not None else "") or monitor_id(service)

    async def _signal(self, monitor: str, name: str, arg: object) -> bool:
        try:
            await workflow.get_external_workflow_handle(monitor).signal(name, arg)
        except ApplicationError as err:  # that monitor is not running (retired, not yet up)
            workflow.logger.info("fleet: cannot signal %s to %s: %s", name, monitor, err)
            return False
        return True

    def _record_failure(self, mode: BrakeMode, reason: str, now: float) -> None:
        """A system failure (or drc's blindness) goes on the failures list, like any failure."""
        kind = "system_failure" if mode == "paced" else "all_regions_down"
        self._record_failure_of(kind, reason, now)

    def _record_failure_of(
        self, kind: str, reason: str, now: float, subject: str | None = None
    ) -> None:
        failure = FailureRecord(
            f"fleet/{subject or '-'}/{kind}/{int(now * 1000)}",
            "fleet",
            None,
            kind,
            "critical",
            reason,
            now,
        )
        workflow.start_activity(
            RECORD_INCIDENT,
            IncidentUpdate(None, failures=[failure]),
            start_to_close_timeout=timedelta(seconds=30),
            schedule_to_close_timeout=timedelta(hours=1),
            retry_policy=RECORD_RETRY,
            summary=f"record {kind}",
        )

    def _note(self, action: str, reason: str, **about: Any) -> None:
        """Keep a decision in the status and log it; ``about``: service, incident, region..."""
        note = FleetNote(workflow.now().timestamp(), action, reason)
        self._st.notes = [*self._st.notes[-(MAX_NOTES - 1) :], note]
        mode = self._st.mode
        log_decision(
            "fleet %s: %s", action, reason, action=action, reason=reason, mode=mode, **about
        )

    # --- messages -------------------------------------------------------------------------------

    @workflow.signal
    def report(self, report: ServiceHealthReport) -> None:
        """A monitor's word on its service (the newest wins)."""
        known = self._st.reports.get(report.service)
        if known is None or report.at >= known.at:
            self._st.reports[report.service] = report
            self._dirty = True

    @workflow.signal
    def request_token(self, request: TokenRequest) -> None:
        """Queue a paced automatic repair (a repeated request is queued once)."""
        if all((r.service, r.seq) != (request.service, request.seq) for r in self._st.queue):
            self._st.queue.append(request)
            self._dirty = True

    @workflow.signal
    def reconfigure(self, config: FleetConfig) -> None:
        """A changed catalog: services, dependencies, regions, brake settings."""
        self._cfg = config
        self._st.reports = {k: v for k, v in self._st.reports.items() if k in config.graph}
        self._st.sent = {k: v for k, v in self._st.sent.items() if k in config.graph}
        if self._st.bucket is not None:
            self._st.bucket.per_minute = config.bucket_per_minute
        self._dirty = True

    @workflow.query
    def status(self) -> FleetStatus:
        """System health, failure rate, open incidents with root causes, the brake."""
        health = self._health()
        held = holds(health, self._cfg.graph)
        incidents = [
            OpenIncident(
                service=name,
                incident_id=report.incident_id,
                root_cause=held.get(name, name),
                held=sorted(s for s, root in held.items() if root == name),
            )
            for name, report in sorted(self._st.reports.items())
            if report.incident_id
        ]
        bucket = self._st.bucket
        return FleetStatus(
            system_health=system_health(health, self._cfg.system_failure_share),
            failure_rate=failure_rate(health),
            services=len(health),
            down=sorted(s for s, h in health.items() if h == "down"),
            mode=self._st.mode,
            brake_reason=self._st.reason,
            tokens=bucket.tokens if bucket is not None and self._st.mode == "paced" else None,
            waiting=[f"{r.service}/{r.replica}" for r in self._st.queue],
            incidents=incidents,
            notes=list(self._st.notes),
            evacuations={r: e.workflow_id for r, e in sorted(self._st.evacuations.items())},
            health=dict(sorted(health.items())),
            repairing=sorted(n for n, r in self._st.reports.items() if r.repairing),
            primaries={n: r.primary for n, r in sorted(self._st.reports.items()) if r.primary},
        )
