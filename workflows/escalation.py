"""Pure choices the monitor makes when it escalates beyond a restart (no I/O, no clock)."""

from __future__ import annotations

from drc.catalog import Redundancy, Service
from drc.model import ReplicaState, ReplicaTrack
from drc.sync import SyncStats

SERVING = (ReplicaState.HEALTHY, ReplicaState.DEGRADED)


def choose_standby(
    service: Service,
    primary: str | None,
    tracks: dict[str, ReplicaTrack],
    wanted: str | None,
    sync: dict[str, SyncStats] | None = None,
) -> tuple[str | None, str]:
    """The standby to fail over to and why, or None and why there is none.

    ``wanted`` is an operator's choice; otherwise the first healthy standby in catalog order
    (a degraded one only when no standby is healthy). With ``sync`` (replicated state, not
    forced), a standby whose replication is ``sync_degraded`` is never chosen: promoting it
    could lose acknowledged writes (design notes §5).
    """
    if service.redundancy is not Redundancy.ACTIVE_STANDBY:
        return None, f"{service.name} is {service.redundancy.value}: only active-standby fails over"
    behind = _behind(service, sync or {})
    if wanted is not None:
        if wanted in behind:
            return None, behind[wanted]
        return _check_wanted(service, primary, tracks, wanted)
    standbys = [r.name for r in service.replicas if r.name != primary and r.name not in behind]
    if not standbys and behind:
        return None, "; ".join(behind.values())
    for acceptable in ((ReplicaState.HEALTHY,), SERVING):
        for name in standbys:
            if _state(tracks, name) in acceptable:
                return name, f"{name} is the {_state(tracks, name).value} standby"
    states = ", ".join(f"{n} is {_state(tracks, n).value}" for n in standbys)
    return None, f"no healthy standby ({states})"


def _check_wanted(
    service: Service, primary: str | None, tracks: dict[str, ReplicaTrack], wanted: str
) -> tuple[str | None, str]:
    if service.replica(wanted) is None:
        known = ", ".join(r.name for r in service.replicas)
        return None, f"unknown replica {wanted!r} of {service.name} (known: {known})"
    if wanted == primary:
        return None, f"{wanted} is already the primary"
    state = _state(tracks, wanted)
    if state not in SERVING:
        return None, f"{wanted} is {state.value}, not a healthy standby"
    return wanted, f"{wanted} was chosen by the operator and is {state.value}"


def _state(tracks: dict[str, ReplicaTrack], name: str) -> ReplicaState:
    track = tracks.get(name)
    return track.state if track is not None else ReplicaState.UNKNOWN


def _behind(service: Service, sync: dict[str, SyncStats]) -> dict[str, str]:
    """Standbys whose replication is degraded, with the lag that says so."""
    limit = service.failover.max_lag_on_failover_ms
    out = {}
    for name, stats in sync.items():
        if stats.state != "sync_degraded":
            continue
        lag = "unmeasurable" if stats.last_lag_ms is None else f"{stats.last_lag_ms:.1f} ms"
        gap = stats.primary_offset - stats.replica_offset
        out[name] = (
            f"{name} is sync_degraded: lag {lag} (max_lag_on_failover {limit:g} ms), "
            f"offset gap {gap} bytes; promoting it could lose acknowledged writes (--force "
            "overrides)"
        )
    return out
