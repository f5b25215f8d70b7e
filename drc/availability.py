"""A service's availability now, from its replicas' tracks: pure, used by the monitor."""

from __future__ import annotations

from drc.catalog import Service
from drc.detector import service_state
from drc.incident import Availability
from drc.model import ReplicaState, ReplicaTrack, ServiceState
from drc.sync import SyncStats


def availability_of(
    service: Service,
    primary: str | None,
    tracks: dict[str, ReplicaTrack],
    sync: dict[str, SyncStats],
    unprotected: str | None,
) -> Availability | None:
    """The service's availability, or None while a replica's state is still unknown.

    ``down``: no replica takes its traffic; ``degraded``: serving without its full redundancy
    (a replica out, a former primary not yet a standby, a standby out of sync); ``up``.
    """
    states = {
        r.name: (tracks[r.name].state if r.name in tracks else ReplicaState.UNKNOWN)
        for r in service.replicas
    }
    if any(s is ReplicaState.UNKNOWN for s in states.values()):
        return None
    state = service_state(service.model_copy(update={"primary": primary}), states)
    if state is ServiceState.DOWN:
        return "down"
    degraded_sync = any(s.state == "sync_degraded" for s in sync.values())
    if state is ServiceState.DEGRADED or unprotected or degraded_sync:
        return "degraded"
    return "up"


def down_since(
    service: Service, primary: str | None, tracks: dict[str, ReplicaTrack], now: float
) -> float:
    """When the service stopped serving: the first failed probe of the replica(s) it lost.

    Active-standby: the primary's. Otherwise the last replica to start failing (the service
    was serving until then).
    """
    names = [primary] if primary else [r.name for r in service.replicas]
    since = [t.failing_since for n in names if (t := tracks.get(n)) and t.failing_since]
    return max(since) if since else now


def availability_reason(service: str, state: Availability, primary: str | None) -> str:
    """The sentence recorded with an availability change."""
    if state == "down":
        return f"{service} is down: {primary or 'no replica'} takes no traffic"
    if state == "degraded":
        return f"{service} serves without its full redundancy"
    return f"{service} is healthy and redundant"
