"""What detection is made of: probe results, replica tracks, transitions and decisions.

Plain dataclasses: they travel between workflows and activities through the pydantic data
converter, are carried across continue-as-new, and are asserted on in tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class ReplicaState(StrEnum):
    """Where a replica stands (design notes §3); the last three are overlays of the monitor."""

    UNKNOWN = "unknown"
    HEALTHY = "healthy"
    SUSPECT = "suspect"
    DEGRADED = "degraded"
    FAILED = "failed"
    RECOVERING = "recovering"
    CRASH_LOOPING = "crash_looping"
    FROZEN = "frozen"
    """Flapping: automatic restarts of this replica are held until an operator or the expiry."""


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
    last_ok_at: float | None = None
    """When the replica last answered a heartbeat: a dead primary is judged from then."""
    starting: str | None = None
    """Set while misses are forgiven because process control says the replica is starting."""
    dead: str | None = None
    """Set while process control confirms a missing replica's process is gone."""
    failing_since: float | None = None
    """The first failed probe of the current run of misses (an incident's impact start)."""
    latency_baseline_ms: float | None = None
    """The replica's normal heartbeat latency, learned from clean samples (drc/baseline.py)."""
    latency_deviation_ms: float = 0.0
    """How far clean samples stray from the baseline on average (TCP's rttvar)."""
    latency_samples: int = 0
    """Clean samples the baseline has learned from; it judges from ``min_samples`` on."""
    consecutive_slow: int = 0
    """Answered heartbeats in a row that were slow (absolute or learned limit)."""
    slow_since: float | None = None
    """When the current run of slow heartbeats began: a long one re-teaches the baseline."""
    error_window: str = ""
    """The last ``error_rate_window`` probe outcomes, oldest first: "1" failed, "0" passed."""
    condition: str | None = None
    """While degraded: the condition last reported (drc/conditions.py)."""


@dataclass(frozen=True)
class Transition:
    """A change of a replica's state, with the sentence that explains it."""

    replica: str
    old: ReplicaState
    new: ReplicaState
    reason: str
    at: float
    flapping: bool = False
    condition: str | None = None
    """What it is about: ``down``, ``error_rate_increase``, ``health_check_failing``,
    ``latency_degradation`` (drc/conditions.py); None for a recovery."""
    severity: str | None = None
    """``critical`` (down), ``high`` (error rate), ``medium`` (latency, failing health check)."""


@dataclass(frozen=True)
class Decision:
    """What the monitor decided and why: logged, kept in its status, shown in reports."""

    at: float
    replica: str | None
    action: str
    reason: str
