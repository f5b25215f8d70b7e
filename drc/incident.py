"""Incidents as the monitor records them: what failed, when, which runs repaired it.

Plain dataclasses shared by the monitor (which keeps the open incident in its state and sends
snapshots), the ``record_incident`` activity (which writes them to the store, idempotently)
and the report generator (which reads them back with the workflow histories). Times are Unix
seconds here; the store keeps them as UTC timestamps and reports print ISO-8601.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

IncidentStatus = Literal["open", "resolved"]
Availability = Literal["up", "degraded", "down"]
"""A service's availability: ``down`` while no replica takes its traffic, ``degraded`` while
it serves without its full redundancy, ``up`` otherwise."""


@dataclass
class FailureRecord:
    """One entry of the failures list: a replica failed, a repair was refused or stopped."""

    key: str
    """Unique and stable across retries (``<service>/<replica>/<kind>/<at in ms>``)."""
    service: str
    replica: str | None
    type: str
    """``replica_failed``, ``service_down``, ``failover_refused``, ``frozen``, ``crash_looping``,
    ``repair_failed``, ``repair_stopped``."""
    severity: str
    """``critical``, ``high`` or ``medium``."""
    description: str
    at: float
    incident_id: str | None = None


@dataclass
class AvailabilityChange:
    """A service's availability changed at ``at`` (a replica's first failed probe, a repair)."""

    service: str
    at: float
    state: Availability
    reason: str


@dataclass
class IncidentRun:
    """A workflow run that belongs to an incident: the monitor, or a repair it started."""

    workflow_id: str
    run_id: str | None
    kind: str
    """``monitor``, ``restart``, ``failover``, ``failover-state``, ``reprotect``, ``drain``..."""
    started_at: float


@dataclass
class IncidentNote:
    """A decision the monitor took during the incident, with its sentence."""

    at: float
    action: str
    replica: str | None
    reason: str


@dataclass
class Incident:
    """One incident of one service, from its first failed probe until redundancy is back.

    ``started_at`` is the impact's start (the first failed probe), ``detected_at`` when drc
    judged it, ``mitigated_at`` when the service took traffic again (or never stopped: then
    it equals ``detected_at``), ``resolved_at`` when it was healthy and redundant again.
    """

    id: str
    service: str
    type: str
    """``replica_failed``, ``service_down``, ``operator_failover``, ``operator_restart``..."""
    severity: str
    cause: str
    """The root cause as drc saw it: the sentence of the detection that opened the incident."""
    started_at: float
    detected_at: float
    replica: str | None = None
    status: IncidentStatus = "open"
    outcome: str = ""
    """How it ended, one sentence (set when resolved)."""
    mitigated_at: float | None = None
    resolved_at: float | None = None
    near_miss: bool = False
    """Self-healed below the incident threshold: a one-line record, no full report."""
    forced_by: str | None = None
    """The operator who forced a failover in this incident, if one did."""
    runs: list[IncidentRun] = field(default_factory=list)
    notes: list[IncidentNote] = field(default_factory=list)
    version: int = 0
    """Rises with every snapshot: the store keeps the highest it has seen."""


@dataclass
class IncidentUpdate:
    """What the monitor sends to the store: the incident as it stands and what is new.

    Applying the same update twice, or an older one after a newer, changes nothing.
    """

    incident: Incident | None
    failures: list[FailureRecord] = field(default_factory=list)
    changes: list[AvailabilityChange] = field(default_factory=list)
    seq: int = 0
    """The monitor's number for this update (its outbox removes it once written)."""
