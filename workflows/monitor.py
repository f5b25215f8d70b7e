"""ServiceMonitor: one per catalog service, forever (design notes §1-§3).

It keeps one ``watch_service`` activity running, applies the transitions it returns, decides on
repairs (restart, or refuse with a reason: crash loop, flapping, no process control) and keeps
a queryable status. Operators act through updates with validators. Its history holds only
transitions and decisions, and continue-as-new keeps it bounded forever.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    WorkflowAlreadyStartedError,
)
from temporalio.workflow import ActivityHandle, ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.watch import WatchActivities
    from drc.catalog import Redundancy, Service
    from drc.detector import is_suspect, service_state
    from drc.model import (
        Decision,
        FailoverRequest,
        MonitorStatus,
        PauseRequest,
        ReplicaRepair,
        ReplicaState,
        ReplicaStatus,
        ReplicaTrack,
        RestartInput,
        RestartRequest,
        RestartResult,
        RunningRunbook,
        ServiceState,
        Transition,
        WatchInput,
        WatchResult,
    )
    from drc.names import SA_INCIDENT, SA_KIND, SA_SERVICE, SA_SEVERITY, restart_id, runbook_id
    from drc.sync import SyncStats
    from runbooks.runbook import Runbook
    from workflows.escalation import choose_standby
    from workflows.restart import RestartReplicaWorkflow
    from workflows.runbook import RunbookInput, RunbookResult, RunbookWorkflow

WATCH_HEARTBEAT_TIMEOUT = timedelta(seconds=5)
WATCH_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=5)
)
MAX_DECISIONS = 50
MAX_HISTORY_BEFORE_NEW_RUN = 5000


@dataclass
class MonitorInput:
    """The monitor's whole state: the service plus everything carried across continue-as-new."""

    service: Service
    supervisor_url: str
    tracks: dict[str, ReplicaTrack] = field(default_factory=dict)
    repairs: dict[str, ReplicaRepair] = field(default_factory=dict)
    paused: bool = False
    decisions: list[Decision] = field(default_factory=list)
    last_transition: Transition | None = None
    watch_max_duration_s: float = 1800.0
    search_attributes: bool = True
    max_history: int = MAX_HISTORY_BEFORE_NEW_RUN
    primary: str | None = None
    runbooks: dict[str, Runbook] = field(default_factory=dict)
    allowed_commands: list[str] = field(default_factory=list)
    running: dict[str, RunningRunbook] = field(default_factory=dict)
    failover_failures: list[float] = field(default_factory=list)
    sync: dict[str, SyncStats] = field(default_factory=dict)


@dataclass
class _Due:
    """A decision to revisit at a time: a restart retry or a post-restart check."""

    at: float
    replica: str


@workflow.defn(name="ServiceMonitor")
class ServiceMonitorWorkflow:
    """Watches one service and repairs what it can; see the module docstring."""

    @workflow.init
    def __init__(self, inp: MonitorInput) -> None:
        # State exists before run() starts: signal-with-start delivers `reconfigure` first.
        self._s = inp
        if inp.primary is None:
            inp.primary = inp.service.primary
        self._due: list[_Due] = []
        self._interrupt = False
        self._rescheduled = False  # a due item was added: recompute the wait's timeout
        self._new_service: Service | None = None

    @workflow.run
    async def run(self, inp: MonitorInput) -> None:
        """Watch and repair until the history asks for a new run, then continue as new."""
        for replica in inp.service.replicas:
            inp.repairs.setdefault(replica.name, ReplicaRepair())
        for name, repair in inp.repairs.items():
            if repair.restarting:  # a restart outlived the last run: it will signal us
                continue
            if inp.tracks.get(name) and inp.tracks[name].state is ReplicaState.FAILED:
                self._due.append(_Due(workflow.now().timestamp(), name))
        while not self._time_for_new_run():
            if self._s.paused:
                await workflow.wait_condition(lambda: not self._s.paused or self._interrupt)
                self._apply_reconfigure()
                continue
            await self._watch_round()
        await workflow.wait_condition(workflow.all_handlers_finished)
        workflow.continue_as_new(self._s)

    # --- watching -------------------------------------------------------------------------------

    async def _watch_round(self) -> None:
        watch = workflow.start_activity_method(
            WatchActivities.watch_service,
            WatchInput(
                self._s.service,
                self._s.tracks,
                self._s.watch_max_duration_s,
                primary=self._s.primary,
                sync=self._s.sync,
            ),
            start_to_close_timeout=timedelta(seconds=self._s.watch_max_duration_s + 120),
            heartbeat_timeout=WATCH_HEARTBEAT_TIMEOUT,
            retry_policy=WATCH_RETRY,
        )
        while not watch.done():
            try:
                await workflow.wait_condition(
                    lambda: (
                        watch.done()
                        or self._interrupt
                        or self._rescheduled
                        or self._due_now()
                        or self._time_for_new_run()
                    ),
                    timeout=self._until_next_due(),
                )
            except TimeoutError:
                pass  # a due decision's time came
            self._rescheduled = False
            await self._run_due()
            if (self._interrupt or self._time_for_new_run()) and not watch.done():
                await self._stop(watch)
                self._apply_reconfigure()
                return
        try:
            result = watch.result()
        except ActivityError as err:  # only a non-retryable failure ends a watch this way
            self._decide(None, "watch-failed", f"the watch ended with an error: {err.cause}")
            await workflow.sleep(timedelta(seconds=1))
        else:
            await self._apply(result)
        self._apply_reconfigure()

    @staticmethod
    async def _stop(watch: ActivityHandle[WatchResult]) -> None:
        watch.cancel()
        try:
            await watch
        except (ActivityError, CancelledError):
            pass  # cancelled on purpose: pause or reconfigure

    async def _apply(self, result: WatchResult) -> None:
        self._s.tracks = result.tracks
        self._s.sync = result.sync
        for event in result.sync_events:
            self._decide(event.replica, event.state.replace("_", "-"), event.reason, at=event.at)
        for transition in result.transitions:
            self._s.last_transition = transition
            self._decide(transition.replica, "transition", transition.reason, at=transition.at)
            if transition.new is ReplicaState.FAILED:
                await self._on_failed(transition.replica, transition.reason, transition.flapping)
            elif transition.new in (ReplicaState.HEALTHY, ReplicaState.DEGRADED):
                self._on_recovered(transition.replica)

    def _apply_reconfigure(self) -> None:
        if self._new_service is not None:
            old, self._s.service, self._new_service = self._s.service, self._new_service, None
            names = {r.name for r in self._s.service.replicas}
            self._s.tracks = {n: t for n, t in self._s.tracks.items() if n in names}
            for name in names:
                self._s.repairs.setdefault(name, ReplicaRepair())
            self._decide(None, "reconfigured", f"catalog entry of {old.name} changed")
        self._interrupt = False

    # --- repair decisions ---------------------------------------------------------------------

    async def _on_failed(self, replica: str, why: str, flapping: bool = False) -> None:
        repair = self._s.repairs[replica]
        policy = self._s.service.restart
        spec = self._s.service.replica(replica)
        if repair.restarting or repair.crash_looping or self._owned_by_runbook(replica):
            return
        if not flapping and self._fails_over_first(replica):
            if await self._failover(f"{replica} failed: {why}", wanted=None):
                return
        if not flapping:
            await self._drain(replica, why)
        if spec is None or spec.process is None:
            self._decide(replica, "no-action", f"{replica} has no process control: not restarting")
            return
        if not policy.enabled:
            self._decide(replica, "no-action", f"restart is disabled for {self._s.service.name}")
            return
        if flapping:
            self._decide(
                replica,
                "frozen",
                f"{replica} is flapping: automatic repair frozen, an operator must look",
            )
            return
        now = workflow.now().timestamp()
        repair.restarts = [t for t in repair.restarts if now - t < policy.crash_loop_window_s]
        if len(repair.restarts) >= policy.crash_loop_max:
            repair.crash_looping = True
            repair.note = (
                f"{replica} failed again after {len(repair.restarts)} restarts within "
                f"{policy.crash_loop_window_s:g} s: crash-looping, not restarting again ({why})"
            )
            self._decide(replica, "crash-looping", repair.note)
            if replica == self._s.primary and self._may_fail_over():
                await self._failover(f"{replica} is crash-looping: {why}", wanted=None)
            return
        await self._start_restart(replica, f"{replica} failed: {why}", severity="high")

    def _may_fail_over(self) -> bool:
        """Failover is configured and did not fail within the crash-loop window."""
        service = self._s.service
        if service.redundancy is not Redundancy.ACTIVE_STANDBY or not service.failover.enabled:
            return False
        now = workflow.now().timestamp()
        window = service.restart.crash_loop_window_s
        self._s.failover_failures = [t for t in self._s.failover_failures if now - t < window]
        has_runbook = self._runbook_name("failover") in self._s.runbooks
        return has_runbook and not self._s.failover_failures

    def _fails_over_first(self, replica: str) -> bool:
        first = self._s.service.failover.first == "failover"
        return replica == self._s.primary and first and self._may_fail_over()

    def _runbook_name(self, kind: str) -> str:
        """``failover``/``reprotect``, or their ``-state`` forms for replicated state."""
        return f"{kind}-state" if self._s.service.stateful else kind

    def _failover_id(self) -> str:
        return runbook_id(self._runbook_name("failover"), self._s.service.name)

    def _reprotecting(self) -> str | None:
        """Why a failover must wait: the last one's old primary is still being re-protected."""
        name = self._runbook_name("reprotect")
        running = self._s.running.get(runbook_id(name, self._s.service.name))
        if running is None:
            return None
        return f"{running.params.get('old_primary')} is still being re-protected"

    def _owned_by_runbook(self, replica: str) -> bool:
        """A failover or re-protection is working on this replica: it must not be restarted."""
        return any(
            replica in r.params.values() and r.runbook.startswith(("failover", "reprotect"))
            for r in self._s.running.values()
        )

    async def _failover(
        self, why: str, wanted: str | None, operator: bool = False, force: bool = False
    ) -> str | None:
        """Start (or attach to) ``failover/<service>``; its id, or None when none is possible."""
        running = self._failover_id()
        if running in self._s.running:
            return running
        if (busy := self._reprotecting()) is not None:
            self._decide(self._s.primary, "no-failover", f"cannot fail over: {busy} ({why})")
            return None
        sync = None if force else self._s.sync
        target, because = choose_standby(
            self._s.service, self._s.primary, self._s.tracks, wanted, sync
        )
        if target is None:
            self._decide(self._s.primary, "no-failover", f"cannot fail over: {because} ({why})")
            return None
        old = self._s.primary or ""
        trigger = f"failing over {self._s.service.name} from {old} to {target}: {why}; {because}"
        params = {"from_replica": old, "to_replica": target}
        runbook = "failover"
        if self._s.service.stateful:
            runbook = "failover-state"
            lag = self._s.service.failover.max_lag_on_failover_ms
            params["max_lag_ms"] = "-1" if force else f"{lag:g}"
            if force:
                trigger += "; FORCED: the replica is promoted even if it has not caught up"
        severity = "operator" if operator else "critical"
        return await self._start_runbook(runbook, params, trigger, severity)

    async def _drain(self, replica: str, why: str) -> None:
        """Take a failed active-active replica out of rotation until it is healthy again."""
        service = self._s.service
        if service.redundancy is not Redundancy.ACTIVE_ACTIVE or service.frontend is None:
            return
        if "drain" not in self._s.runbooks:
            return
        trigger = f"draining {replica} of {service.name}: {replica} failed: {why}"
        await self._start_runbook("drain", {"replica": replica}, trigger, "high")

    async def _start_runbook(
        self, name: str, params: dict[str, str], trigger: str, severity: str
    ) -> str:
        """Start runbook ``name`` as ``<name>/<service>``, or attach to the one running."""
        wid = runbook_id(name, self._s.service.name)
        if wid in self._s.running:
            return wid
        self._s.running[wid] = RunningRunbook(name, params, trigger)  # before any await
        self._decide(params.get("replica") or params.get("to_replica"), name, trigger)
        try:
            child = await workflow.start_child_workflow(
                RunbookWorkflow.run,
                RunbookInput(
                    runbook=self._s.runbooks[name],
                    params=params,
                    service=self._s.service,
                    supervisor_url=self._s.supervisor_url,
                    allowed_commands=list(self._s.allowed_commands),
                    trigger=trigger,
                    monitor_workflow_id=workflow.info().workflow_id,
                ),
                id=wid,
                parent_close_policy=ParentClosePolicy.ABANDON,
                search_attributes=self._attributes(name, params, severity),
                static_summary=trigger[:200],
            )
        except WorkflowAlreadyStartedError:
            return wid  # started by someone else: that run is the one repair of this kind
        child.add_done_callback(lambda done: done.exception())
        return wid

    async def _start_restart(self, replica: str, reason: str, severity: str) -> str:
        service = self._s.service
        spec = service.replica(replica)
        assert spec is not None
        repair = self._s.repairs[replica]
        repair.restarting = True  # before any await: one restart per replica at a time
        repair.restarts.append(workflow.now().timestamp())
        wid = restart_id(service.name, replica)
        self._decide(replica, "restart", f"restarting {replica}: {reason}")
        child = await workflow.start_child_workflow(
            RestartReplicaWorkflow.run,
            RestartInput(
                service=service.name,
                replica=spec,
                supervisor_url=self._s.supervisor_url,
                health_timeout_s=service.restart.health_timeout_s,
                reason=reason,
                monitor_workflow_id=workflow.info().workflow_id,
            ),
            id=wid,
            parent_close_policy=ParentClosePolicy.ABANDON,
            search_attributes=self._attributes("restart", {"replica": replica}, severity),
            static_summary=reason[:200],
        )
        # The outcome arrives as the `restart_finished` signal, which survives continue-as-new;
        # the abandoned child's own result is read here only so it is never reported unread.
        child.add_done_callback(lambda done: done.exception())
        return wid

    def _attributes(
        self, kind: str, params: dict[str, str], severity: str
    ) -> TypedSearchAttributes | None:
        if not self._s.search_attributes:
            return None
        subject = params.get("replica") or params.get("from_replica") or kind
        incident = f"{self._s.service.name}/{subject}/{int(workflow.now().timestamp())}"
        return TypedSearchAttributes(
            [
                SearchAttributePair(SA_SERVICE, self._s.service.name),
                SearchAttributePair(SA_KIND, kind),
                SearchAttributePair(SA_SEVERITY, severity),
                SearchAttributePair(SA_INCIDENT, incident),
            ]
        )

    def _on_recovered(self, replica: str) -> None:
        repair = self._s.repairs[replica]
        if repair.crash_looping:
            self._decide(replica, "recovered", f"{replica} is serving again: crash loop cleared")
        repair.crash_looping = False
        repair.note = None

    async def _run_due(self) -> None:
        now = workflow.now().timestamp()
        due, self._due = [d for d in self._due if d.at <= now], [d for d in self._due if d.at > now]
        for item in due:
            track = self._s.tracks.get(item.replica)
            if track is not None and track.state is ReplicaState.FAILED:
                await self._on_failed(item.replica, track.last_error or "still failed")

    def _due_now(self) -> bool:
        now = workflow.now().timestamp()
        return any(d.at <= now for d in self._due)

    def _until_next_due(self) -> timedelta | None:
        if not self._due:
            return None
        wait = min(d.at for d in self._due) - workflow.now().timestamp()
        return timedelta(seconds=max(wait, 0.001))

    def _decide(
        self, replica: str | None, action: str, reason: str, at: float | None = None
    ) -> None:
        """Record a decision; a transition keeps the detector's time, when it was seen."""
        workflow.logger.info("%s: %s", action, reason)
        decision = Decision(at or workflow.now().timestamp(), replica, action, reason)
        self._s.decisions = [*self._s.decisions[-(MAX_DECISIONS - 1) :], decision]

    def _time_for_new_run(self) -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or (
            info.get_current_history_length() > self._s.max_history
        )

    # --- messages -----------------------------------------------------------------------------

    @workflow.signal
    def restart_finished(self, result: RestartResult) -> None:
        """A restart ended; a failed one is retried after a backoff, or ends in a crash loop."""
        repair = self._s.repairs.setdefault(result.replica, ReplicaRepair())
        repair.restarting = False
        self._decide(result.replica, "restarted" if result.ok else "restart-failed", result.reason)
        probe = self._s.service.probe
        if result.ok:
            # If no healthy transition arrives by then, the replica failed again in between.
            settle = (probe.recovery_threshold + probe.failure_threshold + 2) * probe.interval_ms
            self._due.append(_Due(workflow.now().timestamp() + settle / 1000, result.replica))
        else:
            backoff = min(2 ** max(len(repair.restarts) - 1, 0), 30)
            self._due.append(_Due(workflow.now().timestamp() + backoff, result.replica))
        self._rescheduled = True

    @workflow.signal
    async def runbook_finished(self, result: RunbookResult) -> None:
        """A runbook this monitor started ended: adopt a new primary, re-protect, or fall back."""
        running = self._s.running.pop(runbook_id(result.runbook, self._s.service.name), None)
        params = running.params if running is not None else {}
        ok = result.outcome == "succeeded"
        self._decide(
            params.get("replica") or params.get("to_replica"),
            f"{result.runbook}-{'done' if ok else result.outcome}",
            result.reason,
        )
        if not result.runbook.startswith("failover"):
            return
        old, new = params.get("from_replica"), params.get("to_replica")
        if not ok or old is None or new is None:
            self._s.failover_failures.append(workflow.now().timestamp())
            if old is not None:  # fall back to restarting the primary
                self._due.append(_Due(workflow.now().timestamp(), old))
                self._rescheduled = True
            return
        self._s.primary = new
        self._s.sync = {}  # measured against the old primary: start again
        self._interrupt = True  # restart the watch, so it measures lag to the new primary
        repair = self._s.repairs.setdefault(old, ReplicaRepair())
        repair.crash_looping, repair.note = False, None
        reprotect = self._runbook_name("reprotect")
        if self._s.service.failover.reprotect and reprotect in self._s.runbooks:
            trigger = f"re-protecting {self._s.service.name}: {old} returns as the standby of {new}"
            params = {"old_primary": old}
            if self._s.service.stateful:
                params["new_primary"] = new
            await self._start_runbook(reprotect, params, trigger, "high")

    @workflow.signal
    def reconfigure(self, service: Service) -> None:
        """Take a changed catalog entry; the watch restarts with it (no-op when unchanged)."""
        if service != self._s.service:
            self._new_service = service
            self._interrupt = True

    @workflow.update
    async def request_restart(self, request: RestartRequest) -> str:
        """Restart a replica now, on an operator's word; clears a crash loop."""
        repair = self._s.repairs.setdefault(request.replica, ReplicaRepair())
        if repair.restarting:
            return f"{restart_id(self._s.service.name, request.replica)} is already running"
        repair.crash_looping = False
        repair.note = None
        reason = f"{request.operator} asked: {request.reason}"
        return await self._start_restart(request.replica, reason, severity="operator")

    @request_restart.validator
    def _validate_restart(self, request: RestartRequest) -> None:
        spec = self._s.service.replica(request.replica)
        if spec is None:
            known = ", ".join(r.name for r in self._s.service.replicas)
            raise ValueError(
                f"unknown replica {request.replica!r} of {self._s.service.name} (known: {known})"
            )
        if spec.process is None:
            raise ValueError(f"{request.replica} has no process control configured")

    @workflow.update
    async def failover(self, request: FailoverRequest) -> str:
        """Fail over now, on an operator's word; attaches to a failover already running."""
        why = f"{request.operator} asked: {request.reason}"
        wid = await self._failover(why, wanted=request.to, operator=True, force=request.force)
        if wid is None:  # the world changed between validation and now
            raise ApplicationError(self._s.decisions[-1].reason, type="FailoverRefused")
        return wid

    @failover.validator
    def _validate_failover(self, request: FailoverRequest) -> None:
        if self._failover_id() in self._s.running:
            return  # attaches to the running one
        if self._runbook_name("failover") not in self._s.runbooks:
            raise ValueError(f"no failover runbook is loaded for {self._s.service.name}")
        if (busy := self._reprotecting()) is not None:
            raise ValueError(f"cannot fail over {self._s.service.name}: {busy}")
        sync = None if request.force else self._s.sync
        target, because = choose_standby(
            self._s.service, self._s.primary, self._s.tracks, request.to, sync
        )
        if target is None:
            raise ValueError(f"cannot fail over {self._s.service.name}: {because}")

    @workflow.update
    def pause(self, request: PauseRequest) -> str:
        """Stop watching and repairing until ``resume``."""
        if self._s.paused:
            return f"{self._s.service.name} was already paused"
        self._s.paused = True
        self._interrupt = True
        self._decide(None, "paused", f"{request.operator} paused monitoring: {request.reason}")
        return f"{self._s.service.name} paused"

    @workflow.update
    def resume(self, request: PauseRequest) -> str:
        """Watch and repair again."""
        if not self._s.paused:
            return f"{self._s.service.name} was not paused"
        self._s.paused = False
        self._decide(None, "resumed", f"{request.operator} resumed monitoring: {request.reason}")
        return f"{self._s.service.name} resumed"

    @workflow.query
    def status(self) -> MonitorStatus:
        """Per-replica state, latency, failures, repairs, and the latest decisions."""
        service = self._s.service
        replicas = [self._replica_status(r.name) for r in service.replicas]
        states = {r.name: r.state for r in replicas}
        current = service.model_copy(update={"primary": self._s.primary})
        state = ServiceState.PAUSED if self._s.paused else service_state(current, states)
        return MonitorStatus(
            name=service.name,
            state=state,
            redundancy=service.redundancy.value,
            paused=self._s.paused,
            replicas=replicas,
            decisions=list(self._s.decisions),
            last_transition=self._s.last_transition,
            primary=self._s.primary,
            frontend=service.frontend,
            repairs_running=sorted(self._s.running),
            sync=list(self._s.sync.values()),
        )

    def _replica_status(self, name: str) -> ReplicaStatus:
        spec = self._s.service.replica(name)
        assert spec is not None
        track = self._s.tracks.get(name) or ReplicaTrack()
        repair = self._s.repairs.get(name) or ReplicaRepair()
        state = track.state
        if repair.crash_looping:
            state = ReplicaState.CRASH_LOOPING
        elif repair.restarting:
            state = ReplicaState.RECOVERING
        elif is_suspect(track):
            state = ReplicaState.SUSPECT
        return ReplicaStatus(
            name=name,
            region=spec.region,
            url=str(spec.url),
            state=state,
            latency_ms=track.latency_ms,
            consecutive_failures=track.consecutive_failures,
            last_error=track.last_error,
            since=track.since,
            restarts_in_window=len(repair.restarts),
            note=repair.note,
        )
