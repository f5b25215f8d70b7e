"""HAProxy's death is a fault like any other: detected, restarted through supervisord, and back
with the traffic state drc set (real Temporal, supervisord, HAProxy, demo services, worker)."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from temporalio.client import WorkflowExecutionStatus

from activities.traffic import HAProxyRuntime, parse_servers_state
from drc.model import ReplicaState, ServiceState
from drc.names import backend_name, monitor_id, restart_id
from drc.operator import FailoverRequest
from tests.support.net import assert_eventually
from tests.support.stack import TRAFFIC_MANAGER, DrcStack, demo_like_catalog, running_drc
from workflows.monitor import ServiceMonitorWorkflow

pytestmark = pytest.mark.integration

SERVICE = "order-gateway"
SERVICES = ("market-data", "risk-engine", "order-gateway", TRAFFIC_MANAGER)
ORDER = {"symbol": "ACME", "side": "buy", "qty": 1}


@pytest.fixture
async def drc(tmp_path: Path) -> AsyncIterator[DrcStack]:
    async with running_drc(tmp_path, demo_like_catalog(services=SERVICES)) as stack:
        await assert_eventually(lambda: _all_healthy(stack), timeout=60)
        yield stack


async def _all_healthy(stack: DrcStack) -> None:
    states = {s.name: s.state for s in (await stack.status()).values()}
    assert states == dict.fromkeys(SERVICES, ServiceState.HEALTHY), states


async def _traffic(stack: DrcStack) -> dict[str, str]:
    socket = stack.catalog.traffic_control.socket_path(stack.home)
    assert socket is not None
    servers = await HAProxyRuntime(socket).servers(backend_name(SERVICE))
    return {s.server: s.admin.value for s in servers}


async def _served_by(stack: DrcStack) -> str | None:
    service = stack.catalog.service(SERVICE)
    assert service is not None and service.frontend is not None
    async with httpx.AsyncClient(timeout=2) as http:
        try:
            placed = await http.post(f"http://{service.frontend}/orders", json=ORDER)
        except httpx.HTTPError:
            return None
    return placed.json().get("gateway") if placed.status_code == 201 else None


async def test_a_killed_haproxy_comes_back_through_drc_with_the_state_drc_set(
    drc: DrcStack,
) -> None:
    assert drc.supervisor().getProcessInfo("haproxy")["statename"] == "RUNNING"
    monitor = drc.client.get_workflow_handle_for(ServiceMonitorWorkflow.run, monitor_id(SERVICE))
    await monitor.execute_update(
        ServiceMonitorWorkflow.failover, FailoverRequest(reason="drill", operator="alice")
    )

    async def reprotected() -> None:
        status = (await drc.status())[SERVICE]
        assert status.primary == "og-b" and status.state is ServiceState.HEALTHY, status
        assert "reprotect-done" in [d.action for d in status.decisions], status.decisions
        assert await _traffic(drc) == {"og-a": "drain", "og-b": "ready"}

    await assert_eventually(reprotected, timeout=90)
    state_file = drc.catalog.traffic_control.state_file_path(drc.home)
    assert state_file is not None
    saved = {s.server: s.admin.value for s in parse_servers_state(state_file.read_text())}
    assert saved["og-a"] == "drain" and saved["og-b"] == "ready", "saved by the worker"

    old = drc.pid("haproxy")
    os.kill(old, signal.SIGKILL)

    async def restarted() -> None:
        replica = await drc.replica_status(TRAFFIC_MANAGER, "haproxy")
        assert replica.state is ReplicaState.HEALTHY and replica.restarts_in_window == 1, replica
        assert drc.pid("haproxy") != old

    await assert_eventually(restarted, timeout=90)
    runs = [
        w.status
        async for w in drc.client.list_workflows(
            f'WorkflowId = "{restart_id(TRAFFIC_MANAGER, "haproxy")}"'
        )
    ]
    assert runs == [WorkflowExecutionStatus.COMPLETED], "restarted through supervisord, once"
    decisions = (await drc.status())[TRAFFIC_MANAGER].decisions
    assert any(
        d.action == "restart"
        and "haproxy missed a heartbeat (last error: connection refused) and process control "
        "reports it EXITED"
        in d.reason
        for d in decisions
    ), decisions

    async def front_end_on_og_b() -> None:
        assert await _served_by(drc) == "og-b"

    await assert_eventually(front_end_on_og_b, timeout=30)
    assert [await _served_by(drc) for _ in range(10)] == ["og-b"] * 10
    assert await _traffic(drc) == {"og-a": "drain", "og-b": "ready"}, "og-a is still drained"
