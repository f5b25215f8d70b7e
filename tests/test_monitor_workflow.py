"""ServiceMonitor and its repairs on the time-skipping test server, with fake activities."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import WorkflowUpdateFailedError

from drc.model import ReplicaState, ServiceState
from drc.operator import FailoverRequest, PauseRequest, RestartRequest
from tests.support.monitor_world import (
    GATEWAY,
    FakeWorld,
    actions_of,
    failed,
    healthy,
    key,
    start_monitor,
    wait_decision,
)
from tests.support.net import assert_eventually
from tests.support.temporal import DevServer, new_worker
from workflows.monitor import ServiceMonitorWorkflow
from workflows.restart import RestartReplicaWorkflow
from workflows.runbook import RunbookWorkflow

WORKFLOWS = [ServiceMonitorWorkflow, RestartReplicaWorkflow, RunbookWorkflow]


@pytest.fixture
def env(dev_server: DevServer) -> DevServer:
    # The real dev server: the test server skips no time while the (fake) watch runs, and it
    # does not tell a parent that its child was terminated.
    return dev_server


async def test_failed_replica_is_restarted_once_and_recorded(env: DevServer) -> None:
    world = FakeWorld()
    async with new_worker(env.client, WORKFLOWS, world.activities()) as worker:
        handle = await start_monitor(env, worker.task_queue, runbooks=False)
        await world.watch_results.put(failed(GATEWAY, "og-b"))
        await wait_decision(handle, "restarted")
        assert world.calls["stop"] == ["og-b"] and world.calls["start"] == ["og-b"]
        reason = await wait_decision(handle, "restart")
        assert reason == (
            "restarting og-b: og-b failed: og-b missed 3 heartbeats in a row "
            "(last error: connection refused)"
        )
        status = await handle.query(ServiceMonitorWorkflow.status)
        og_b = next(r for r in status.replicas if r.name == "og-b")
        assert og_b.restarts_in_window == 1 and not status.repairs_running
        await handle.terminate()


async def test_replica_that_exits_on_every_start_ends_crash_looping(
    env: DevServer,
) -> None:
    world = FakeWorld()
    world.exit_on_start.add("og-b")
    async with new_worker(env.client, WORKFLOWS, world.activities()) as worker:
        handle = await start_monitor(env, worker.task_queue, runbooks=False)
        await world.watch_results.put(failed(GATEWAY, "og-b"))

        async def crash_looping() -> None:
            status = await handle.query(ServiceMonitorWorkflow.status)
            og_b = next(r for r in status.replicas if r.name == "og-b")
            assert og_b.state is ReplicaState.CRASH_LOOPING, og_b

        # The fake watch is a running activity, which stops the test server from skipping
        # time: the backoffs (1 s, 2 s) pass in real time.
        await assert_eventually(crash_looping)
        await asyncio.sleep(5)  # longer than the next backoff would be (4 s): no more restarts
        assert world.calls["start"] == ["og-b"] * 3
        reason = await wait_decision(handle, "crash-looping")
        assert "crash-looping, not restarting again (drc restart order-gateway og-b clears it)" in (
            reason
        )
        assert [n.kind for n in world.notes].count("crash-looping") == 1
        await handle.terminate()


async def test_operator_restart_of_unknown_replica_is_refused(env: DevServer) -> None:
    world = FakeWorld()
    async with new_worker(env.client, WORKFLOWS, world.activities()) as worker:
        handle = await start_monitor(env, worker.task_queue, runbooks=False)
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(
                ServiceMonitorWorkflow.request_restart, RestartRequest(replica="og-z")
            )
        assert "unknown replica 'og-z' of order-gateway (known: og-a, og-b)" in str(
            refused.value.cause
        )
        assert world.calls["start"] == []
        answer = await handle.execute_update(
            ServiceMonitorWorkflow.request_restart,
            RestartRequest(replica="og-a", reason="deploy", operator="alice"),
        )
        assert answer == f"restart/{key(handle)}/og-a"
        await wait_decision(handle, "restarted")
        assert await wait_decision(handle, "restart") == "restarting og-a: alice asked: deploy"
        await handle.terminate()


async def test_pause_stops_the_watch_and_resume_restarts_it(env: DevServer) -> None:
    world = FakeWorld()
    async with new_worker(env.client, WORKFLOWS, world.activities()) as worker:
        handle = await start_monitor(env, worker.task_queue)
        said = await handle.execute_update(ServiceMonitorWorkflow.pause, PauseRequest("upgrade"))
        assert said == "order-gateway paused"
        status = await handle.query(ServiceMonitorWorkflow.status)
        assert status.paused and status.state is ServiceState.PAUSED

        async def watching(expected: bool) -> None:
            desc = await handle.describe()
            kinds = [a.activity_type.name for a in desc.raw_description.pending_activities]
            assert ("watch_service" in kinds) is expected, kinds

        await assert_eventually(lambda: watching(False))
        said = await handle.execute_update(ServiceMonitorWorkflow.resume, PauseRequest("done"))
        assert said == "order-gateway resumed"
        await assert_eventually(lambda: watching(True))
        await handle.terminate()


async def test_monitor_continues_as_new_and_keeps_its_state(env: DevServer) -> None:
    world = FakeWorld()
    async with new_worker(env.client, WORKFLOWS, world.activities()) as worker:
        handle = await start_monitor(env, worker.task_queue, runbooks=False, max_history=25)
        first_run = (await handle.describe()).run_id
        await world.watch_results.put(failed(GATEWAY, "og-b"))

        async def new_run() -> None:
            assert (await handle.describe()).run_id != first_run

        await assert_eventually(new_run)
        actions = await actions_of(handle)()
        assert actions[:3] == ["transition", "restart", "restarted"], actions
        status = await handle.query(ServiceMonitorWorkflow.status)
        og_b = next(r for r in status.replicas if r.name == "og-b")
        assert og_b.restarts_in_window >= 1
        await handle.terminate()


async def test_failed_primary_fails_over_then_reprotects_the_old_primary(
    env: DevServer,
) -> None:
    world = FakeWorld()
    async with new_worker(env.client, WORKFLOWS, world.activities()) as worker:
        handle = await start_monitor(env, worker.task_queue)
        await world.watch_results.put(failed(GATEWAY, "og-a"))
        await wait_decision(handle, "reprotect-done")
        status = await handle.query(ServiceMonitorWorkflow.status)
        assert status.primary == "og-b" and status.unprotected is None
        assert await wait_decision(handle, "failover") == (
            "failing over order-gateway from og-a to og-b: og-a failed: og-a missed 3 heartbeats "
            "in a row (last error: connection refused); og-b is the healthy standby"
        )
        assert world.ran[:6] == [
            "replica.healthy og-b",
            "traffic.set og-b drain",
            "traffic.set og-a maint",
            "process.stop og-a",
            "replica.promote og-b",
            "traffic.set og-b ready",
        ], world.ran
        assert world.calls["start"] == [], "a failed primary is failed over, not restarted"
        await handle.terminate()


async def test_failover_without_a_healthy_standby_is_refused_naming_the_way_out(
    env: DevServer,
) -> None:
    world = FakeWorld()
    world.exit_on_start.add("og-b")
    async with new_worker(env.client, WORKFLOWS, world.activities()) as worker:
        handle = await start_monitor(env, worker.task_queue)
        await world.watch_results.put(failed(GATEWAY, "og-b"))
        await wait_decision(handle, "restart")
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(
                ServiceMonitorWorkflow.failover, FailoverRequest(reason="drill")
            )
        assert refused.value.cause.message == (  # type: ignore[union-attr]
            "cannot fail over order-gateway: no healthy standby (og-b is failed) "
            "(override: drc restart order-gateway og-b)"
        )
        assert world.ran == []
        assert (await handle.query(ServiceMonitorWorkflow.status)).primary == "og-a"
        await handle.terminate()


async def test_recovery_clears_a_crash_loop(env: DevServer) -> None:
    world = FakeWorld()
    world.exit_on_start.add("og-b")
    async with new_worker(env.client, WORKFLOWS, world.activities()) as worker:
        handle = await start_monitor(env, worker.task_queue, runbooks=False)
        await world.watch_results.put(failed(GATEWAY, "og-b"))
        await wait_decision(handle, "crash-looping")
        await world.watch_results.put(healthy(GATEWAY, "og-b"))
        reason = await wait_decision(handle, "recovered")
        assert reason == "og-b is serving again: crash loop cleared"
        await handle.terminate()
