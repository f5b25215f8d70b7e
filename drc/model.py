"""Runtime types that travel between workflows and activities (dataclasses, one in, one out)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from drc.catalog import Replica, Service
from drc.sync import SyncEvent, SyncStats


class ReplicaState(StrEnum):
    """Where a replica stands (design notes §3)."""

    UNKNOWN = "unknown"
    HEALTHY = "healthy"
    SUSPECT = "suspect"
    DEGRADED = "degraded"
    FAILED = "failed"
    RECOVERING = "recovering"
    CRASH_LOOPING = "crash_looping"


class ServiceState(StrEnum):
    """A service's state, derived from its replicas and its redundancy mode."""

    UNKNOWN = "unknown"
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    DOWN = "down"
    PAUSED = "paused"


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of one probe: never a fixed answer, always what the wire said."""

    ok: bool
    latency_ms: float
    error: str | None = None
    detail: str | None = None


@dataclass
class ReplicaTrack:
    """The detector's memory of one replica; carried in heartbeats and across continue-as-new."""

    state: ReplicaState = ReplicaState.UNKNOWN
    consecutive_failures: int = 0
    consecutive_successes: int = 0
    consecutive_degraded: int = 0
    consecutive_clean: int = 0
    latency_ms: float | None = None
    last_error: str | None = None
    health_error: str | None = None
    since: float = 0.0
    flapping: bool = False
    transition_times: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Transition:
    """A change of a replica's state, with the sentence that explains it."""

    replica: str
    old: ReplicaState
    new: ReplicaState
    reason: str
    at: float
    flapping: bool = False


@dataclass
class WatchInput:
    """What ``watch_service`` needs: the service and the detector memory to resume from."""

    service: Service
    tracks: dict[str, ReplicaTrack] = field(default_factory=dict)
    max_duration_s: float = 1800.0
    primary: str | None = None
    """The current primary (replicated state: the watch measures each standby's lag to it)."""
    sync: dict[str, SyncStats] = field(default_factory=dict)


@dataclass
class WatchResult:
    """Why a watch returned: the transitions seen (empty when it only ran its course)."""

    transitions: list[Transition]
    tracks: dict[str, ReplicaTrack]
    sync_events: list[SyncEvent] = field(default_factory=list)
    sync: dict[str, SyncStats] = field(default_factory=dict)


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
    started_at: float
    finished_at: float


@dataclass(frozen=True)
class Decision:
    """What the monitor decided and why: logged, kept in its status, shown in reports."""

    at: float
    replica: str | None
    action: str
    reason: str


@dataclass
class ReplicaRepair:
    """The monitor's repair memory for one replica."""

    restarts: list[float] = field(default_factory=list)
    restarting: bool = False
    crash_looping: bool = False
    note: str | None = None


@dataclass
class ReplicaStatus:
    """One replica as ``drc status`` shows it."""

    name: str
    region: str
    url: str
    state: ReplicaState
    latency_ms: float | None
    consecutive_failures: int
    last_error: str | None
    since: float
    restarts_in_window: int = 0
    note: str | None = None
    traffic: str | None = None


@dataclass
class MonitorStatus:
    """A service as its monitor sees it: the answer of the ``status`` query."""

    name: str
    state: ServiceState
    redundancy: str
    paused: bool
    replicas: list[ReplicaStatus]
    decisions: list[Decision]
    last_transition: Transition | None = None
    primary: str | None = None
    frontend: str | None = None
    repairs_running: list[str] = field(default_factory=list)
    sync: list[SyncStats] = field(default_factory=list)


@dataclass(frozen=True)
class RestartRequest:
    """An operator's request to restart a replica."""

    replica: str
    reason: str = "requested by an operator"
    operator: str = "operator"


@dataclass(frozen=True)
class PauseRequest:
    """An operator's request to pause or resume automatic monitoring and repair."""

    reason: str = ""
    operator: str = "operator"


@dataclass(frozen=True)
class FailoverRequest:
    """An operator's request to fail an active/standby service over (to a chosen standby)."""

    to: str | None = None
    reason: str = "requested by an operator"
    operator: str = "operator"
    force: bool = False
    """Promote even a replica that has not caught up (replicated state): data may be lost."""


@dataclass
class RunningRunbook:
    """A runbook the monitor started and waits on (by workflow id)."""

    runbook: str
    params: dict[str, str]
    trigger: str
