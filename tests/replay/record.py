"""Record the histories of real runs as replay fixtures (tests/replay/histories/*.json).

Runs the real stack (Temporal dev server, supervisord, HAProxy, Redis, demo services, drc
worker) through the scenarios below, then saves every workflow history it produced. Run it
again after a *deliberate*, versioned change to a workflow (ARCHITECTURE.md, "Changing a
workflow"); never to make a failing replay pass.

    .venv/bin/python -m tests.replay.record SET [--regions]

With ``--regions`` the demo catalog's two regions are recorded instead: a region lost and
evacuated, then returned; a chaos experiment run to its end and one cancelled mid-method.

Each run writes one set (a directory under histories/, named by the change it follows);
earlier sets stay, so the code keeps replaying what older drc versions left running.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.service import RPCError

from activities.chaos_schedules import start_run
from drc.names import evacuation_id, monitor_id, runbook_id
from drc.operator import PauseRequest, RestartRequest
from tests.support.net import assert_eventually
from tests.support.stack import DrcStack, demo_like_catalog, running_drc, two_region_catalog
from workflows.monitor import ServiceMonitorWorkflow

HISTORIES = Path(__file__).resolve().parent / "histories"
SERVICES = ("market-data", "risk-engine", "order-state", "order-gateway")


async def settled(stack: DrcStack) -> None:
    status = await stack.status()
    assert all(s.state.value == "healthy" for s in status.values()), status
    assert not any(s.repairs_running for s in status.values())
    assert not any(s.unprotected for s in status.values())


async def decided(stack: DrcStack, service: str, action: str, count: int = 1) -> None:
    decisions = (await stack.status())[service].decisions
    assert sum(d.action == action for d in decisions) >= count, [d.action for d in decisions]


async def frozen(stack: DrcStack, service: str) -> bool:
    return bool((await stack.status())[service].frozen)


async def held(handle: WorkflowHandle[Any, Any], activity: str) -> None:
    try:
        described = await handle.describe()
    except RPCError as exc:
        raise AssertionError(exc.message) from exc
    names = [p.activity_type.name for p in described.raw_description.pending_activities]
    assert activity in names, names


def waiting(check: Callable[[], Awaitable[None]], timeout: float = 90) -> Awaitable[None]:
    return assert_eventually(check, timeout=timeout)


async def scenarios(stack: DrcStack) -> None:
    sup, marker = stack.supervisor(), stack.platform.marker
    await waiting(lambda: settled(stack))
    market = stack.client.get_workflow_handle_for(
        ServiceMonitorWorkflow.run, monitor_id("market-data")
    )
    print("pause / resume", flush=True)
    await market.execute_update(ServiceMonitorWorkflow.pause, PauseRequest("replay", "rec"))
    await market.execute_update(ServiceMonitorWorkflow.resume, PauseRequest("replay", "rec"))
    print("restart (and drain) of md-b", flush=True)
    sup.signalProcess("md-b", "KILL")
    await waiting(lambda: decided(stack, "market-data", "restarted"))
    await waiting(lambda: settled(stack))
    print("failover and re-protection of the order gateway", flush=True)
    sup.signalProcess("og-a", "KILL")
    await waiting(lambda: decided(stack, "order-gateway", "reprotect-done"))
    await waiting(lambda: settled(stack))
    print("a terminated failover, finished by a second one", flush=True)
    failover = stack.client.get_workflow_handle(runbook_id("failover", "order-gateway"))
    marker("og-a.admin-hang").touch()
    sup.signalProcess("og-b", "KILL")
    await waiting(lambda: held(failover, "action_replica_promote"))
    await failover.terminate(reason="replay fixture")
    await waiting(lambda: decided(stack, "order-gateway", "failover-terminated"))
    marker("og-a.admin-hang").unlink()
    await waiting(lambda: decided(stack, "order-gateway", "reprotect-done", 2))
    await waiting(lambda: settled(stack))
    print("a failover that compensates, then a restart", flush=True)
    marker("og-b.promote-fail").touch()
    sup.signalProcess("og-a", "KILL")
    await waiting(lambda: decided(stack, "order-gateway", "restarted"))
    marker("og-b.promote-fail").unlink()
    await waiting(lambda: settled(stack))
    print("state store failover and re-protection", flush=True)
    sup.signalProcess("redis-a", "KILL")
    await waiting(lambda: decided(stack, "order-state", "reprotect-state-done"))
    await waiting(lambda: settled(stack))
    print("a crash loop, cleared by an operator", flush=True)
    marker("re-a").touch()
    sup.signalProcess("re-a", "KILL")
    await waiting(lambda: decided(stack, "risk-engine", "crash-looping"))
    marker("re-a").unlink()
    risk = stack.client.get_workflow_handle_for(
        ServiceMonitorWorkflow.run, monitor_id("risk-engine")
    )
    await risk.execute_update(
        ServiceMonitorWorkflow.request_restart, RestartRequest("re-a", "fixed", "rec")
    )
    await waiting(lambda: settled(stack))
    print("flapping: a freeze, lifted by resume", flush=True)
    while not await frozen(stack, "market-data"):
        await waiting(lambda: settled(stack))
        sup.signalProcess("md-a", "KILL")
        await waiting(lambda: decided(stack, "market-data", "restart", 1))
        await asyncio.sleep(2)
    await market.execute_update(ServiceMonitorWorkflow.resume, PauseRequest("looked", "rec"))
    await waiting(lambda: settled(stack))


async def region_scenarios(stack: DrcStack) -> None:
    sup, marker = stack.supervisor(), stack.platform.marker
    await waiting(lambda: settled(stack))
    print("region ldn lost, evacuated, returned", flush=True)
    ldn = ("md-a", "re-a", "redis-a", "og-a")
    for replica in ldn:
        marker(replica).touch()
    for replica in ldn:
        sup.signalProcess(replica, "KILL")
    evacuation = stack.client.get_workflow_handle(evacuation_id("ldn"))
    await waiting(lambda: _started(evacuation))
    for replica in ldn:
        marker(replica).unlink()
    await asyncio.wait_for(evacuation.result(), timeout=180)
    await waiting(lambda: settled(stack), timeout=120)
    print("a chaos experiment to its end, and one cancelled", flush=True)
    done = await start_run(stack.client, "primary-crash", "drc", seed=1)
    await done.result()
    await waiting(lambda: settled(stack))
    hang = await start_run(stack.client, "replica-hang", "drc", seed=1)

    async def injected() -> None:
        journal = await hang.query("journal")
        assert any(e["step"].startswith("inject") for e in journal), journal

    await waiting(injected)
    await hang.cancel()
    await waiting(lambda: settled(stack), timeout=120)


async def _started(handle: WorkflowHandle[Any, Any]) -> None:
    try:
        await handle.describe()
    except RPCError as exc:
        raise AssertionError(exc.message) from exc


async def save(stack: DrcStack, into: Path) -> int:
    into.mkdir(parents=True, exist_ok=True)
    for old in into.glob("*.json"):
        old.unlink()
    saved = 0
    kinds = (
        "ServiceMonitor",
        "RestartReplica",
        "Runbook",
        "WatchGroup",
        "IncidentReport",
        "Fleet",
        "EvacuateRegion",
        "EvacuateService",
        "ChaosExperiment",
    )
    async for execution in stack.client.list_workflows(""):
        if execution.workflow_type not in kinds:
            continue
        handle = stack.client.get_workflow_handle(execution.id, run_id=execution.run_id)
        history = await handle.fetch_history()
        name = f"{execution.id.replace('/', '_')}-{execution.run_id}.json"
        record = {"workflow_id": execution.id, "history": json.loads(history.to_json())}
        (into / name).write_text(json.dumps(record) + "\n")
        saved += 1
    return saved


async def main(into: Path, regions: bool) -> None:
    if regions:
        with tempfile.TemporaryDirectory(prefix="drc-replay-") as home:
            async with running_drc(Path(home), two_region_catalog(return_check_s=1.0)) as stack:
                await region_scenarios(stack)
                print(f"saved {await save(stack, into)} histories to {into}", flush=True)
        return
    catalog = demo_like_catalog(services=SERVICES)
    flappy = {"flap_max_transitions": 4, "flap_freeze_s": 600}  # market-data only
    services = tuple(
        s.model_copy(update={"thresholds": s.thresholds.model_copy(update=flappy)})
        if s.name == "market-data"
        else s
        for s in catalog.services
    )
    catalog = catalog.model_copy(update={"services": services})
    with tempfile.TemporaryDirectory(prefix="drc-replay-") as home:
        async with running_drc(Path(home), catalog) as stack:
            await scenarios(stack)
            print(f"saved {await save(stack, into)} histories to {into}", flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    regions = "--regions" in args
    names = [a for a in args if a != "--regions"]
    if len(names) != 1:
        sys.exit("usage: python -m tests.replay.record SET [--regions] (SET: histories/SET/)")
    asyncio.run(main(HISTORIES / names[0], regions))
    sys.stdout.flush()
    os._exit(0)  # temporalio 1.35 may crash in interpreter teardown; the files are written
