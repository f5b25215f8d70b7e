"""drc end to end: real Temporal dev server, real supervisord, real demo services, real worker."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from drc.model import ReplicaState, ServiceState
from drc.names import monitor_id, restart_id
from drc.repair import RestartResult
from tests.support.net import assert_eventually
from tests.support.stack import DrcStack, running_drc
from workers.status import group_progress

pytestmark = pytest.mark.integration


@pytest.fixture
async def drc(tmp_path: Path) -> AsyncIterator[DrcStack]:
    async with running_drc(tmp_path) as stack:
        await assert_eventually(lambda: _all_healthy(stack), timeout=60)
        yield stack


async def _all_healthy(stack: DrcStack) -> None:
    status = await stack.status()
    assert {s.name: s.state for s in status.values()} == {
        s.name: ServiceState.HEALTHY for s in stack.catalog.services
    }


async def _executions(stack: DrcStack, query: str) -> list[tuple[str, WorkflowExecutionStatus]]:
    return [
        (w.id, w.status)  # type: ignore[misc]
        async for w in stack.client.list_workflows(query)
    ]


async def test_one_monitor_per_service_filterable_and_not_duplicated_by_a_restart(
    drc: DrcStack,
) -> None:
    for service in drc.catalog.services:
        found = await _executions(drc, f'service = "{service.name}" AND kind = "monitor"')
        assert found == [(monitor_id(service.name), WorkflowExecutionStatus.RUNNING)]
    drc.worker.stop()  # type: ignore[union-attr]
    drc.start_worker()
    await assert_eventually(lambda: _all_healthy(drc), timeout=60)
    running = await _executions(drc, 'kind = "monitor" AND ExecutionStatus = "Running"')
    assert sorted(running) == sorted(
        (monitor_id(s.name), WorkflowExecutionStatus.RUNNING) for s in drc.catalog.services
    )
    everything = await _executions(drc, 'kind = "monitor"')
    assert len(everything) == len(drc.catalog.services), "a second boot must not start monitors"


async def test_kill_9_is_detected_and_restarted(drc: DrcStack) -> None:
    old = drc.pid("og-b")
    os.kill(old, signal.SIGKILL)

    async def restarted_and_healthy() -> None:
        replica = await drc.replica_status("order-gateway", "og-b")
        assert replica.state is ReplicaState.HEALTHY and replica.restarts_in_window == 1, replica
        assert drc.pid("og-b") != old

    await assert_eventually(restarted_and_healthy, timeout=60)
    found = await _executions(drc, f'WorkflowId = "{restart_id("order-gateway", "og-b")}"')
    assert found == [(restart_id("order-gateway", "og-b"), WorkflowExecutionStatus.COMPLETED)]
    decisions = (await drc.status())["order-gateway"].decisions
    # A killed process is corroborated dead by process control: failed at its first miss.
    assert any(
        d.action == "restart"
        and "og-b missed a heartbeat (last error: connection refused) and process control "
        "reports it EXITED"
        in d.reason
        for d in decisions
    ), decisions


async def test_sigstopped_replica_is_detected_as_hung_killed_and_restarted(drc: DrcStack) -> None:
    old = drc.pid("md-b")
    os.kill(old, signal.SIGSTOP)
    try:

        async def restarted() -> None:
            replica = await drc.replica_status("market-data", "md-b")
            assert replica.state is ReplicaState.HEALTHY and replica.restarts_in_window == 1
            assert drc.pid("md-b") != old

        await assert_eventually(restarted, timeout=60)
        assert not Path(f"/proc/{old}").exists(), "the hung process must be gone"
        decisions = (await drc.status())["market-data"].decisions
        # A hung process still runs as far as process control knows: the threshold decides.
        assert any(
            "md-b missed 3 heartbeats in a row (last error: timed out after 200 ms" in d.reason
            for d in decisions
        ), decisions
    finally:
        if Path(f"/proc/{old}").exists():
            os.kill(old, signal.SIGKILL)


async def test_replica_that_exits_after_every_start_ends_crash_looping(drc: DrcStack) -> None:
    drc.platform.marker("re-a").touch()  # every start of re-a now exits with status 3
    os.kill(drc.pid("re-a"), signal.SIGKILL)

    async def crash_looping() -> None:
        replica = await drc.replica_status("risk-engine", "re-a")
        assert replica.state is ReplicaState.CRASH_LOOPING, replica

    await assert_eventually(crash_looping, timeout=90)
    replica = await drc.replica_status("risk-engine", "re-a")
    assert replica.note is not None and "crash-looping, not restarting again" in replica.note
    runs = await _executions(drc, f'WorkflowId = "{restart_id("risk-engine", "re-a")}"')
    assert [s for _, s in runs] == [WorkflowExecutionStatus.FAILED] * 3
    spawned = drc.supervisor().getProcessInfo("re-a")
    assert spawned["statename"] == "EXITED" and spawned["exitstatus"] == 3


async def test_worker_killed_during_a_restart_finishes_it_exactly_once(drc: DrcStack) -> None:
    # Hold og-b's restart (the standby: a failed primary fails over instead) in its
    # waiting-healthy step: its /health fails while re-a is down.
    await _cli(drc, "pause", "risk-engine", "--reason", "test holds re-a down")
    drc.supervisor().stopProcess("re-a", True)
    old = drc.pid("og-b")
    os.kill(old, signal.SIGKILL)
    handle = drc.client.get_workflow_handle(
        restart_id("order-gateway", "og-b"), result_type=RestartResult
    )

    async def waiting_healthy() -> None:
        try:
            step = await handle.query("step")
        except RPCError as exc:  # not started yet
            raise AssertionError(exc.message) from exc
        assert step == "waiting-healthy"

    await assert_eventually(waiting_healthy, timeout=60)
    drc.kill_worker()
    drc.supervisor().startProcess("re-a", True)
    drc.start_worker()
    result = await handle.result()
    assert result.ok, result
    runs = await _executions(drc, f'WorkflowId = "{restart_id("order-gateway", "og-b")}"')
    assert runs == [(restart_id("order-gateway", "og-b"), WorkflowExecutionStatus.COMPLETED)]
    starts = [
        e
        async for e in handle.fetch_history_events()
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_type.name == "start_process"
    ]
    assert len(starts) == 1, "og-b was started once"
    assert drc.pid("og-b") != old
    await _cli(drc, "resume", "risk-engine")


async def test_a_healthy_fleet_writes_almost_no_history(drc: DrcStack) -> None:
    before = {s.name: await _history_length(drc, s.name) for s in drc.catalog.services}
    ticks_before = await _ticks(drc)
    await asyncio.sleep(20)  # time passing on purpose: 80 probe rounds per replica at 250 ms
    after = {s.name: await _history_length(drc, s.name) for s in drc.catalog.services}
    ticks_after = await _ticks(drc)
    assert after == before, "a healthy service's monitor must not write history while healthy"
    assert max(after.values()) < 30
    # ... while it was watched all along: every service's watch kept ticking.
    for name, ticks in ticks_after.items():
        assert ticks - ticks_before.get(name, 0) >= 40, (name, ticks_before, ticks_after)


async def _ticks(stack: DrcStack) -> dict[str, int]:
    status = await stack.status()
    groups = {s.watch_group for s in status.values() if s.watch_group}
    ticks: dict[str, int] = {}
    for group in groups:
        progress = await group_progress(stack.client, group)
        assert progress is not None, f"{group} has no watch running"
        ticks.update({name: m.ticks for name, m in progress.members.items()})
    return ticks


async def _history_length(stack: DrcStack, service: str) -> int:
    desc = await stack.client.get_workflow_handle(monitor_id(service)).describe()
    return int(desc.history_length)


async def _cli(stack: DrcStack, *args: str) -> str:
    drc_bin = Path(sys.executable).parent / "drc"
    done = subprocess.run(
        [str(drc_bin), *args], env=stack.env(), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout
