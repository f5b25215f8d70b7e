"""Pure choices the monitor makes when it escalates beyond a restart (no I/O, no clock)."""

from __future__ import annotations

from drc.model import ReplicaState, ReplicaTrack
from runbooks.catalog import Redundancy, Service

SERVING = (ReplicaState.HEALTHY, ReplicaState.DEGRADED)


def choose_standby(
    service: Service, primary: str | None, tracks: dict[str, ReplicaTrack], wanted: str | None
) -> tuple[str | None, str]:
    """The standby to fail over to and why, or None and why there is none.

    ``wanted`` is an operator's choice; otherwise the first healthy standby in catalog order
    (a degraded one only when no standby is healthy).
    """
    if service.redundancy is not Redundancy.ACTIVE_STANDBY:
        return None, f"{service.name} is {service.redundancy.value}: only active-standby fails over"
    if wanted is not None:
        return _check_wanted(service, primary, tracks, wanted)
    standbys = [r.name for r in service.replicas if r.name != primary]
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
