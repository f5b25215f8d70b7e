"""Dry runs: the monitor's plan (its ``plan_*`` query) plus the runbook's guards run live.

Nothing here changes the world: the live checks are the read-only probes the runbook's own
guards make (a replica's health, a Redis server's replication state, process control's view).
"""

from __future__ import annotations

from activities.probes.engine import ProbeEngine
from activities.process_control import SupervisorController
from activities.state import Endpoint, RedisReplicator, StateError
from drc.catalog import Catalog, Service
from drc.credentials import Credentials
from drc.errors import ProcessControlError
from drc.operator import GuardCheck, Plan


async def live_checks(
    catalog: Catalog, service: Service, plan: Plan, supervisor_login: Credentials | None = None
) -> list[GuardCheck]:
    """The read-only guards of ``plan``'s repair, evaluated now against the real replicas.

    ``supervisor_login``: what process control logs in to supervisord with (None: no login).
    """
    target = service.replica(plan.target) if plan.target else None
    if target is None:
        return []
    checks: list[GuardCheck] = []
    async with ProbeEngine() as engine:
        result = await engine.health(target, 2000)
        detail = f"{result.latency_ms:.1f} ms" if result.ok else (result.error or "unhealthy")
        checks.append(GuardCheck(f"{target.name} health now", result.ok, detail))
    if plan.action == "restart" and target.process is not None:
        url = str(catalog.process_control.supervisor_url)
        checks.append(await _process(url, target.process, supervisor_login))
    if plan.action == "failover" and target.protocol == "redis":
        checks.append(await _replication(target.name, str(target.url)))
    return checks


async def _process(url: str, process: str, login: Credentials | None) -> GuardCheck:
    import httpx

    async with httpx.AsyncClient(timeout=5) as http:
        control = SupervisorController(http, timeout_s=5, credentials=login)
        try:
            info = await control.info(url, process)
        except ProcessControlError as exc:
            return GuardCheck(f"{process} under process control", False, str(exc))
    return GuardCheck(f"{process} under process control", True, f"{info.state}, pid {info.pid}")


async def _replication(name: str, url: str) -> GuardCheck:
    replicator = RedisReplicator()
    try:
        info = await replicator.info(Endpoint.parse(url))
    except StateError as exc:
        return GuardCheck(f"{name} replication now", False, str(exc))
    finally:
        await replicator.close()
    return GuardCheck(f"{name} replication now", True, str(info))


def render_plan(plan: Plan, live: list[GuardCheck]) -> str:
    """The plan as an operator reads it; says plainly that nothing was changed."""
    head = f"dry run: {plan.action} {plan.service}"
    if plan.target:
        head += f" -> {plan.target}"
    lines = [f"{head} (nothing was changed)", f"  because: {plan.because}"]
    lines.append("  guards, evaluated now:")
    lines += [f"    {'ok  ' if g.ok else 'FAIL'} {g.name}: {g.detail}" for g in plan.guards]
    if live:
        lines.append("  live checks:")
        lines += [f"    {'ok  ' if g.ok else 'FAIL'} {g.name}: {g.detail}" for g in live]
    if plan.steps:
        lines.append(f"  steps ({plan.workflow_id}):")
        lines += [f"    {step}" for step in plan.steps]
    if plan.refusal:
        lines.append(f"  would be refused: {plan.refusal}")
    else:
        lines.append(f"  would run as {plan.workflow_id}")
    return "\n".join(lines)
