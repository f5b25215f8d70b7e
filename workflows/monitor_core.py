"""The monitor's bookkeeping: decisions, notifications, timers, and the children it follows.

Deterministic workflow code, shared by ``workflows.monitor`` (the workflow) and
``workflows.monitor_repairs`` (the repair choices). It starts every repair as an abandoned
child (so a repair survives the monitor's continue-as-new) and learns how each one ends: from
the child's handle while the run that started it lives, and from an ``await_repair_end``
activity for repairs carried across continue-as-new.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio import workflow
from temporalio.common import RetryPolicy, TypedSearchAttributes
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.workflow import ActivityHandle, ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from drc.model import Decision
    from drc.names import (
        MONITOR_PREFIX,
        NOTIFY,
        restart_id,
    )
    from drc.policy import ReplicaRepair
    from drc.repair import Notification, RepairEnd, RepairRef, RestartInput
    from drc.watch import WatchReport
from workflows.child_ends import end_of_child, follow_to_end
from workflows.monitor_types import (
    MAX_DECISIONS,
    MonitorConfig,
    MonitorState,
    RunningRepair,
)
from workflows.repair_labels import repair_attributes, repair_details
from workflows.restart import RestartReplicaWorkflow
from workflows.runbook import RunbookInput, RunbookWorkflow
from workflows.telemetry import count_detection, count_repair_end, log_decision

if TYPE_CHECKING:
    from workflows.fleet_link import FleetLink
    from workflows.monitor_incidents import IncidentBook

NOTIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)
)


@dataclass
class Due:
    """Something to look at again at a time: a failed replica, a freeze's end, a re-protection."""

    at: float
    replica: str | None
    kind: str = "recheck"
    """``recheck`` (is it still failed?), ``unfreeze`` or ``reprotect``."""


class MonitorCore:
    """State and bookkeeping of one monitor run; see the module docstring."""

    def __init__(self, config: MonitorConfig, state: MonitorState) -> None:
        self.cfg = config
        self.st = state
        self.key = workflow.info().workflow_id.removeprefix(MONITOR_PREFIX)
        """What repair ids are named after: the service (``monitor/<service>`` in production)."""
        self.due: list[Due] = []
        self.ends: list[RepairEnd] = []
        self.reports: list[WatchReport] = []
        self.interrupt = False
        """The watch may have to start again: new primary, configuration, pause, reset tracks."""
        self.reset_watch = False
        """The watch must start again from the monitor's tracks (not only on new inputs)."""
        self.rescheduled = False
        self._notifications: list[ActivityHandle[None]] = []
        self._starting: set[str] = set()
        """Repairs whose start is in flight: an end that arrives meanwhile is an earlier run's."""
        self.book: IncidentBook | None = None
        """The open incident's bookkeeping (set by the workflow)."""
        self.fleet: FleetLink | None = None
        """The monitor's side of the fleet (set by the workflow)."""

    # --- decisions and notifications ----------------------------------------------------------

    def decide(
        self,
        replica: str | None,
        action: str,
        reason: str,
        at: float | None = None,
        severity: str | None = None,
        incident: str | None = None,
    ) -> Decision:
        """Record a decision (status, history, log line); with ``severity``, tell an operator.

        The log line's ``drc`` extra names the service, replica, action, reason, severity, the
        incident (``incident``, else the open one: after the book saw a failure, the one it
        opened) and the run.
        """
        decision = Decision(at or self.now(), replica, action, reason)
        self.st.decisions = [*self.st.decisions[-(MAX_DECISIONS - 1) :], decision]
        log_decision(
            "%s: %s",
            action,
            reason,
            service=self.cfg.service.name,
            replica=replica,
            action=action,
            reason=reason,
            severity=severity,
            incident=incident or (self.st.incident.id if self.st.incident is not None else None),
        )
        if self.book is not None:
            self.book.on_decision(decision, severity)
        if severity is not None:
            self.notify(action, replica, severity, reason)
        return decision

    def detected(self, kind: str, replica: str | None, severity: str | None) -> None:
        """Count a detection (``drc_detections_total``); call it before deciding on it.

        ``partitioned`` and ``unreachable`` are decided again at every recheck of the same
        failure: they count once, when the replica's last decision was something else.
        """
        if kind in ("partitioned", "unreachable"):
            last = next((d for d in reversed(self.st.decisions) if d.replica == replica), None)
            if last is not None and last.action == kind:
                return
        count_detection(self.cfg.service.name, kind, severity)

    def repair_ended(self, repair: RunningRepair, end: RepairEnd) -> None:
        """Count a repair's end by outcome, with its duration from the decision to its end."""
        count_repair_end(self.cfg.service.name, repair.kind, end, self.now() - repair.started_at)

    def notify(
        self,
        kind: str,
        replica: str | None,
        severity: str,
        summary: str,
        incident_id: str | None = None,
    ) -> None:
        """Hand a notification to the ``notify`` activity; never blocks or fails the monitor."""
        open_incident = self.st.incident.id if self.st.incident is not None else None
        note = Notification(
            kind=kind,
            service=self.cfg.service.name,
            replica=replica,
            severity=severity,
            summary=summary,
            at=self.now(),
            workflow_id=workflow.info().workflow_id,
            incident_id=incident_id or open_incident,
        )
        handle = workflow.start_activity(
            NOTIFY,
            note,
            start_to_close_timeout=timedelta(seconds=30),
            # A webhook down for good must not hold the monitor's next run back for ever.
            schedule_to_close_timeout=timedelta(hours=1),
            retry_policy=NOTIFY_RETRY,
            summary=f"notify {severity}: {summary}"[:200],
        )
        self._notifications.append(handle)
        handle.add_done_callback(lambda done: self._sent(handle, done))

    def _sent(self, handle: ActivityHandle[None], done: Any) -> None:
        self._notifications.remove(handle)
        if not done.cancelled() and done.exception() is not None:  # retried until it gave up
            workflow.logger.warning("a notification was not delivered: %s", done.exception())

    def notifications_sent(self) -> bool:
        """No notification is still on its way (wait for this before continue-as-new)."""
        return not self._notifications

    # --- time ---------------------------------------------------------------------------------

    @staticmethod
    def now() -> float:
        """Workflow time, in Unix seconds."""
        return workflow.now().timestamp()

    def schedule(self, after_s: float, replica: str | None, kind: str = "recheck") -> None:
        """Look at ``replica`` again in ``after_s`` seconds."""
        self.due.append(Due(self.now() + after_s, replica, kind))
        self.rescheduled = True

    def take_due(self) -> list[Due]:
        """The items whose time has come, removed from the schedule."""
        now = self.now()
        ready = [d for d in self.due if d.at <= now]
        self.due = [d for d in self.due if d.at > now]
        return ready

    def due_now(self) -> bool:
        """Whether an item's time has come."""
        now = self.now()
        return any(d.at <= now for d in self.due)

    def until_next_due(self) -> timedelta | None:
        """How long until the next item, for a wait's timeout."""
        if not self.due:
            return None
        wait = min(d.at for d in self.due) - self.now()
        return timedelta(seconds=max(wait, 0.001))

    # --- repair children ----------------------------------------------------------------------

    def repair_of(self, replica: str) -> ReplicaRepair:
        """The repair memory of ``replica`` (created on first use)."""
        return self.st.repairs.setdefault(replica, ReplicaRepair())

    def restarting(self, replica: str) -> bool:
        """A restart of ``replica`` is running."""
        return restart_id(self.key, replica) in self.st.running

    async def start_restart(
        self, wid: str, repair: RunningRepair, inp: RestartInput, severity: str
    ) -> None:
        """Start ``RestartReplica`` as ``wid`` (or attach to the one running) and follow it."""
        self.st.running[wid] = repair  # before any await: one restart per replica at a time
        incident = self.book.repair_starting(repair, severity) if self.book else None
        self._starting.add(wid)
        try:
            child = await workflow.start_child_workflow(
                RestartReplicaWorkflow.run,
                inp,
                id=wid,
                parent_close_policy=ParentClosePolicy.ABANDON,
                search_attributes=self.labels("restart", repair, severity, incident),
                static_summary=inp.reason[:200],
                static_details=repair_details(self.cfg.service.name, repair, self.st.incident),
            )
        except WorkflowAlreadyStartedError:
            self._starting.discard(wid)
            self._follow(wid, None)  # started by someone else: follow that run
            self._joined(wid, repair)
            return
        finally:
            self._starting.discard(wid)
        self._track(wid, child)
        self._joined(wid, repair)

    async def start_runbook(
        self, wid: str, repair: RunningRepair, inp: RunbookInput, severity: str
    ) -> None:
        """Start ``Runbook`` as ``wid`` (or attach to the one running) and follow it."""
        self.st.running[wid] = repair  # before any await: one repair of a kind at a time
        incident = self.book.repair_starting(repair, severity) if self.book else None
        self._starting.add(wid)
        try:
            child = await workflow.start_child_workflow(
                RunbookWorkflow.run,
                inp,
                id=wid,
                parent_close_policy=ParentClosePolicy.ABANDON,
                search_attributes=self.labels(repair.kind, repair, severity, incident),
                static_summary=repair.trigger[:200],
                static_details=repair_details(self.cfg.service.name, repair, self.st.incident),
            )
        except WorkflowAlreadyStartedError:
            self._starting.discard(wid)
            self._follow(wid, None)
            self._joined(wid, repair)
            return
        finally:
            self._starting.discard(wid)
        self._track(wid, child)
        self._joined(wid, repair)

    def _joined(self, wid: str, repair: RunningRepair) -> None:
        if self.book is not None:
            self.book.repair_started(wid, repair)

    def _track(self, wid: str, child: Any) -> None:
        run_id = child.first_execution_run_id
        self.st.running[wid].run_id = run_id
        # The abandoned child's end comes through its handle while this run lives; a child that
        # completes or fails also signals, whichever arrives first counts (see ``take_end``).
        child.add_done_callback(lambda done: self.ends.append(end_of_child(wid, run_id, done)))

    def follow_carried(self) -> None:
        """Follow every repair carried from an earlier run (its handle is gone)."""
        for wid, repair in self.st.running.items():
            self._follow(wid, repair.run_id)

    def _follow(self, wid: str, run_id: str | None) -> None:
        follow_to_end(RepairRef(wid, run_id), self.ends.append)

    def take_end(self, end: RepairEnd) -> RunningRepair | None:
        """The running repair ``end`` belongs to, removed; None for a duplicate or stale end."""
        repair = self.st.running.get(end.workflow_id)
        if repair is None or end.workflow_id in self._starting:
            return None  # unknown, or an earlier run's end while a new run is being started
        if repair.run_id and end.run_id and repair.run_id != end.run_id:
            return None  # the end of an earlier run of the same id
        del self.st.running[end.workflow_id]
        return repair

    def labels(
        self, kind: str, repair: RunningRepair, severity: str, incident: str | None
    ) -> TypedSearchAttributes | None:
        """The repair run's search attributes, if this deployment registered them."""
        if not self.cfg.search_attributes:
            return None
        return repair_attributes(
            self.cfg.service.name, kind, repair, severity, incident, self.now()
        )

    def watchers(self) -> list[Callable[[], bool]]:
        """Conditions that wake the monitor's waits."""
        return [
            lambda: bool(self.ends),
            lambda: self.interrupt,
            lambda: self.rescheduled,
            self.due_now,
            lambda: self.book is not None and self.book.dirty,
        ]

    def wake(self) -> bool:
        """Whether there is work for the monitor now."""
        return any(check() for check in self.watchers())
