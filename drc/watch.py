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
    tilt: str | None = None
    """Why the watch distrusts itself now (drc/tilt.py), or None."""


@dataclass
class WatchSpec:
    """What a monitor asks its watch group to watch (design: one watch activity per group).

    ``generation`` rises whenever the monitor wants the watch to start again from ``tracks``
    (new primary, new configuration, a lifted freeze, a pause): an equal generation is the same
    watch, and registering it again changes nothing.
    """

    service: Service
    monitor_id: str
    generation: int
    tracks: dict[str, ReplicaTrack] = field(default_factory=dict)
    primary: str | None = None
    sync: dict[str, SyncStats] = field(default_factory=dict)
    supervisor_url: str | None = None
    paused: bool = False
    seq_floor: int = 0
    """Reports the monitor already applied: a new group numbers its reports above this."""


@dataclass
class WatchReport:
    """A watched service's transitions, sent by the group's activity to the service's monitor.

    Delivered at least once: the monitor applies a report only if ``seq`` is above the last it
    applied for this ``generation``.
    """

    service: str
    generation: int
    seq: int
    transitions: list[Transition]
    tracks: dict[str, ReplicaTrack]
    sync_events: list[SyncEvent] = field(default_factory=list)
    sync: dict[str, SyncStats] = field(default_factory=dict)


@dataclass
class MemberProgress:
    """A group member's watch as the group's activity heartbeats it."""

    generation: int
    seq: int
    tracks: dict[str, ReplicaTrack]
    sync: dict[str, SyncStats] = field(default_factory=dict)
    ticks: int = 0
    skipped_ticks: int = 0
    max_lateness_ms: float = 0.0
    tilt: str | None = None
    """Why the watch distrusts itself now (drc/tilt.py), or None."""


@dataclass
class GroupProgress:
    """What the group's activity heartbeats and returns when it ends its run.

    Every member's progress, and the reports not yet delivered (a retry delivers them).
    """

    members: dict[str, MemberProgress] = field(default_factory=dict)
    outbox: list[WatchReport] = field(default_factory=list)
    specs: dict[str, WatchSpec] = field(default_factory=dict)
    """The members being watched (tracks and sync left out: they are in ``members``), so that a
    retry on another worker resumes every member at once, without asking the group."""
    version: int = 0


@dataclass
class WatchGroupInput:
    """A watch group's members (their latest specs) and what its last activity run left."""

    group: str
    members: dict[str, WatchSpec] = field(default_factory=dict)
    version: int = 0
    progress: GroupProgress = field(default_factory=GroupProgress)
    max_run_s: float = 1800.0
