"""ServiceMonitor: one per catalog service, forever (design notes §1-§3).

It keeps one ``watch_service`` activity running, applies the transitions it returns, decides on
repairs (``workflows.monitor_repairs``, choices from ``drc.policy``), follows every repair to its
end (``workflows.monitor_followups``) and keeps a queryable status. Operators act through
updates with validators, the ``request_failover`` signal, and dry-run queries. Its history
holds only transitions and decisions, and continue-as-new keeps it bounded forever.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from drc.fleet import FleetDirective, TokenGrant
    from drc.names import restart_id
    from drc.operator import (
        FailoverRequest,
        PauseRequest,
        Plan,
        ReprotectRequest,
        RestartRequest,
        RetireRequest,
    )
    from drc.repair import EndStatus, RepairEnd, RestartResult, RunbookResult
    from drc.status import MonitorStatus
    from drc.watch import WatchReport
from workflows.fleet_link import FleetLink
from workflows.monitor_core import MonitorCore
from workflows.monitor_followups import follow_end, run_due
from workflows.monitor_incidents import IncidentBook
from workflows.monitor_operator import (
    operator_pause,
    operator_restart,
    operator_resume,
    operator_retire,
)
from workflows.monitor_repairs import Repairs
from workflows.monitor_types import MonitorConfig, MonitorInput
from workflows.monitor_views import (
    plan_failover,
    plan_restart,
    reprotect_refusal,
    restart_refusal,
    status_of,
    what_changed,
)
from workflows.monitor_watch import Watching, watch_inputs

PATCH_WATCH_INPUTS = "watch-generation-only-on-new-inputs"
"""A new watch generation only when what the watch depends on changed (or a reset)."""


@workflow.defn(name="ServiceMonitor")
class ServiceMonitorWorkflow:
    """Watches one service and repairs what it can; see the module docstring."""

    @workflow.init
    def __init__(self, inp: MonitorInput) -> None:
        # State exists before run() starts: signal-with-start delivers `reconfigure` first.
        self._core = MonitorCore(inp.config, inp.state)
        self._book = self._core.book = IncidentBook(self._core)
        self._fleet = self._core.fleet = FleetLink(self._core)
        self._repairs = Repairs(self._core)
        if inp.state.primary is None:
            inp.state.primary = inp.config.service.primary
        self._new_config: MonitorConfig | None = None
        self._retired: str | None = None
        self._watching = Watching(
            self._core, self._repairs, self._handle_pending, lambda: self._leaving()
        )

    @workflow.run
    async def run(self, inp: MonitorInput) -> str:
        """Watch and repair until retired; continue as new when the history grows long."""
        core = self._core
        for replica in core.cfg.service.replicas:
            core.repair_of(replica.name)
        core.follow_carried()
        core.schedule(0, None, "recheck-all")  # a replica that failed before this run began
        if core.st.incident is not None or core.st.incident_outbox:
            self._book.add_monitor_run()
            self._book.outbox.resend()
            if core.st.incident is not None and not core.st.incident_notified:
                core.schedule(0, None, "incident-notify")
        while self._retired is None and not self._time_for_new_run():
            await self._watching.round()
            self._apply_reconfigure()  # also clears the interrupt that ended the round
        await self._book.flush()
        await workflow.wait_condition(
            lambda: workflow.all_handlers_finished() and core.notifications_sent()
        )
        if self._retired is not None:
            await self._watching.unwatch()
            return self._retired
        workflow.continue_as_new(MonitorInput(core.cfg, core.st))

    # --- watching -------------------------------------------------------------------------------

    def _leaving(self) -> bool:
        return self._retired is not None or self._time_for_new_run()

    async def _handle_pending(self) -> None:
        core = self._core
        core.rescheduled = False
        while core.ends:
            end = core.ends.pop(0)
            repair = core.take_end(end)
            if repair is not None:
                core.repair_ended(repair, end)
                await follow_end(self._repairs, repair, end)
        for item in core.take_due():
            if item.kind == "incident-notify":
                self._book.notify_open()
            elif not core.st.paused:
                await run_due(self._repairs, item)
        await self._book.flush()
        await self._fleet.report()

    def _apply_reconfigure(self) -> None:
        core = self._core
        if core.interrupt and self._new_watch_needed():
            core.st.watch_generation += 1  # the watch starts again from the monitor's state
        core.reset_watch = False
        if self._new_config is not None:
            old, core.cfg, self._new_config = core.cfg, self._new_config, None
            names = {r.name for r in core.cfg.service.replicas}
            core.st.tracks = {n: t for n, t in core.st.tracks.items() if n in names}
            for name in names:
                core.repair_of(name)
            core.decide(None, "reconfigured", what_changed(old, core.cfg, core.st.primary))
        core.interrupt = False

    def _new_watch_needed(self) -> bool:
        core = self._core
        # Monitors started before this change began a new watch generation on every
        # interrupt; their histories must replay as they ran (tests/test_replay.py).
        if not workflow.patched(PATCH_WATCH_INPUTS):
            return True
        return core.reset_watch or watch_inputs(core) != core.st.watch_inputs

    def _time_for_new_run(self) -> bool:
        info = workflow.info()
        return info.is_continue_as_new_suggested() or (
            info.get_current_history_length() > self._core.cfg.max_history
        )

    # --- messages -----------------------------------------------------------------------------

    @workflow.signal
    def restart_finished(self, result: RestartResult) -> None:
        """A restart ended (sent by the restart itself; its handle may say so first)."""
        wid = result.workflow_id or restart_id(self._core.key, result.replica)
        status: EndStatus = "completed" if result.ok else "failed"
        run_id = result.run_id or None
        self._core.ends.append(RepairEnd(wid, run_id, status, result.reason, restart=result))

    @workflow.signal
    def runbook_finished(self, result: RunbookResult) -> None:
        """A runbook ended (sent by the runbook itself; its handle may say so first)."""
        status: EndStatus = "completed" if result.outcome == "succeeded" else "failed"
        end = RepairEnd(
            result.workflow_id, result.run_id or None, status, result.reason, runbook=result
        )
        self._core.ends.append(end)

    @workflow.signal
    def fleet_directive(self, directive: FleetDirective) -> None:
        """The fleet's word: held by a root cause or not, the storm brake's mode."""
        self._fleet.directive(directive)

    @workflow.signal
    def repair_token(self, grant: TokenGrant) -> None:
        """The fleet's leave for a paced automatic repair."""
        self._fleet.granted(grant)

    @workflow.signal
    def watch_report(self, report: WatchReport) -> None:
        """What the watch group saw of this service (applied once, in order)."""
        self._core.reports.append(report)

    @workflow.signal
    def reconfigure(self, config: MonitorConfig) -> None:
        """Take a changed catalog entry and runbooks; the watch restarts with them."""
        if config != self._core.cfg:
            self._new_config = config
            self._core.interrupt = True

    @workflow.signal
    async def request_failover(self, request: FailoverRequest) -> None:
        """The ``failover`` update as a signal, for tooling that sends signals.

        Same validation; a refusal is recorded as a decision (and notified), not raised.
        """
        problem = self._failover_problem(request)
        if problem is not None:
            self._core.decide(None, "failover-refused", problem, severity="high")
            return
        await self._failover(request)

    @workflow.update
    async def request_restart(self, request: RestartRequest) -> str:
        """Restart a replica now, on an operator's word; clears its crash loop and freeze."""
        return await operator_restart(self._repairs, request)

    @request_restart.validator
    def _validate_restart(self, request: RestartRequest) -> None:
        if (problem := restart_refusal(self._repairs, request)) is not None:
            raise ValueError(problem)

    @workflow.update
    async def failover(self, request: FailoverRequest) -> str:
        """Fail over now, on an operator's word; attaches to a failover already running."""
        return await self._failover(request)

    @failover.validator
    def _validate_failover(self, request: FailoverRequest) -> None:
        if (problem := self._failover_problem(request)) is not None:
            raise ValueError(problem)

    def _failover_problem(self, request: FailoverRequest) -> str | None:
        if request.force and request.reason.strip() in ("", FailoverRequest.reason):
            return (
                f"a forced failover of {self._core.cfg.service.name} needs a reason of your own "
                '(--reason "...")'
            )
        return self._repairs.failover_refusal(request.to, request.force)

    async def _failover(self, request: FailoverRequest) -> str:
        why = f"{request.operator} asked: {request.reason}"
        wid = await self._repairs.failover(
            why, wanted=request.to, operator=request.operator, force=request.force
        )
        if wid is None:  # the world changed between validation and now
            raise ApplicationError(self._core.st.decisions[-1].reason, type="FailoverRefused")
        return wid

    @workflow.update
    async def reprotect(self, request: ReprotectRequest) -> str:
        """Bring a former primary back as the standby of the current one, now."""
        old = request.replica or self._core.st.unprotected or ""
        self._core.st.reprotect_attempts = 0
        wid = await self._repairs.reprotect(
            old, self._core.st.primary or "", operator=request.operator
        )
        return wid or self._core.st.decisions[-1].reason

    @reprotect.validator
    def _validate_reprotect(self, request: ReprotectRequest) -> None:
        if (problem := reprotect_refusal(self._repairs, request)) is not None:
            raise ValueError(problem)

    @workflow.update
    def pause(self, request: PauseRequest) -> str:
        """Stop watching and repairing until ``resume``."""
        return operator_pause(self._core, request)

    @workflow.update
    def resume(self, request: PauseRequest) -> str:
        """Watch and repair again; lifts every freeze (flapping) too."""
        return operator_resume(self._repairs, request)

    @workflow.update
    def retire(self, request: RetireRequest) -> str:
        """End this monitor: its service left the catalog. Running repairs finish on their own."""
        self._retired = operator_retire(self._core, request)
        return self._retired

    @workflow.query
    def status(self) -> MonitorStatus:
        """Per-replica state, latency, failures, repairs, freezes, and the latest decisions."""
        return status_of(self._core)

    @workflow.query
    def plan_failover(self, request: FailoverRequest) -> Plan:
        """What ``failover`` would do now (target, why, every guard); changes nothing."""
        return plan_failover(self._repairs, request, self._failover_problem(request))

    @workflow.query
    def plan_restart(self, request: RestartRequest) -> Plan:
        """What ``request_restart`` would do now; changes nothing."""
        return plan_restart(self._repairs, request)
