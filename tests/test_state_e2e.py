"""Replicated state end to end: Redis primary/replica under supervisord behind HAProxy, the
order gateway acknowledging after WAIT 1, drc measuring lag and failing the store over."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis
from redis.exceptions import ReadOnlyError
from temporalio.client import WorkflowUpdateFailedError

from drc.model import ServiceState
from drc.names import monitor_id
from drc.operator import FailoverRequest
from tests.support.net import assert_eventually, free_port
from tests.support.stack import DrcStack, demo_like_catalog, running_drc
from workflows.monitor import ServiceMonitorWorkflow

pytestmark = pytest.mark.integration

STATE = "order-state"
SERVICES = ("market-data", "risk-engine", "order-state", "order-gateway")
ORDER = {"symbol": "ACME", "side": "buy", "qty": 1}


@pytest.fixture
async def drc(tmp_path: Path) -> AsyncIterator[DrcStack]:
    async with running_drc(tmp_path, demo_like_catalog(services=SERVICES)) as stack:
        await assert_eventually(lambda: _settled(stack, "redis-a"), timeout=60)
        yield stack


async def _settled(stack: DrcStack, primary: str) -> None:
    status = await stack.status()
    assert {s.state for s in status.values()} == {ServiceState.HEALTHY}, status
    state = status[STATE]
    assert state.primary == primary and not state.repairs_running, state
    assert [s.state for s in state.sync] == ["in_sync"], state.sync


def _redis(stack: DrcStack, replica: str) -> aioredis.Redis:
    url = stack.platform.replica(replica).url
    return aioredis.Redis(host=url.host, port=url.port, socket_timeout=2)


@dataclass
class AckingClient:
    """Places orders through the gateway's front end; remembers every acknowledged id."""

    url: str
    acked: list[str] = field(default_factory=list)
    acked_at: list[float] = field(default_factory=list)
    """When each acknowledged order was sent (so an order in flight at a kill counts before it)."""
    refused: int = 0
    running: bool = True

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=2.0) as http:
            while self.running:
                sent = time.time()
                try:
                    resp = await http.post(self.url + "/orders", json=ORDER)
                    if resp.status_code == 201:
                        self.acked.append(resp.json()["id"])
                        self.acked_at.append(sent)
                    else:
                        self.refused += 1
                except httpx.HTTPError:
                    self.refused += 1
                await asyncio.sleep(0.01)

    async def acknowledged_since(self, since: float) -> None:
        """Some order sent after ``since`` was acknowledged."""
        assert any(t > since for t in self.acked_at), "no order acknowledged since"

    async def lost(self) -> list[str]:
        async with httpx.AsyncClient(timeout=2.0) as http:
            return [
                i
                for i in self.acked
                if (await http.get(f"{self.url}/orders/{i}")).status_code != 200
            ]


async def test_killing_the_state_primary_loses_no_acknowledged_order(drc: DrcStack) -> None:
    gateway = drc.catalog.service("order-gateway")
    assert gateway is not None and gateway.frontend is not None
    client = AckingClient(f"http://{gateway.frontend}")
    task = asyncio.create_task(client.run())
    await assert_eventually(lambda: client.acknowledged_since(0.0))
    killed = time.time()
    drc.supervisor().signalProcess("redis-a", "KILL")
    await assert_eventually(lambda: _settled(drc, "redis-b"), timeout=90)
    await assert_eventually(lambda: client.acknowledged_since(killed))  # orders flow again
    client.running = False
    await task
    assert await client.lost() == []
    decisions = [d.action for d in (await drc.status())[STATE].decisions]
    assert "failover-state-done" in decisions and "reprotect-state-done" in decisions
    # the old primary came back as a replica: a write straight to it is refused
    old = _redis(drc, "redis-a")
    try:
        with pytest.raises(ReadOnlyError):
            await old.set("direct", "write")
    finally:
        await old.aclose()


async def test_a_replica_that_stops_replicating_is_sync_degraded_and_not_promoted(
    drc: DrcStack,
) -> None:
    replica = _redis(drc, "redis-b")
    primary = drc.platform.replica("redis-a").url
    await replica.execute_command("REPLICAOF", "127.0.0.1", str(free_port()))  # link broken
    try:

        async def degraded() -> None:
            sync = (await drc.status())[STATE].sync
            assert [s.state for s in sync] == ["sync_degraded"], sync

        await assert_eventually(degraded, timeout=30)
        handle = drc.client.get_workflow_handle_for(ServiceMonitorWorkflow.run, monitor_id(STATE))
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(ServiceMonitorWorkflow.failover, FailoverRequest())
        reason = refused.value.cause.message  # type: ignore[union-attr]
        assert reason.startswith("cannot fail over order-state: redis-b is behind redis-a: lag"), (
            reason
        )
        assert "offset gap" in reason and "link down" in reason
        assert reason.endswith('(override: drc failover order-state --force --reason "...")')
        decisions = (await drc.status())[STATE].decisions
        assert any(
            d.action == "sync-degraded" and "redis-b is behind redis-a" in d.reason
            for d in decisions
        ), decisions
    finally:
        await replica.execute_command("REPLICAOF", str(primary.host), str(primary.port))
        await replica.aclose()
    await assert_eventually(lambda: _settled(drc, "redis-a"), timeout=30)
