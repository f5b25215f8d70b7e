"""What repairs take and return: restarts, runbook actions, runbook results, their ends.

Shared by the workflows that orchestrate repairs and the activities that carry them out, so
that neither imports the other (a workflow names an activity by its name, ``drc.names``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from drc.catalog import Replica, Service


@dataclass
class ProcessInput:
    """A replica's process, addressed through the catalog's process control."""

    supervisor_url: str
    process: str


@dataclass
class ProcessResult:
    """What process control did and saw."""

    action: str
    state_before: str
    state_after: str
    pid: int | None = None


@dataclass
class WaitHealthyInput:
    """Wait until a restarted replica passes its health probe."""

    replica: Replica
    supervisor_url: str | None
    timeout_ms: int


@dataclass
class RestartInput:
    """Restart one replica of one service; ``reason`` says who or what asked and why."""

    service: str
    replica: Replica
    supervisor_url: str
    health_timeout_s: float
    reason: str
    monitor_workflow_id: str | None = None


@dataclass
class RestartResult:
    """How a restart ended; ``reason`` is the sentence for the incident record."""

    service: str
    replica: str
    ok: bool
    reason: str
    started_at: datetime
    """UTC; ISO-8601 in the run's result (histories from before carry Unix seconds, which
    read back as the same instant)."""
    finished_at: datetime
    workflow_id: str = ""
    run_id: str = ""
    """The restart's run, so a late signal is never taken for a later restart's."""


@dataclass
class ActionInput:
    """One runbook action call: what to do (rendered args) and to which service."""

    action: str
    args: dict[str, Any]
    service: Service
    supervisor_url: str
    allowed_commands: list[str] = field(default_factory=list)


@dataclass
class ActionResult:
    """What an action did, as one sentence for the runbook's journal and report."""

    action: str
    summary: str


StepStatus = Literal["succeeded", "failed", "compensated", "compensation_failed", "skipped"]
Outcome = Literal["succeeded", "compensated", "failed_compensation", "rejected"]


@dataclass
class StepRecord:
    """One step in a runbook's journal: what ran, how it ended, when."""

    name: str
    action: str
    status: StepStatus
    summary: str = ""
    """The action's own sentence, or the guard's / action's error when it failed."""
    started_at: datetime | None = None
    """UTC; ISO-8601 in the run's result."""
    finished_at: datetime | None = None
    compensation: str = ""
    """What undoing the step did (or why undoing it failed)."""


@dataclass
class RunbookResult:
    """How a runbook run ended, the sentence that says why, and the journal of every step."""

    runbook: str
    outcome: Outcome
    reason: str
    steps: list[StepRecord]
    trigger: str = ""
    workflow_id: str = ""
    run_id: str = ""
    """The run that produced this result (filled in when it is sent to the monitor)."""


EndStatus = Literal["completed", "failed", "cancelled", "terminated", "timed_out"]


@dataclass
class RepairRef:
    """A repair workflow the monitor started: its id and, when known, its run."""

    workflow_id: str
    run_id: str | None = None


@dataclass
class RepairEnd:
    """How a repair workflow ended, however it ended (design notes: every end is an event)."""

    workflow_id: str
    run_id: str | None
    status: EndStatus
    message: str
    """The workflow's own reason sentence, or what ended it (terminated: the reason given)."""
    runbook: RunbookResult | None = None
    restart: RestartResult | None = None

    @property
    def succeeded(self) -> bool:
        """The repair ran to its end and did what it set out to do."""
        if self.status != "completed":
            return False
        if self.runbook is not None:
            return self.runbook.outcome == "succeeded"
        return self.restart is not None and self.restart.ok


@dataclass(frozen=True)
class Notification:
    """Something an operator must hear about now: a freeze, a refusal, a repair that stopped."""

    kind: str
    """``frozen``, ``failover-refused``, ``repair-ended``, ``crash-looping``, ..."""
    service: str
    replica: str | None
    severity: str
    """``critical`` (a service is down or may be), ``high`` (redundancy lost), ``info``."""
    summary: str
    at: float
    workflow_id: str
    incident_id: str | None = None
    """The incident it belongs to, when one is open."""
