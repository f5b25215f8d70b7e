"""What an operator's update does to the monitor (the handlers in ``workflows.monitor``)."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from drc.names import restart_id
    from drc.operator import PauseRequest, RestartRequest, RetireRequest
from workflows.monitor_core import MonitorCore
from workflows.monitor_followups import unfreeze
from workflows.monitor_repairs import Repairs


async def operator_restart(r: Repairs, request: RestartRequest) -> str:
    """Restart now: clears the replica's crash loop and lifts its freeze first."""
    if r.c.restarting(request.replica):
        return f"{restart_id(r.c.key, request.replica)} is already running"
    repair = r.c.repair_of(request.replica)
    repair.crash_looping, repair.note = False, None
    unfreeze(r, request.replica, by=request.operator)
    reason = f"{request.operator} asked: {request.reason}"
    return await r.restart(request.replica, reason, severity="operator")


def operator_pause(core: MonitorCore, request: PauseRequest) -> str:
    """Stop watching and repairing; running repairs finish, their ends are still followed."""
    name = core.cfg.service.name
    if core.st.paused:
        return f"{name} was already paused"
    core.st.paused, core.interrupt = True, True
    core.decide(None, "paused", f"{request.operator} paused monitoring: {request.reason}")
    return f"{name} paused"


def operator_resume(r: Repairs, request: PauseRequest) -> str:
    """Watch and repair again, and lift every freeze; says what it did."""
    core, name = r.c, r.svc.name
    lifted = [s.name for s in r.svc.replicas if unfreeze(r, s.name, request.operator)]
    said = [f"lifted the freeze of {', '.join(lifted)}"] if lifted else []
    if core.st.paused:
        core.st.paused, core.interrupt = False, True  # the watch starts again
        core.decide(None, "resumed", f"{request.operator} resumed monitoring: {request.reason}")
        said.insert(0, f"{name} resumed")
    return "; ".join(said) or f"{name} was neither paused nor frozen"


def operator_retire(core: MonitorCore, request: RetireRequest) -> str:
    """Record why the monitor ends; the caller ends it once its handlers have finished."""
    why = f"{core.cfg.service.name} {request.reason} ({request.operator}): monitor ends"
    core.decide(None, "retired", why, severity="info")
    return why
