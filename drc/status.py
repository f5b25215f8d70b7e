"""A service as its monitor sees it: the answer of the ``status`` query (``drc status``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from drc.model import Decision, ReplicaState, ServiceState, Transition
from drc.sync import SyncStats


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
    frozen_until: float | None = None
    """While frozen (flapping): when automatic restarts resume by themselves."""


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
    frozen: list[str] = field(default_factory=list)
    """Replicas whose automatic restarts are frozen (flapping)."""
    unprotected: str | None = None
    """A former primary that is not yet the standby of the current one (re-protection owed)."""
    watch_group: str | None = None
    """The watch group that probes this service (its live progress is there); None: alone."""
    tilt: str | None = None
    """Set while the service's watch distrusts itself (drc/tilt.py) and acts on nothing."""
