"""The fleet end to end: a dependency's outage is one incident with one root cause, and its
dependents wait for it instead of being repaired (real Temporal, supervisord, HAProxy, demo)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from drc.fleet import FleetStatus
from drc.model import ServiceState
from drc.names import FLEET_ID
from tests.support.incidents import incidents_of
from tests.support.net import assert_eventually
from tests.support.stack import DrcStack, running_drc
from workflows.fleet import FleetWorkflow

pytestmark = pytest.mark.integration

ROOT = "market-data"
DEPENDENTS = ("risk-engine", "order-gateway")


@pytest.fixture
async def drc(tmp_path: Path) -> AsyncIterator[DrcStack]:
    async with running_drc(tmp_path) as stack:
        await assert_eventually(lambda: _all_healthy(stack), timeout=60)
        yield stack


async def _all_healthy(stack: DrcStack) -> None:
    states = {s.name: s.state for s in (await stack.status()).values()}
    assert set(states.values()) == {ServiceState.HEALTHY}, states


async def _fleet(stack: DrcStack) -> FleetStatus:
    handle = stack.client.get_workflow_handle_for(FleetWorkflow.run, FLEET_ID)
    return await handle.query(FleetWorkflow.status)


def _drc(stack: DrcStack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", *args],
        env={**stack.env(), "DRC_OPERATOR": "gil"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_a_dependency_outage_is_one_incident_and_its_dependents_wait_for_it(
    drc: DrcStack,
) -> None:
    # Both market-data replicas die and cannot start again until the markers go.
    for replica in ("md-a", "md-b"):
        drc.platform.marker(replica).touch()
        drc.supervisor().signalProcess(replica, "KILL")

    async def held() -> FleetStatus:
        fleet = await _fleet(drc)
        found = [i for i in fleet.incidents if i.service == ROOT]
        assert len(found) == 1, fleet
        incident = found[0]
        assert incident.root_cause == ROOT and incident.held == sorted(DEPENDENTS), fleet
        for name in DEPENDENTS:
            decisions = (await drc.status())[name].decisions
            assert any(d.action == "held" for d in decisions), (name, decisions)
        return fleet

    fleet = await assert_eventually(held, timeout=60)
    assert ROOT in fleet.down
    shown = json.loads(_drc(drc, "status", "--json").stdout)["fleet"]
    assert [i["root_cause"] for i in shown["incidents"]] == [ROOT]

    # Their own /health fails (market-data is gone): degraded, and still not repaired.
    async def dependents_degraded() -> None:
        states = {s.name: s.state for s in (await drc.status()).values()}
        assert states["risk-engine"] is ServiceState.DEGRADED, states

    await assert_eventually(dependents_degraded, timeout=60)

    for replica in ("md-a", "md-b"):
        drc.platform.marker(replica).unlink()
        done = _drc(drc, "restart", ROOT, replica, "--reason", "markers removed")
        assert done.returncode == 0, done.stderr
    await assert_eventually(lambda: _all_healthy(drc), timeout=90)

    async def released() -> None:
        fleet = await _fleet(drc)
        assert not fleet.down and fleet.system_health == "healthy", fleet
        assert [n.action for n in fleet.notes].count("release") == len(DEPENDENTS)

    await assert_eventually(released, timeout=30)
    status = await drc.status()
    for name in DEPENDENTS:
        actions = [d.action for d in status[name].decisions]
        repaired = {"restart", "failover", "drain"} & set(actions)
        assert not repaired and not status[name].repairs_running, (name, actions)
        assert "released" in actions, (name, actions)
        assert [i for i in await incidents_of(drc.home, name) if not i.near_miss] == []
    root_incidents = await incidents_of(drc.home, ROOT)
    assert len(root_incidents) == 1, root_incidents
