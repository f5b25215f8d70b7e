"""Compound faults end to end: repairs that an operator terminates mid-way, a state primary
that dies after its standby already lost its link, a replica still starting, every decision a
log line. Real Temporal dev server, supervisord, HAProxy, Redis, demo services, drc worker."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.service import RPCError

from drc.model import ServiceState
from drc.names import runbook_id
from tests.support.incidents import one_resolved_incident
from tests.support.net import assert_eventually, free_port
from tests.support.stack import DrcStack, demo_like_catalog, running_drc

pytestmark = pytest.mark.integration

GATEWAY = "order-gateway"
STATE = "order-state"
STATE_SERVICES = ("market-data", "risk-engine", "order-state", "order-gateway")


async def _all_healthy(stack: DrcStack) -> None:
    status = await stack.status()
    assert {s.state for s in status.values()} == {ServiceState.HEALTHY}, status
    assert not any(s.repairs_running for s in status.values()), status


async def _decision(stack: DrcStack, service: str, action: str, after: int = 0) -> str:
    decisions = (await stack.status())[service].decisions
    found = [d for d in decisions[after:] if d.action == action]
    assert found, [(d.action, d.reason) for d in decisions]
    return found[-1].reason


async def _held_at(stack: DrcStack, workflow_id: str, activity: str) -> None:
    try:
        described = await stack.client.get_workflow_handle(workflow_id).describe()
    except RPCError as exc:
        raise AssertionError(exc.message) from exc
    started = PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
    held = [
        p
        for p in described.raw_description.pending_activities
        if p.activity_type.name == activity and p.state == started
    ]
    assert held, f"{workflow_id} is not at {activity} yet"


async def _executions(stack: DrcStack, workflow_id: str) -> list[str]:
    query = f'WorkflowId = "{workflow_id}"'
    return [w.status.name async for w in stack.client.list_workflows(query) if w.status]


def _marker(stack: DrcStack, name: str) -> Path:
    marker = stack.platform.marker(name)
    marker.parent.mkdir(parents=True, exist_ok=True)
    return marker


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[DrcStack]:
    async with running_drc(tmp_path) as stack:
        await assert_eventually(lambda: _all_healthy(stack), timeout=60)
        yield stack


async def test_terminated_failover_and_reprotect_do_not_block_the_next_repair(
    gateway: DrcStack,
) -> None:
    stack = gateway
    failover, reprotect = runbook_id("failover", GATEWAY), runbook_id("reprotect", GATEWAY)
    hold_b, hold_a = _marker(stack, "og-b.admin-hang"), _marker(stack, "og-a.admin-hang")
    hold_b.touch()
    hold_a.touch()  # re-protection will hold in og-a's demote
    stack.supervisor().signalProcess("og-a", "KILL")
    await assert_eventually(lambda: _held_at(stack, failover, "action_replica_promote"), 30)
    await stack.client.get_workflow_handle(failover).terminate(reason="operator drill")
    reason = await assert_eventually(lambda: _decision(stack, GATEWAY, "failover-terminated"))
    assert reason.endswith("finishing the failover to og-b (every step converges)"), reason
    hold_b.unlink()
    await assert_eventually(lambda: _decision(stack, GATEWAY, "failover-done"), timeout=60)
    # The runbook signals its end to the monitor just before its execution completes.
    await assert_eventually(lambda: _ran_as(stack, failover, ["COMPLETED", "TERMINATED"]))

    await assert_eventually(lambda: _held_at(stack, reprotect, "action_replica_demote"), 60)
    await stack.client.get_workflow_handle(reprotect).terminate(reason="operator drill")
    reason = await assert_eventually(lambda: _decision(stack, GATEWAY, "reprotect-terminated"))
    assert reason == f"{reprotect} was terminated; re-protecting og-a again in 2 s"
    hold_a.unlink()
    await assert_eventually(lambda: _decision(stack, GATEWAY, "reprotect-done"), timeout=60)
    await assert_eventually(lambda: _all_healthy(stack), timeout=60)

    # Nothing is left behind: the next failure of the primary fails over at once.
    stack.supervisor().signalProcess("og-b", "KILL")

    async def failed_back() -> None:
        status = (await stack.status())[GATEWAY]
        assert status.primary == "og-a" and not status.repairs_running, status

    await assert_eventually(failed_back, timeout=60)
    await assert_eventually(
        lambda: _ran_as(stack, failover, ["COMPLETED", "COMPLETED", "TERMINATED"])
    )
    _assert_logged_as_json(stack, "failover-terminated")


async def _ran_as(stack: DrcStack, workflow_id: str, statuses: list[str]) -> None:
    assert await _executions(stack, workflow_id) == statuses


def _assert_logged_as_json(stack: DrcStack, action: str) -> None:
    """Every decision is a structured log line of the worker (JSON: its log is no terminal)."""
    lines = (stack.home / "logs" / "worker.log").read_text().splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    found = [r for r in records if r.get("drc", {}).get("action") == action]
    assert found, [r.get("message") for r in records][-20:]
    drc = found[-1]["drc"]
    assert drc["service"] == GATEWAY and drc["workflow_id"] == f"monitor/{GATEWAY}"
    assert drc["reason"] and "replica" in drc and found[-1]["level"] == "INFO"


async def test_a_replica_still_starting_is_not_failed(gateway: DrcStack) -> None:
    stack = gateway
    slow = _marker(stack, "md-b.slow-start")
    slow.touch()
    before = len((await stack.status())["market-data"].decisions)
    stack.supervisor().signalProcess("md-b", "KILL")
    while stack.supervisor().getProcessInfo("md-b")["statename"] == "RUNNING":
        await asyncio.sleep(0.005)  # supervisord notices the death within milliseconds
    stack.supervisor().startProcess("md-b", True)  # running, but not listening while it loads

    async def starting() -> None:
        status = (await stack.status())["market-data"]
        replica = next(r for r in status.replicas if r.name == "md-b")
        assert replica.note and "started" in replica.note, (replica, status.decisions[before:])

    await assert_eventually(starting, timeout=10)
    await asyncio.sleep(3)  # twelve heartbeats missed while starting, four times the threshold
    slow.unlink()
    await assert_eventually(lambda: _all_healthy(stack), timeout=30)
    decisions = (await stack.status())["market-data"].decisions[before:]
    assert not [d for d in decisions if d.action in ("restart", "drain")], decisions
    assert not [d for d in decisions if "missed" in d.reason], decisions


@pytest.fixture
async def state(tmp_path: Path) -> AsyncIterator[DrcStack]:
    # Restarts off, so the dead primary stays dead: only a failover can bring writes back.
    catalog = demo_like_catalog(services=STATE_SERVICES, restart={"enabled": False})
    async with running_drc(tmp_path, catalog) as stack:
        await assert_eventually(lambda: _all_healthy(stack), timeout=60)
        yield stack


def _drc(stack: DrcStack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workers.cli", *args],
        env={**stack.env(), "DRC_OPERATOR": "erin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_a_dead_state_primary_whose_standby_link_was_down_is_refused_then_forced(
    state: DrcStack,
) -> None:
    stack = state
    url = stack.platform.replica("redis-b").url
    replica: Any = aioredis.Redis(host=url.host, port=url.port, socket_timeout=2)
    try:
        await replica.execute_command("REPLICAOF", "127.0.0.1", str(free_port()))  # link down

        async def degraded() -> None:
            sync = (await stack.status())[STATE].sync
            assert [s.state for s in sync] == ["sync_degraded"], sync

        await assert_eventually(degraded, timeout=30)
        stack.supervisor().signalProcess("redis-a", "KILL")
        reason = await assert_eventually(lambda: _decision(stack, STATE, "no-failover"), 30)
        assert reason.startswith(
            "cannot fail over order-state: redis-b's replication link was already down when "
            "redis-a last answered; promoting could lose acknowledged writes (override: drc "
            'failover order-state --force --reason "...")'
        ), reason
        info = await replica.info("replication")
        assert info["role"] == "slave", "nothing was promoted"

        plan = _drc(stack, "failover", STATE, "--dry-run")
        assert plan.returncode == 1 and "would be refused: cannot fail over" in plan.stdout
        assert "FAIL redis-b caught up: redis-b's replication link was already down" in (
            plan.stdout
        ), plan.stdout
        unexplained = _drc(stack, "failover", STATE, "--force")
        assert unexplained.returncode == 2 and "--force needs --reason" in unexplained.stderr

        forced = _drc(stack, "failover", STATE, "--force", "--reason", "redis-a's disk is gone")
        assert forced.returncode == 0, forced.stderr
        assert forced.stdout.strip() == runbook_id("failover-state", STATE)
        await assert_eventually(lambda: _decision(stack, STATE, "failover-state-done"), 60)
        trigger = await _decision(stack, STATE, "failover-state")
        assert "erin asked: redis-a's disk is gone" in trigger
        assert trigger.endswith("FORCED by erin: replication guards skipped"), trigger
        assert (await replica.info("replication"))["role"] == "master"
        await replica.set("after", "forced failover")  # writable: the store serves again

        # One incident, and its report says the failover was forced, by whom and why.
        incident = await assert_eventually(
            lambda: one_resolved_incident(stack.home, STATE), timeout=90
        )
        assert incident.forced_by == "erin" and not incident.near_miss
        assert any(n.action == "no-failover" for n in incident.notes)
        report = _drc(stack, "report", incident.id)
        assert report.returncode == 0, report.stderr
        assert "FORCED by erin" in report.stdout and "redis-a's disk is gone" in report.stdout
        assert "| Forced | yes" in report.stdout, report.stdout[:1500]
        refused = json.loads(_drc(stack, "failures", "--json").stdout)["failures"]
        assert "failover_refused" in {f["type"] for f in refused}
    finally:
        await replica.aclose()
