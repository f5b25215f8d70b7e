"""The way incident snapshots reach the store: queued in the monitor's state, then written.

An update is queued in ``MonitorState.incident_outbox`` before its ``record_incident``
activity starts and leaves the queue only once the activity succeeded, so a snapshot is never
lost: a worker's death retries it, continue-as-new carries the queue and the next run sends it
again (the store ignores what it already has). Deterministic workflow code.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from drc.incident import AvailabilityChange, FailureRecord, Incident, IncidentUpdate
    from drc.names import RECORD_INCIDENT
from workflows.monitor_types import MonitorState

RECORD_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)
)
MAX_OUTBOX = 500
"""Beyond this many unwritten updates (a store away for long) the oldest are dropped."""


class IncidentOutbox:
    """Failures and availability changes waiting for the next snapshot, and the queue."""

    def __init__(self, state: MonitorState) -> None:
        self.st = state
        self.failures: list[FailureRecord] = []
        self.changes: list[AvailabilityChange] = []
        self._sending: set[int] = set()

    def send(self, incident: Incident | None) -> None:
        """Queue and send a snapshot of ``incident`` (its version raised) with what is new."""
        if incident is not None:
            incident.version += 1
            incident = dataclasses.replace(
                incident, runs=list(incident.runs), notes=list(incident.notes)
            )
        if incident is None and not self.failures and not self.changes:
            return
        self.st.incident_seq += 1
        update = IncidentUpdate(incident, self.failures, self.changes, seq=self.st.incident_seq)
        self.failures, self.changes = [], []
        dropped = self.st.incident_outbox[: -(MAX_OUTBOX - 1)]
        if dropped:
            workflow.logger.warning("the store is away: %d incident updates dropped", len(dropped))
        self.st.incident_outbox = [*self.st.incident_outbox[-(MAX_OUTBOX - 1) :], update]
        self._record(update)

    def resend(self) -> None:
        """Send again what an earlier run queued and did not see written."""
        for update in self.st.incident_outbox:
            self._record(update)

    def _record(self, update: IncidentUpdate) -> None:
        if update.seq in self._sending:
            return
        self._sending.add(update.seq)
        handle = workflow.start_activity(
            RECORD_INCIDENT,
            update,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RECORD_RETRY,
            summary=_summary(update),
        )
        handle.add_done_callback(lambda done: self._recorded(update.seq, done))

    def _recorded(self, seq: int, done: Any) -> None:
        self._sending.discard(seq)
        if done.cancelled() or done.exception() is not None:
            return  # still queued: the next run sends it again
        self.st.incident_outbox = [u for u in self.st.incident_outbox if u.seq != seq]


def _summary(update: IncidentUpdate) -> str:
    incident = update.incident
    if incident is None:
        return f"record {len(update.failures)} failures"
    return f"record {incident.id} ({incident.status}, v{incident.version})"[:200]
