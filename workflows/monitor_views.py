"""What the monitor shows: its status, and the plans its dry runs answer with (read-only).

Queries must not change anything: every function here only reads the monitor's state.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from drc.detector import is_suspect, service_state
    from drc.model import ReplicaState, ReplicaTrack
    from drc.names import restart_id
    from drc.operator import FailoverRequest, GuardCheck, Plan, ReprotectRequest, RestartRequest
    from drc.policy import SERVING, ReplicaRepair, primary_alive, state_of
    from drc.status import MonitorStatus, ReplicaStatus
    from drc.sync import fitness
    from runbooks.runbook import describe_steps
from workflows.monitor_core import MonitorCore
from workflows.monitor_repairs import Repairs
from workflows.monitor_types import MonitorConfig


def status_of(core: MonitorCore) -> MonitorStatus:
    """The ``status`` query's answer."""
    cfg, st = core.cfg, core.st
    replicas = [_replica_status(core, r.name) for r in cfg.service.replicas]
    states = {r.name: r.state for r in replicas}
    current = cfg.service.model_copy(update={"primary": st.primary})
    state = service_state(current, states)
    return MonitorStatus(
        name=cfg.service.name,
        state=state.PAUSED if st.paused else state,
        redundancy=cfg.service.redundancy.value,
        paused=st.paused,
        replicas=replicas,
        decisions=list(st.decisions),
        last_transition=st.last_transition,
        primary=st.primary,
        frontend=cfg.service.frontend,
        repairs_running=sorted(st.running),
        sync=list(st.sync.values()),
        frozen=[r.name for r in replicas if r.frozen_until is not None],
        unprotected=st.unprotected,
        watch_group=cfg.watch_group,
    )


def _replica_status(core: MonitorCore, name: str) -> ReplicaStatus:
    spec = core.cfg.service.replica(name)
    assert spec is not None
    track = core.st.tracks.get(name) or ReplicaTrack()
    repair = core.st.repairs.get(name) or ReplicaRepair()
    frozen = (
        repair.frozen_until if repair.frozen_until and repair.frozen_until > core.now() else None
    )
    state = track.state
    if repair.crash_looping:
        state = ReplicaState.CRASH_LOOPING
    elif core.restarting(name):
        state = ReplicaState.RECOVERING
    elif frozen is not None and state is ReplicaState.FAILED:
        state = ReplicaState.FROZEN
    elif is_suspect(track):
        state = ReplicaState.SUSPECT
    return ReplicaStatus(
        name=name,
        region=spec.region,
        url=str(spec.url),
        state=state,
        latency_ms=track.latency_ms,
        consecutive_failures=track.consecutive_failures,
        last_error=track.last_error,
        since=track.since,
        restarts_in_window=len(repair.restarts),
        note=repair.note or track.starting,
        frozen_until=frozen,
    )


def plan_failover(r: Repairs, request: FailoverRequest, problem: str | None) -> Plan:
    """What a failover would do now: the target and why, every guard, the runbook's steps."""
    svc, st = r.svc, r.c.st
    wid = r.failover_id()
    guards = [
        GuardCheck("one failover at a time", wid not in st.running, _running(r, wid)),
    ]
    blocked = r.failover_blocker()
    possible = f"{r.runbook_name('failover')} runbook loaded; {svc.name} is active-standby"
    guards.append(
        GuardCheck("failover possible", blocked is None, blocked[0] if blocked else possible)
    )
    if st.primary is not None:
        alive = primary_alive(st.primary, st.tracks, st.sync)
        guards.append(
            GuardCheck(
                "primary", not alive, _primary_line(st.primary, st.tracks.get(st.primary), alive)
            )
        )
    for spec in svc.replicas:
        if spec.name == st.primary:
            continue
        state = state_of(st.tracks, spec.name)
        guards.append(
            GuardCheck(f"{spec.name} serving", state in SERVING, f"{spec.name} is {state.value}")
        )
        if svc.stateful:
            fit = fitness(
                st.sync.get(spec.name),
                spec.name,
                svc.thresholds.sync_lag_ms,
                primary_alive(st.primary, st.tracks, st.sync),
                svc.failover.max_lag_on_failover_ms,
            )
            label = f"{spec.name} caught up" + (" (skipped: --force)" if request.force else "")
            guards.append(GuardCheck(label, fit.ok or request.force, fit.reason))
    choice = r.choose(request.to, request.force)
    guards.append(GuardCheck("target", choice.target is not None, choice.reason))
    steps: list[str] = []
    runbook = r.c.cfg.runbooks.get(r.runbook_name("failover"))
    if choice.target is not None and runbook is not None:
        params = {"from_replica": st.primary or "", "to_replica": choice.target}
        if svc.stateful:
            params.update(r.state_evidence(st.primary or "", choice.target, request.force))
        steps = describe_steps(runbook, svc, r.c.cfg.supervisor_url, params)
    return Plan("failover", svc.name, choice.target, choice.reason, guards, steps, problem, wid)


def _running(r: Repairs, wid: str) -> str:
    if wid in r.c.st.running:
        return f"{wid} is running: a request attaches to it"
    return "no failover running"


def _primary_line(primary: str, track: ReplicaTrack | None, alive: bool) -> str:
    state = track.state.value if track is not None else "unknown"
    seen = f", last answered at {track.last_ok_at:.3f}" if track and track.last_ok_at else ""
    verdict = "alive (a failover now is a switchover)" if alive else "not answering"
    return f"{primary} is {state}{seen}: {verdict}"


def restart_refusal(r: Repairs, request: RestartRequest) -> str | None:
    """Why an operator's restart is refused, naming what to do instead; None when it may run."""
    svc = r.svc
    spec = svc.replica(request.replica)
    if spec is None:
        known = ", ".join(x.name for x in svc.replicas)
        return f"unknown replica {request.replica!r} of {svc.name} (known: {known})"
    if spec.process is None:
        return (
            f"{request.replica} has no process control configured (catalog "
            f"services[{svc.name}].replicas[{request.replica}].process; then drc reload)"
        )
    if r.owned(request.replica):
        running = ", ".join(sorted(r.c.st.running))
        return f"{request.replica} is being worked on by {running}: wait for it, or cancel it"
    return None


def plan_restart(r: Repairs, request: RestartRequest) -> Plan:
    """What an operator's restart would do now; changes nothing."""
    svc, st = r.svc, r.c.st
    refusal = restart_refusal(r, request)
    name, wid = request.replica, restart_id(r.c.key, request.replica)
    spec = svc.replica(name)
    repair = st.repairs.get(name) or ReplicaRepair()
    state = state_of(st.tracks, name)
    guards = [
        GuardCheck(
            "known replica with process control",
            refusal is None,
            refusal or f"{name} runs as {spec.process if spec else '?'}",
        ),
        GuardCheck(
            "one restart at a time", not r.c.restarting(name), _restart_running(r, name, wid)
        ),
        GuardCheck(
            "crash loop",
            True,
            "cleared by this restart" if repair.crash_looping else "not crash-looping",
        ),
        GuardCheck(
            "freeze", True, "lifted by this restart" if repair.frozen_until else "not frozen"
        ),
        GuardCheck("state now", True, f"{name} is {state.value}"),
    ]
    if name == st.primary and svc.redundancy.value == "active-standby":
        guards.append(
            GuardCheck(
                "serving",
                False,
                f"{name} is the primary: restarting it interrupts {svc.name}; a failover keeps "
                f"it serving (drc failover {svc.name} --dry-run)",
            )
        )
    process = spec.process if spec else "?"
    timeout = svc.restart.health_timeout_s
    steps = [
        f"1. stop {process} through supervisord (SIGCONT first; SIGKILL after stopwaitsecs)",
        f"2. start {process}",
        f"3. wait until {name}'s health probe passes (up to {timeout:g} s)",
    ]
    because = f"{request.operator} asked: {request.reason}"
    return Plan("restart", svc.name, name, because, guards, steps, refusal, wid)


def _restart_running(r: Repairs, name: str, wid: str) -> str:
    return f"{wid} is running: a request answers so" if r.c.restarting(name) else "none running"


def reprotect_refusal(r: Repairs, request: ReprotectRequest) -> str | None:
    """Why an operator's re-protection is refused; None when it may run."""
    st, name = r.c.st, r.svc.name
    old = request.replica or st.unprotected
    if old is None:
        return f"{name} has no replica waiting to be re-protected (name one: --replica)"
    if r.svc.replica(old) is None or old == st.primary:
        return f"{old} is not a former primary of {name} that can be re-protected"
    if r.busy(old):
        return f"a repair is already working on {old} ({', '.join(sorted(st.running))})"
    return None


def what_changed(old: MonitorConfig, new: MonitorConfig, primary: str | None) -> str:
    """The decision sentence of a reconfiguration."""
    changed = [
        name
        for name in ("service", "supervisor_url", "runbooks", "allowed_commands")
        if getattr(old, name) != getattr(new, name)
    ]
    said = f"configuration of {new.service.name} changed: {', '.join(changed) or 'settings'}"
    if new.service.primary != old.service.primary and new.service.primary != primary:
        said += (
            f"; the catalog now names {new.service.primary} primary, {primary} stays primary "
            f"until a failover (drc failover {new.service.name} --to {new.service.primary})"
        )
    return said
