"""The Fleet workflow and the monitors it directs, on the real dev server with fake activities."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from temporalio.client import WorkflowHandle

from drc.fleet import FleetConfig, FleetStatus, ServiceHealthReport, ServiceNode
from tests.support.monitor_world import (
    GATEWAY,
    FakeWorld,
    actions_of,
    failed,
    start_monitor,
    wait_decision,
)
from tests.support.net import assert_eventually
from tests.support.temporal import DevServer, new_worker
from workflows.fleet import FleetInput, FleetWorkflow
from workflows.monitor import ServiceMonitorWorkflow
from workflows.report import IncidentReportWorkflow
from workflows.restart import RestartReplicaWorkflow
from workflows.runbook import RunbookWorkflow

WORKFLOWS = [
    ServiceMonitorWorkflow,
    RestartReplicaWorkflow,
    RunbookWorkflow,
    IncidentReportWorkflow,
    FleetWorkflow,
]


@pytest.fixture
def env(dev_server: DevServer) -> DevServer:
    return dev_server


def graph(**extra: ServiceNode) -> dict[str, ServiceNode]:
    return {
        "market-data": ServiceNode((), ("ldn", "nyc")),
        "order-gateway": ServiceNode(("market-data",), ("ldn", "nyc")),
        **extra,
    }


async def start_fleet(
    env: DevServer, task_queue: str, config: FleetConfig
) -> WorkflowHandle[FleetWorkflow, None]:
    return await env.client.start_workflow(
        FleetWorkflow.run, FleetInput(config), id=f"fleet-{uuid.uuid4()}", task_queue=task_queue
    )


async def report(fleet: WorkflowHandle[Any, Any], service: str, health: str, **extra: Any) -> None:
    await fleet.signal(
        FleetWorkflow.report,
        ServiceHealthReport(service, health, time.time(), **extra),  # type: ignore[arg-type]
    )


async def status(fleet: WorkflowHandle[Any, Any]) -> FleetStatus:
    return await fleet.query(FleetWorkflow.status)  # type: ignore[no-any-return]


async def test_a_dependent_waits_for_its_root_cause_and_is_repaired_only_if_still_failed(
    env: DevServer,
) -> None:
    world = FakeWorld()
    async with new_worker(env.client, WORKFLOWS, world.activities()) as worker:
        # Five services: one down is 20 %, under the system-failure share (no pacing here).
        others = {n: ServiceNode() for n in ("order-state", "ref-data", "risk-engine")}
        fleet = await start_fleet(env, worker.task_queue, FleetConfig(graph(**others)))
        monitor = await start_monitor(env, worker.task_queue, runbooks=False, fleet=fleet.id)
        await wait_decision_soon(monitor)
        await report(fleet, "market-data", "down", incident_id="market-data-1")
        reason = await wait_decision(monitor, "held")
        assert reason.startswith("order-gateway depends on market-data, which is down")

        await world.watch_results.put(failed(GATEWAY, "og-b", at=time.time()))
        why = await assert_eventually(lambda: _held_replica(monitor, "og-b"))
        assert "market-data, a dependency, is down and is being repaired first" in why
        assert world.calls["stop"] == [] and world.calls["start"] == []
        state = await status(fleet)
        [incident] = state.incidents
        assert incident.root_cause == "market-data" and incident.held == ["order-gateway"]

        await report(fleet, "market-data", "up")
        await wait_decision(monitor, "released")
        await wait_decision(monitor, "restarted")  # still failed on its own: repaired now
        assert world.calls["start"] == ["og-b"]
        notes = [n.action for n in (await status(fleet)).notes]
        assert notes[:2] == ["hold", "release"], notes
        await monitor.terminate()
        await fleet.terminate()


async def _held_replica(monitor: WorkflowHandle[Any, Any], replica: str) -> str:
    state = await monitor.query(ServiceMonitorWorkflow.status)
    found = [d for d in state.decisions if d.action == "held" and d.replica == replica]
    assert found, [(d.action, d.replica) for d in state.decisions]
    return str(found[-1].reason)


async def wait_decision_soon(monitor: WorkflowHandle[Any, Any]) -> None:
    """The monitor has run its first round (and reported to its fleet)."""
    await assert_eventually(lambda: actions_of(monitor)())


async def test_at_system_failure_automatic_repairs_wait_for_a_token(env: DevServer) -> None:
    world = FakeWorld()
    config = FleetConfig(
        graph(**{n: ServiceNode((), ("ldn",)) for n in ("risk-engine", "order-state")}),
        bucket_per_minute=60,
        system_failure_share=0.3,
    )
    async with new_worker(env.client, WORKFLOWS, world.activities()) as worker:
        fleet = await start_fleet(env, worker.task_queue, config)
        monitor = await start_monitor(env, worker.task_queue, runbooks=False, fleet=fleet.id)
        await wait_decision_soon(monitor)
        await report(fleet, "risk-engine", "down")
        await report(fleet, "order-state", "down")
        reason = await wait_decision(monitor, "brake-paced")
        assert reason.startswith("system_failure: 2 of 4 services down (50% ≥ 30%)")

        async def paged() -> None:  # the notification is its own activity, delivered after
            assert any(n.kind == "brake-paced" and n.severity == "critical" for n in world.notes)

        await assert_eventually(paged)

        await world.watch_results.put(failed(GATEWAY, "og-b", at=time.time()))
        await wait_decision(monitor, "paced")
        await wait_decision(monitor, "restarted")  # the bucket's first token
        assert world.calls["start"] == ["og-b"]
        notes = [n.reason for n in (await status(fleet)).notes if n.action == "token"]
        assert notes and notes[0].startswith("order-gateway/og-b may repair now"), notes
        assert (await status(fleet)).system_health == "critical"
        await monitor.terminate()
        await fleet.terminate()


async def test_every_region_down_at_once_freezes_automatic_repairs(env: DevServer) -> None:
    world = FakeWorld()
    async with new_worker(env.client, WORKFLOWS, world.activities()) as worker:
        fleet = await start_fleet(env, worker.task_queue, FleetConfig(graph()))
        monitor = await start_monitor(env, worker.task_queue, runbooks=False, fleet=fleet.id)
        await wait_decision_soon(monitor)
        await report(fleet, "market-data", "down", regions_down=["ldn", "nyc"])
        reason = await wait_decision(monitor, "brake-frozen")
        assert "every region (ldn, nyc) looks down at once" in reason
        await report(fleet, "market-data", "up")
        await wait_decision(monitor, "brake-normal")
        await monitor.terminate()
        await fleet.terminate()


async def test_a_dependent_whose_own_process_died_is_not_held(env: DevServer) -> None:
    world = FakeWorld()
    others = {n: ServiceNode() for n in ("order-state", "ref-data", "risk-engine")}
    async with new_worker(env.client, WORKFLOWS, world.activities()) as worker:
        fleet = await start_fleet(env, worker.task_queue, FleetConfig(graph(**others)))
        monitor = await start_monitor(env, worker.task_queue, runbooks=False, fleet=fleet.id)
        await wait_decision_soon(monitor)
        await report(fleet, "market-data", "down")
        await wait_decision(monitor, "held")
        result = failed(GATEWAY, "og-b", at=time.time())
        result.tracks["og-b"].dead = "process control reports it EXITED"
        await world.watch_results.put(result)
        await wait_decision(monitor, "restarted")  # it will not come back with market-data
        assert world.calls["start"] == ["og-b"]
        await monitor.terminate()
        await fleet.terminate()
