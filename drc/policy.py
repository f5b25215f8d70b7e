"""The monitor's choices, as pure functions: which standby, restart or not, drain or not.

No I/O and no clock: the caller passes what it knows and ``now``. Every choice comes back with
the sentence that explains it (logged, kept in the monitor's decisions, asserted in tests) and,
for a refusal, the command an operator runs to override it: drc never refuses without saying
what the operator can do instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from drc.catalog import Redundancy, Service
from drc.model import ReplicaState, ReplicaTrack
from drc.sync import Fitness, SyncStats, fitness

SERVING = (ReplicaState.HEALTHY, ReplicaState.DEGRADED)


@dataclass(frozen=True)
class StandbyChoice:
    """The standby to promote and why, or None, why not, and what overrides the refusal."""

    target: str | None
    reason: str
    override: str | None = None


@dataclass
class ReplicaRepair:
    """The monitor's repair memory of one replica, carried across continue-as-new."""

    restarts: list[float] = field(default_factory=list)
    crash_looping: bool = False
    note: str | None = None
    frozen_until: float | None = None
    """While set: flapping, automatic restarts held until then (or an operator's word)."""


@dataclass(frozen=True)
class Verdict:
    """What to do about one failed replica, and the sentence that says why."""

    action: str
    """``restart``, ``freeze``, ``crash-looping``, ``frozen`` (still), ``no-action``."""
    reason: str


def state_of(tracks: Mapping[str, ReplicaTrack], name: str) -> ReplicaState:
    """A replica's detector state; UNKNOWN for one never observed."""
    track = tracks.get(name)
    return track.state if track is not None else ReplicaState.UNKNOWN


def primary_alive(
    primary: str | None, tracks: Mapping[str, ReplicaTrack], sync: Mapping[str, SyncStats]
) -> bool:
    """The primary still answers: its heartbeats do, and no lag sample found it unreachable."""
    if primary is None or state_of(tracks, primary) is ReplicaState.FAILED:
        return False
    return all(stats.primary_reachable for stats in sync.values())


def choose_standby(
    service: Service,
    primary: str | None,
    tracks: Mapping[str, ReplicaTrack],
    sync: Mapping[str, SyncStats],
    wanted: str | None = None,
    force: bool = False,
) -> StandbyChoice:
    """The standby to fail over to (design notes §5).

    ``wanted`` is an operator's choice. Otherwise: serving standbys (healthy before degraded);
    for replicated state, only those fit to be promoted (``drc.sync.fitness``: judged from the
    last samples while the primary was alive once it is not), the most advanced first. With
    ``force`` the replication judgement is skipped (never the serving one).
    """
    name = service.name
    if service.redundancy is not Redundancy.ACTIVE_STANDBY:
        return StandbyChoice(
            None, f"{name} is {service.redundancy.value}: only active-standby fails over"
        )
    if wanted is not None:
        return _check_wanted(service, primary, tracks, sync, wanted, force)
    standbys = [r.name for r in service.replicas if r.name != primary]
    serving = [n for n in standbys if state_of(tracks, n) in SERVING]
    if not serving:
        states = ", ".join(f"{n} is {state_of(tracks, n).value}" for n in standbys)
        restart = f"drc restart {name} {standbys[0]}" if standbys else None
        return StandbyChoice(None, f"no healthy standby ({states})", restart)
    if not service.stateful or force:
        rank = {n: state_of(tracks, n) is not ReplicaState.HEALTHY for n in serving}
        best = sorted(serving, key=lambda n: (rank[n], _same_region(service, primary, n)))
        chosen = best[0]
        why = f"{chosen} is the {state_of(tracks, chosen).value} standby"
        passed = [n for n in best[1:] if rank[n] == rank[chosen]]
        return StandbyChoice(chosen, why + _region_reason(service, primary, chosen, passed))
    judged = {n: _fitness(service, primary, tracks, sync, n) for n in serving}
    fit = [n for n in serving if judged[n].ok]
    if not fit:
        return StandbyChoice(
            None,
            "; ".join(judged[n].reason for n in serving)
            + "; promoting could lose acknowledged writes",
            _force_command(name, None),
        )
    return _most_advanced(service, primary, fit, judged, tracks)


def _most_advanced(
    service: Service,
    primary: str | None,
    fit: list[str],
    judged: Mapping[str, Fitness],
    tracks: Mapping[str, ReplicaTrack],
) -> StandbyChoice:
    def rank(n: str) -> tuple[int, bool]:
        return -judged[n].offset, state_of(tracks, n) is not ReplicaState.HEALTHY

    ranked = sorted(fit, key=lambda n: (*rank(n), _same_region(service, primary, n)))
    chosen = ranked[0]
    why = f"{chosen} is the {state_of(tracks, chosen).value} standby: {judged[chosen].reason}"
    if len(ranked) > 1:
        others = ", ".join(f"{n} at {judged[n].offset}" for n in ranked[1:])
        best = judged[chosen].offset
        why += f"; the most advanced of {len(ranked)} fit standbys (offset {best}; {others})"
    passed = [n for n in ranked[1:] if rank(n) == rank(chosen)]
    return StandbyChoice(chosen, why + _region_reason(service, primary, chosen, passed))


def _region(service: Service, name: str | None) -> str | None:
    spec = service.replica(name) if name else None
    return spec.region if spec is not None else None


def _same_region(service: Service, primary: str | None, name: str) -> bool:
    """Whether ``name`` shares the failed primary's region.

    A standby elsewhere is preferred: whatever took the primary down may be taking its region.
    """
    return primary is not None and _region(service, name) == _region(service, primary)


def _region_reason(service: Service, primary: str | None, chosen: str, passed: list[str]) -> str:
    """Why the region decided between equal standbys, when it did."""
    same = [n for n in passed if _same_region(service, primary, n)]
    if not same or _same_region(service, primary, chosen):
        return ""
    return (
        f"; in {_region(service, chosen)}, preferred to {', '.join(same)} in "
        f"{_region(service, primary)}, the failed primary's region"
    )


def _check_wanted(
    service: Service,
    primary: str | None,
    tracks: Mapping[str, ReplicaTrack],
    sync: Mapping[str, SyncStats],
    wanted: str,
    force: bool,
) -> StandbyChoice:
    if service.replica(wanted) is None:
        known = ", ".join(r.name for r in service.replicas)
        return StandbyChoice(None, f"unknown replica {wanted!r} of {service.name} (known: {known})")
    if wanted == primary:
        return StandbyChoice(None, f"{wanted} is already the primary")
    state = state_of(tracks, wanted)
    if state not in SERVING:
        return StandbyChoice(
            None,
            f"{wanted} is {state.value}, not a healthy standby",
            f"drc restart {service.name} {wanted}",
        )
    why = f"{wanted} was chosen by the operator and is {state.value}"
    if not service.stateful:
        return StandbyChoice(wanted, why)
    if force:
        return StandbyChoice(wanted, why)
    judged = _fitness(service, primary, tracks, sync, wanted)
    if not judged.ok:
        reason = f"{judged.reason}; promoting it could lose acknowledged writes"
        return StandbyChoice(None, reason, _force_command(service.name, wanted))
    return StandbyChoice(wanted, f"{why}; {judged.reason}")


def _fitness(
    service: Service,
    primary: str | None,
    tracks: Mapping[str, ReplicaTrack],
    sync: Mapping[str, SyncStats],
    name: str,
) -> Fitness:
    return fitness(
        sync.get(name),
        name,
        service.thresholds.sync_lag_ms,
        primary_alive(primary, tracks, sync),
        service.failover.max_lag_on_failover_ms,
    )


def _force_command(service: str, to: str | None) -> str:
    target = f" --to {to}" if to else ""
    return f'drc failover {service}{target} --force --reason "..."'


def freeze_reason(service: str, replica: str, freeze_s: float) -> str:
    """The sentence of a freeze, naming the commands that lift it."""
    return (
        f"{replica} is flapping: automatic restarts frozen for {freeze_s:g} s; an operator must "
        f"look (drc resume {service} or drc restart {service} {replica} lifts it)"
    )


def restart_verdict(
    service: Service, replica: str, repair: ReplicaRepair, flapping: bool, now: float
) -> Verdict:
    """Whether to restart a failed replica now; prunes ``repair``'s restart window.

    Flapping freezes automatic restarts for ``thresholds.flap_freeze_s`` (the caller records
    the freeze: loud, bounded, lifted by ``drc resume`` or ``drc restart``); ``crash_loop_max``
    restarts within the window end in a crash loop (``repair.crash_looping``), which only an
    operator's restart or the replica's recovery clears.
    """
    spec, policy = service.replica(replica), service.restart
    if spec is None or spec.process is None:
        return Verdict("no-action", f"{replica} has no process control: not restarting")
    if not policy.enabled:
        return Verdict("no-action", f"restart is disabled for {service.name}: not restarting")
    if repair.frozen_until is not None and now < repair.frozen_until:
        left = repair.frozen_until - now
        return Verdict(
            "frozen",
            f"{replica} is frozen for another {left:.0f} s: not restarting (drc resume "
            f"{service.name} or drc restart {service.name} {replica} lifts it)",
        )
    if flapping:
        return Verdict(
            "freeze", freeze_reason(service.name, replica, service.thresholds.flap_freeze_s)
        )
    repair.restarts = [t for t in repair.restarts if now - t < policy.crash_loop_window_s]
    if len(repair.restarts) >= policy.crash_loop_max:
        repair.crash_looping = True
        repair.note = (
            f"{replica} failed again after {len(repair.restarts)} restarts within "
            f"{policy.crash_loop_window_s:g} s: crash-looping, not restarting again "
            f"(drc restart {service.name} {replica} clears it)"
        )
        return Verdict("crash-looping", repair.note)
    return Verdict("restart", f"restarting {replica}")


def drain_verdict(service: Service, replica: str, drained: set[str]) -> Verdict:
    """Whether to take a failed replica of an active-active service out of rotation.

    Never the last replica in rotation: with every other one drained, drc's own view may be
    what failed, and the traffic manager's health checks are left to decide.
    """
    if service.redundancy is not Redundancy.ACTIVE_ACTIVE or service.frontend is None:
        return Verdict("no-action", f"{service.name} has no active-active front end to drain")
    if replica in drained:
        return Verdict("no-action", f"{replica} is already drained")
    in_rotation = [r.name for r in service.replicas if r.name not in drained]
    if in_rotation == [replica]:
        others = ", ".join(sorted(drained)) or "none"
        return Verdict(
            "no-action",
            f"not draining {replica}: it is the last replica in rotation (drained: {others}); "
            "the traffic manager's own health checks decide",
        )
    return Verdict("drain", f"draining {replica} until it is healthy again")
