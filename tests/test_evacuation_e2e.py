"""Region evacuation end to end: losing every process of a region moves every service to the
other region, dependencies first, as one evacuation with a child per service; when the region
returns its replicas come back as standbys (real Temporal, supervisord, HAProxy, Redis, demo)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType

from drc.evacuation import EvacuationResult
from drc.fleet import FleetStatus
from drc.names import FLEET_ID, evacuation_id, evacuee_id
from tests.support.net import assert_eventually
from tests.support.stack import DrcStack, all_healthy, healthy_drc, two_region_catalog
from tests.test_failover_e2e import OrderClient
from workflows.fleet import FleetWorkflow

pytestmark = pytest.mark.integration

LDN = ("md-a", "re-a", "redis-a", "og-a")
"""Every process of region ldn in the two-region catalog."""
NYC_STATE = ("redis-b", "redis-c")
"""The order store's replicas in nyc: the most advanced one becomes the primary."""
LEVELS = [{"market-data", "order-state"}, {"risk-engine"}, {"order-gateway"}]
"""ldn's services by dependency level: order-gateway depends on all three others."""


async def _fleet(stack: DrcStack) -> FleetStatus:
    handle = stack.client.get_workflow_handle_for(FleetWorkflow.run, FLEET_ID)
    return await handle.query(FleetWorkflow.status)


async def _children_in_start_order(stack: DrcStack) -> list[str]:
    history = await stack.client.get_workflow_handle(evacuation_id("ldn")).fetch_history()
    started = EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED
    return [
        e.child_workflow_execution_started_event_attributes.workflow_execution.workflow_id
        for e in history.events
        if e.event_type == started
    ]


async def test_losing_a_region_evacuates_it_dependencies_first_and_reprotects_on_return(
    tmp_path: Path,
) -> None:
    async with healthy_drc(tmp_path, two_region_catalog(return_check_s=1.0)) as drc:
        gateway = drc.catalog.service("order-gateway")
        assert gateway is not None and gateway.frontend is not None
        client = OrderClient(f"http://{gateway.frontend}/orders")
        using = asyncio.create_task(client.run())
        await asyncio.sleep(0.5)

        # The region is gone: its processes die and none of them can start again there.
        for replica in LDN:
            drc.platform.marker(replica).touch()
        killed_at = time.time()
        for replica in LDN:
            drc.supervisor().signalProcess(replica, "KILL")

        async def served_from_nyc() -> None:
            status = await drc.status()
            assert status["order-state"].primary in NYC_STATE, status["order-state"].primary
            assert status["order-gateway"].primary == "og-b", status["order-gateway"].primary
            await client.answered_by("og-b", since=killed_at)

        await assert_eventually(served_from_nyc, timeout=60)

        # One evacuation with a child per service, started level by level.
        fleet = await _fleet(drc)
        assert fleet.evacuations == {"ldn": evacuation_id("ldn")}, fleet
        expected = [evacuee_id("ldn", s) for level in LEVELS for s in sorted(level)]

        async def every_child_started() -> list[str]:
            children = await _children_in_start_order(drc)
            assert sorted(children) == sorted(expected), children
            return children

        children = await assert_eventually(every_child_started, timeout=30)
        first = {c.rsplit("/", 1)[1] for c in children[:2]}
        assert first == LEVELS[0] and children[2:] == expected[2:], children
        said = "\n".join(n.reason for n in fleet.notes)
        assert "region_down: every replica in ldn failed" in said, said

        # While ldn stays down nothing is restarted into it: the evacuation keeps trying.
        await asyncio.sleep(3)
        handle = drc.client.get_workflow_handle(evacuation_id("ldn"), result_type=EvacuationResult)
        assert (await handle.describe()).status.name == "RUNNING"

        # ldn returns: its replicas come back as standbys and the evacuation ends.
        for replica in LDN:
            drc.platform.marker(replica).unlink()
        result = await asyncio.wait_for(handle.result(), timeout=120)
        client.running = False
        await using

        outcomes = {s.service: s.outcome for s in result.steps}
        assert outcomes["order-state"] in ("failed-over", "already-elsewhere"), result.steps
        assert outcomes["order-gateway"] in ("failed-over", "already-elsewhere"), result.steps
        assert outcomes["market-data"] == outcomes["risk-engine"] == "served-elsewhere"
        assert result.returned_at is not None
        assert {s.service for s in result.restored} == {s for level in LEVELS for s in level}
        await assert_eventually(lambda: all_healthy(drc), timeout=60)
        status = await drc.status()
        assert status["order-state"].primary in NYC_STATE
        assert status["order-state"].unprotected is None
        assert status["order-gateway"].primary == "og-b"

        async def evacuation_over() -> None:
            fleet = await _fleet(drc)
            assert fleet.evacuations == {}, fleet.evacuations
            assert any("ldn returned" in n.reason for n in fleet.notes), fleet.notes

        await assert_eventually(evacuation_over, timeout=30)
