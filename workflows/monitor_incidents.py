"""The monitor's incidents: opened by a detection, joined by every repair, resolved when whole.

An incident opens on a failed replica (or on an operator's repair when none is open), carries
every decision taken meanwhile, names every repair run (their ``incident`` search attribute is
its id), and resolves once the service is healthy and redundant again with no repair running.
Snapshots go to the store through the ``record_incident`` activity: queued in the monitor's
state first (``incident_outbox``) and removed only once written, so neither a retry nor a
worker's death nor continue-as-new loses or duplicates one (the store keeps the highest
version). A resolved incident gets its report from an ``IncidentReport`` child; a near miss
(healed by itself or by restarts within ``thresholds.near_miss_s``, the service never down)
gets a one-line record instead.
"""

from __future__ import annotations

from datetime import UTC, datetime

from temporalio import workflow
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from drc.availability import availability_of, availability_reason, down_since
    from drc.incident import (
        Availability,
        AvailabilityChange,
        FailureRecord,
        Incident,
        IncidentNote,
        IncidentRun,
    )
    from drc.model import Decision, Transition
    from drc.names import REPORT_WORKFLOW, SA_INCIDENT, SA_KIND, SA_SERVICE, report_id
    from drc.report import ReportRequest
from workflows.incident_outbox import IncidentOutbox
from workflows.monitor_core import MonitorCore
from workflows.monitor_types import RunningRepair

PATCH_INCIDENTS = "incidents"
"""Monitors started before incidents existed replay without them (tests/test_replay.py)."""

MAX_NOTES = 200

FAILURE_TYPES = {
    "no-failover": "failover_refused",
    "failover-refused": "failover_refused",
    "no-drain": "drain_refused",
    "frozen": "frozen",
    "crash-looping": "crash_looping",
    "partitioned": "partitioned",
}
"""Decisions (with a severity) that are failures in their own right, by failure type."""

ALARMS = frozenset({*FAILURE_TYPES, "watch-alone"})
"""Decisions that make an incident more than a near miss."""


class IncidentBook:
    """One monitor's open incident and its way to the store; see the module docstring."""

    def __init__(self, core: MonitorCore) -> None:
        self.c = core
        self.dirty = False
        self.outbox = IncidentOutbox(core.st)

    @property
    def enabled(self) -> bool:
        """Incidents are kept (not in a history recorded before they existed)."""
        return self.c.cfg.incidents and workflow.patched(PATCH_INCIDENTS)

    @property
    def open(self) -> Incident | None:
        """The open incident, if any."""
        return self.c.st.incident

    # --- what opens and joins an incident ------------------------------------------------------

    def on_failed(self, transition: Transition) -> None:
        """A replica failed: open an incident or join the open one; record the failure."""
        if not self.enabled:
            return
        root = self.c.st.root_incident
        if self.open is None and self.c.st.held_by is not None and root is not None:
            # Its root cause's incident: one incident for the dependency and its dependents.
            why = f"{transition.reason} (root cause: {self.c.st.held_by}, incident {root})"
            self._failure(transition.replica, "replica_failed", "high", why, transition.at, root)
            self.dirty = True
            return
        track = self.c.st.tracks.get(transition.replica)
        started = min(transition.at, (track.failing_since if track else None) or transition.at)
        down = self._availability() == "down"
        severity = "critical" if down else "high"
        kind = "service_down" if down else "replica_failed"
        incident = self.open or self._open(
            kind, severity, transition.reason, started, transition.at, transition.replica
        )
        if down and incident.type != "service_down":
            incident.type, incident.severity = "service_down", "critical"
        incident.started_at = min(incident.started_at, started)
        self._failure(transition.replica, kind, severity, transition.reason, transition.at)
        self.dirty = True

    def on_degraded(self, transition: Transition) -> None:
        """A replica serves, but badly (latency, error rate, a failing check): a failure record.

        A high-severity condition (error rate, failing health check) also opens an incident
        and pages; a medium one (latency) is recorded only.
        """
        if not self.enabled or transition.condition is None:
            return
        severity = transition.severity or "medium"
        if severity in ("critical", "high") and self.open is None:
            self._open(
                transition.condition,
                "high",
                transition.reason,
                transition.at,
                transition.at,
                transition.replica,
            )
        self._failure(
            transition.replica, transition.condition, severity, transition.reason, transition.at
        )
        self.dirty = True

    def repair_starting(self, repair: RunningRepair, severity: str) -> str | None:
        """The incident a repair belongs to (opened for it when none is: an operator's word)."""
        if not self.enabled:
            return None
        incident = self.open
        if incident is None:
            kind = (
                f"operator_{repair.kind.split('-')[0]}"
                if severity in ("operator", "forced")
                else repair.kind
            )
            now = self.c.now()
            incident = self._open(kind, "medium", repair.trigger, now, now, repair.replica)
        if repair.forced:
            incident.forced_by = repair.trigger.split("FORCED by ", 1)[-1].split(":", 1)[0]
        return incident.id

    def repair_started(self, wid: str, repair: RunningRepair) -> None:
        """Name a started repair run in the open incident."""
        incident = self.open
        if incident is None or not self.enabled:
            return
        run = IncidentRun(wid, repair.run_id, repair.kind, repair.started_at)
        incident.runs = [r for r in incident.runs if (r.workflow_id, r.run_id) != (wid, None)]
        incident.runs.append(run)
        self.dirty = True

    def on_decision(self, decision: Decision, severity: str | None) -> None:
        """Keep ``decision`` in the open incident; a refusal, freeze or crash loop is a failure."""
        if not self.enabled:
            return
        incident = self.open
        if incident is not None:
            note = IncidentNote(decision.at, decision.action, decision.replica, decision.reason)
            incident.notes = [*incident.notes[-(MAX_NOTES - 1) :], note]
            self.dirty = True
        kind = FAILURE_TYPES.get(decision.action)
        if kind is not None and severity is not None:
            sev = "critical" if severity == "critical" else "high"
            self._failure(decision.replica, kind, sev, decision.reason, decision.at)
            self.dirty = True

    # --- what mitigates and resolves it --------------------------------------------------------

    async def flush(self) -> None:
        """Record availability, mitigation and resolution; send what changed to the store."""
        if not self.enabled or self.c.st.paused:
            self._send_if_dirty()
            return
        self._track_availability()
        incident = self.open
        if incident is not None:
            availability = self.c.st.availability
            if incident.mitigated_at is None and availability != "down":
                went_down = incident.type == "service_down"
                incident.mitigated_at = self.c.now() if went_down else incident.detected_at
                self.dirty = True
            if availability == "up" and incident.mitigated_at is not None and not self.c.st.running:
                await self._resolve(incident)
        self._send_if_dirty()

    def _availability(self) -> Availability | None:
        st = self.c.st
        return availability_of(self.c.cfg.service, st.primary, st.tracks, st.sync, st.unprotected)

    def _track_availability(self) -> None:
        st, svc = self.c.st, self.c.cfg.service
        now_state = self._availability()
        if now_state is None or now_state == st.availability:
            return
        now = self.c.now()
        at = down_since(svc, st.primary, st.tracks, now) if now_state == "down" else now
        reason = availability_reason(svc.name, now_state, st.primary)
        self.outbox.changes.append(AvailabilityChange(svc.name, at, now_state, reason))
        st.availability = now_state
        self.dirty = True

    async def _resolve(self, incident: Incident) -> None:
        c = self.c
        incident.resolved_at, incident.status = c.now(), "resolved"
        incident.near_miss = self._near_miss(incident)
        incident.outcome = self._outcome(incident)
        c.st.last_incident_id, c.st.incident = incident.id, None
        self.dirty = True
        self._send_if_dirty(incident)
        why = f"{incident.id}: {incident.outcome}"
        if incident.near_miss:
            c.decide(incident.replica, "near-miss", why, incident=incident.id)
            return
        c.decide(incident.replica, "incident-resolved", why, incident=incident.id)
        if c.st.incident_notified:
            c.notify("incident-resolved", incident.replica, "info", incident.outcome, incident.id)
        c.st.incident_notified = False
        await self._start_report(incident.id)

    def _near_miss(self, incident: Incident) -> bool:
        if incident.type == "service_down" or incident.forced_by:
            return False
        if any(run.kind not in ("restart", "monitor") for run in incident.runs):
            return False
        if any(
            note.action in ALARMS or note.action.startswith("restart-") for note in incident.notes
        ):
            return False
        healed_in = (incident.resolved_at or 0) - incident.started_at
        return healed_in <= self.c.cfg.service.thresholds.near_miss_s

    def _outcome(self, incident: Incident) -> str:
        healed = (incident.resolved_at or 0) - incident.started_at
        repairs = sorted({r.kind for r in incident.runs if r.kind != "monitor"})
        how = f"repaired by {', '.join(repairs)}" if repairs else "healed without a repair"
        prefix = "near miss: " if incident.near_miss else ""
        return (
            f"{prefix}{incident.service} healthy and redundant again {healed:.2f} s after its "
            f"first failed probe, {how}"
        )

    async def _start_report(self, incident_id: str) -> None:
        try:
            await workflow.start_child_workflow(
                REPORT_WORKFLOW,
                ReportRequest(incident_id),
                id=report_id(incident_id),
                parent_close_policy=ParentClosePolicy.ABANDON,
                static_summary=f"post-incident report of {incident_id}",
                search_attributes=self._report_attributes(incident_id),
            )
        except WorkflowAlreadyStartedError:
            pass  # already being written

    def _report_attributes(self, incident_id: str) -> TypedSearchAttributes | None:
        if not self.c.cfg.search_attributes:
            return None
        return TypedSearchAttributes(
            [
                SearchAttributePair(SA_SERVICE, self.c.cfg.service.name),
                SearchAttributePair(SA_KIND, "report"),
                SearchAttributePair(SA_INCIDENT, incident_id),
            ]
        )

    # --- notifications -------------------------------------------------------------------------

    def notify_open(self) -> None:
        """Page for the open incident (once): at once when critical, else after a near miss."""
        incident, c = self.open, self.c
        if incident is None or c.st.incident_notified:
            return
        c.st.incident_notified = True
        c.notify(
            "incident-opened",
            incident.replica,
            incident.severity,
            f"{incident.id}: {incident.cause}",
            incident.id,
        )

    # --- the store -----------------------------------------------------------------------------

    def add_monitor_run(self) -> None:
        """Name this monitor run in the open incident (a new run after continue-as-new)."""
        incident, info = self.open, workflow.info()
        if incident is None or not self.enabled:
            return
        if not any(r.run_id == info.run_id for r in incident.runs):
            incident.runs.append(
                IncidentRun(info.workflow_id, info.run_id, "monitor", self.c.now())
            )
            self.dirty = True

    def _open(
        self,
        kind: str,
        severity: str,
        cause: str,
        started: float,
        detected: float,
        replica: str | None,
    ) -> Incident:
        c = self.c
        stamp = datetime.fromtimestamp(started, UTC).strftime("%Y%m%dT%H%M%SZ")
        incident = Incident(
            id=f"{c.cfg.service.name}-{stamp}-{workflow.uuid4().hex[:4]}",
            service=c.cfg.service.name,
            type=kind,
            severity=severity,
            cause=cause,
            started_at=started,
            detected_at=detected,
            replica=replica,
        )
        c.st.incident, c.st.incident_notified = incident, False
        self.add_monitor_run()
        if severity == "critical":
            self.notify_open()
        else:
            c.schedule(c.cfg.service.thresholds.near_miss_s, replica, "incident-notify")
        return incident

    def _failure(
        self,
        replica: str | None,
        kind: str,
        severity: str,
        description: str,
        at: float,
        incident: str | None = None,
    ) -> None:
        service = self.c.cfg.service.name
        key = f"{service}/{replica or '-'}/{kind}/{int(at * 1000)}"
        incident = incident or (self.open.id if self.open else None)
        self.outbox.failures.append(
            FailureRecord(key, service, replica, kind, severity, description, at, incident)
        )

    def _send_if_dirty(self, incident: Incident | None = None) -> None:
        if self.dirty:
            self.dirty = False
            self.outbox.send(incident or self.c.st.incident)
