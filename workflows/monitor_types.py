"""The monitor's input: configuration (from the catalog) and carried state, kept apart.

``MonitorConfig`` is replaced whole when the catalog changes (``reconfigure``); ``MonitorState``
is what the monitor learned and carries across continue-as-new. Adding a field with a default
to either is a compatible change; anything else is not (ARCHITECTURE.md, "Changing a workflow").
"""

from __future__ import annotations

from dataclasses import dataclass, field

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from drc.catalog import Service
    from drc.incident import Incident, IncidentUpdate
    from drc.model import Decision, ReplicaTrack, Transition
    from drc.policy import ReplicaRepair
    from drc.sync import SyncStats
    from runbooks.runbook import Runbook

MAX_DECISIONS = 50
MAX_HISTORY_BEFORE_NEW_RUN = 5000


@dataclass
class MonitorConfig:
    """What the catalog says about the service and how to repair it."""

    service: Service
    supervisor_url: str
    runbooks: dict[str, Runbook] = field(default_factory=dict)
    allowed_commands: list[str] = field(default_factory=list)
    search_attributes: bool = True
    watch_max_duration_s: float = 1800.0
    max_history: int = MAX_HISTORY_BEFORE_NEW_RUN
    watch_group: str | None = None
    """The WatchGroup workflow that watches this service; None: a watch activity of its own."""
    incidents: bool = True
    """Keep incidents (store, notifications, reports); off only in tests of other things."""
    fleet: str | None = None
    """The Fleet workflow this monitor reports to and takes directives from (None: alone)."""
    vantage_points: list[str] = field(default_factory=list)
    """The catalog's vantage points: a failure is confirmed by a majority of them."""
    watch_from: str | None = None
    """The vantage point drc's own watch probes from (its view is that one's vote)."""


@dataclass
class RunningRepair:
    """A repair workflow the monitor started and follows until it ends, however it ends."""

    kind: str
    """``restart`` or the runbook's name (``failover``, ``reprotect-state``, ``drain``...)."""
    replica: str | None
    params: dict[str, str]
    trigger: str
    started_at: float
    run_id: str | None = None
    forced: bool = False
    attempt: int = 1


@dataclass
class MonitorState:
    """Everything the monitor learned; carried across continue-as-new."""

    tracks: dict[str, ReplicaTrack] = field(default_factory=dict)
    repairs: dict[str, ReplicaRepair] = field(default_factory=dict)
    paused: bool = False
    decisions: list[Decision] = field(default_factory=list)
    last_transition: Transition | None = None
    primary: str | None = None
    running: dict[str, RunningRepair] = field(default_factory=dict)
    failover_failures: list[float] = field(default_factory=list)
    sync: dict[str, SyncStats] = field(default_factory=dict)
    unprotected: str | None = None
    """A former primary not yet re-protected as the standby of the current one."""
    reprotect_attempts: int = 0
    watch_generation: int = 0
    """Rises whenever the watch must start again from this state (grouped watching)."""
    watch_seq: int = 0
    """The last watch report applied (reports are delivered at least once)."""
    registered: str | None = None
    """``<group>@<generation>`` registered with the watch group, if any."""
    watch_inputs: str | None = None
    """What the registered watch depends on (``monitor_watch.watch_inputs``)."""
    incident: Incident | None = None
    """The open incident (``workflows.monitor_incidents``)."""
    incident_notified: bool = False
    """An operator was paged for the open incident (so its resolution is paged too)."""
    last_incident_id: str | None = None
    availability: str = "up"
    """The service's availability as last recorded: ``up``, ``degraded`` or ``down``."""
    incident_seq: int = 0
    incident_outbox: list[IncidentUpdate] = field(default_factory=list)
    """Snapshots for the store not yet seen written (sent again by the next run)."""
    held_by: str | None = None
    """The root cause (a down dependency) whose repair holds this service's repairs."""
    root_incident: str | None = None
    brake: str = "normal"
    """The fleet's storm brake: ``normal``, ``paced`` (repairs by token) or ``frozen``."""
    brake_reason: str = ""
    evacuating: list[str] = field(default_factory=list)
    """Regions the fleet is evacuating: automatic repairs of replicas there wait for it."""
    token_seq: int = 0
    tokens_waiting: dict[str, int] = field(default_factory=dict)
    """Replica -> the token request sent for its automatic repair."""
    tokens_granted: list[str] = field(default_factory=list)
    fleet_sent: str | None = None
    """What was last reported to the fleet (a report is sent only when it changes)."""


@dataclass
class MonitorInput:
    """A monitor run's input: its configuration and the state carried from the last run."""

    config: MonitorConfig
    state: MonitorState = field(default_factory=MonitorState)
