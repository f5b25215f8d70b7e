"""What a service's watch takes, reports while it runs, and returns (design notes §2)."""

from __future__ import annotations

from dataclasses import dataclass, field

from drc.catalog import Service
from drc.model import ReplicaTrack, Transition
from drc.sync import SyncEvent, SyncStats


@dataclass
class WatchInput:
    """What ``watch_service`` needs: the service and the detector memory to resume from."""

    service: Service
    tracks: dict[str, ReplicaTrack] = field(default_factory=dict)
    max_duration_s: float = 1800.0
    primary: str | None = None
    """The current primary (replicated state: the watch measures each standby's lag to it)."""
    sync: dict[str, SyncStats] = field(default_factory=dict)
    supervisor_url: str | None = None
    """Process control, asked whether a replica that misses heartbeats is still starting."""


@dataclass
class WatchResult:
    """Why a watch returned: the transitions seen (empty when it only ran its course)."""

    transitions: list[Transition]
    tracks: dict[str, ReplicaTrack]
    sync_events: list[SyncEvent] = field(default_factory=list)
    sync: dict[str, SyncStats] = field(default_factory=dict)


@dataclass
class WatchProgress:
    """What a watch heartbeats: enough for a retry to resume, and for ``drc status`` to read."""

    tracks: dict[str, ReplicaTrack]
    sync: dict[str, SyncStats] = field(default_factory=dict)
    ticks: int = 0
    skipped_ticks: int = 0
    max_lateness_ms: float = 0.0
    last_transitions: list[Transition] = field(default_factory=list)
