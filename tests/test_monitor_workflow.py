"""ServiceMonitor and RestartReplica on the time-skipping test server, with fake activities."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence

import pytest
from temporalio import activity
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities.actions import ActionInput, ActionResult
from drc.catalog_loader import parse_catalog
from drc.model import (
    FailoverRequest,
    PauseRequest,
    ProbeResult,
    ProcessInput,
    ProcessResult,
    ReplicaState,
    ReplicaTrack,
    RestartRequest,
    ServiceState,
    Transition,
    WaitHealthyInput,
    WatchInput,
    WatchResult,
)
from runbooks.runbook import load_builtin_runbooks
from tests.support.net import assert_eventually
from tests.support.temporal import new_worker, start_time_skipping
from workflows.monitor import MonitorInput, ServiceMonitorWorkflow
from workflows.restart import RestartReplicaWorkflow
from workflows.runbook import RunbookWorkflow

SERVICE = parse_catalog(
    {
        "services": [
            {
                "name": "order-gateway",
                "redundancy": "active-standby",
                "primary": "og-a",
                "replicas": [
                    {
                        "name": "og-a",
                        "region": "ldn",
                        "url": "http://127.0.0.1:1",
                        "process": "og-a",
                    },
                    {
                        "name": "og-b",
                        "region": "nyc",
                        "url": "http://127.0.0.1:2",
                        "process": "og-b",
                    },
                ],
                "restart": {"crash_loop_max": 3, "crash_loop_window_s": 300},
            }
        ]
    }
).services[0]


class FakeWorld:
    """Same-named fakes for every activity the two workflows call; the test scripts the watch."""

    def __init__(self) -> None:
        self.watch_results: asyncio.Queue[WatchResult] = asyncio.Queue()
        self.calls: dict[str, list[str]] = defaultdict(list)
        self.exit_on_start: set[str] = set()

    @activity.defn(name="watch_service")
    async def watch_service(self, inp: WatchInput) -> WatchResult:
        while True:
            try:
                return await asyncio.wait_for(self.watch_results.get(), 0.2)
            except TimeoutError:
                activity.heartbeat()

    @activity.defn(name="stop_process")
    async def stop_process(self, inp: ProcessInput) -> ProcessResult:
        self.calls["stop"].append(inp.process)
        return ProcessResult("stop", "RUNNING", "STOPPED")

    @activity.defn(name="start_process")
    async def start_process(self, inp: ProcessInput) -> ProcessResult:
        self.calls["start"].append(inp.process)
        return ProcessResult("start", "STOPPED", "RUNNING", pid=42)

    @activity.defn(name="check_recovered")
    async def check_recovered(self, inp: WaitHealthyInput) -> ProbeResult:
        if inp.replica.name in self.exit_on_start:
            raise ApplicationError(
                f"{inp.replica.name} is EXITED after its start, exit status 3",
                type="ProcessExited",
                non_retryable=True,
            )
        return ProbeResult(ok=True, latency_ms=1.0)

    def activities(self) -> list[object]:
        return [self.watch_service, self.stop_process, self.start_process, self.check_recovered]


def failed(replica: str, at: float = 0.0) -> WatchResult:
    track = ReplicaTrack(
        state=ReplicaState.FAILED, consecutive_failures=3, last_error="connection refused", since=at
    )
    reason = f"{replica} missed 3 heartbeats in a row (last error: connection refused)"
    others = {r.name: ReplicaTrack(state=ReplicaState.HEALTHY) for r in SERVICE.replicas}
    return WatchResult(
        transitions=[Transition(replica, ReplicaState.HEALTHY, ReplicaState.FAILED, reason, at)],
        tracks={**others, replica: track},
    )


def healthy(replica: str) -> WatchResult:
    track = ReplicaTrack(state=ReplicaState.HEALTHY, consecutive_successes=2, latency_ms=1.0)
    return WatchResult(
        transitions=[Transition(replica, ReplicaState.FAILED, ReplicaState.HEALTHY, "back", 0.0)],
        tracks={replica: track},
    )


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await start_time_skipping()
    yield environment
    await environment.shutdown()


async def start_monitor(
    env: WorkflowEnvironment, task_queue: str, **extra: object
) -> WorkflowHandle[ServiceMonitorWorkflow, None]:
    inp = MonitorInput(
        service=SERVICE, supervisor_url="http://127.0.0.1:9/RPC2", search_attributes=False, **extra
    )  # type: ignore[arg-type]
    return await env.client.start_workflow(
        ServiceMonitorWorkflow.run,
        inp,
        id=f"monitor/{SERVICE.name}-{uuid.uuid4()}",
        task_queue=task_queue,
    )


async def test_failed_replica_is_restarted_once_and_recorded(env: WorkflowEnvironment) -> None:
    world = FakeWorld()
    worker = new_worker(
        env.client, [ServiceMonitorWorkflow, RestartReplicaWorkflow], world.activities()
    )
    async with worker:
        handle = await start_monitor(env, worker.task_queue)
        await world.watch_results.put(failed("og-a"))

        async def restarted() -> None:
            status = await handle.query(ServiceMonitorWorkflow.status)
            actions = [d.action for d in status.decisions]
            assert "restarted" in actions, actions

        await assert_eventually(restarted)
        status = await handle.query(ServiceMonitorWorkflow.status)
        assert world.calls["stop"] == ["og-a"] and world.calls["start"] == ["og-a"]
        restart = next(d for d in status.decisions if d.action == "restart")
        assert restart.reason == (
            "restarting og-a: og-a failed: og-a missed 3 heartbeats in a row "
            "(last error: connection refused)"
        )
        og_a = next(r for r in status.replicas if r.name == "og-a")
        assert og_a.restarts_in_window == 1
        await handle.terminate()


async def test_replica_that_exits_on_every_start_ends_crash_looping(
    env: WorkflowEnvironment,
) -> None:
    world = FakeWorld()
    world.exit_on_start.add("og-b")
    worker = new_worker(
        env.client, [ServiceMonitorWorkflow, RestartReplicaWorkflow], world.activities()
    )
    async with worker:
        handle = await start_monitor(env, worker.task_queue)
        await world.watch_results.put(failed("og-b"))

        async def crash_looping() -> None:
            await env.sleep(5)  # skip through the restart backoffs
            status = await handle.query(ServiceMonitorWorkflow.status)
            og_b = next(r for r in status.replicas if r.name == "og-b")
            assert og_b.state is ReplicaState.CRASH_LOOPING, og_b

        await assert_eventually(crash_looping)
        for _ in range(12):  # a minute, long past every backoff (1, 2, 4 s): no more restarts
            await env.sleep(5)
        status = await handle.query(ServiceMonitorWorkflow.status)
        assert world.calls["start"] == ["og-b"] * 3
        og_b = next(r for r in status.replicas if r.name == "og-b")
        assert og_b.note is not None and "crash-looping, not restarting again" in og_b.note
        assert "3 restarts within 300 s" in og_b.note
        assert status.state is ServiceState.DEGRADED
        await handle.terminate()


async def test_operator_restart_of_unknown_replica_is_refused(env: WorkflowEnvironment) -> None:
    world = FakeWorld()
    worker = new_worker(
        env.client, [ServiceMonitorWorkflow, RestartReplicaWorkflow], world.activities()
    )
    async with worker:
        handle = await start_monitor(env, worker.task_queue)
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
        assert answer == "restart/order-gateway/og-a"
        await assert_eventually(_has_decision(handle, "restarted"))
        status = await handle.query(ServiceMonitorWorkflow.status)
        assert any(d.reason == "restarting og-a: alice asked: deploy" for d in status.decisions)
        await handle.terminate()


async def test_pause_stops_the_watch_and_resume_restarts_it(env: WorkflowEnvironment) -> None:
    world = FakeWorld()
    worker = new_worker(
        env.client, [ServiceMonitorWorkflow, RestartReplicaWorkflow], world.activities()
    )
    async with worker:
        handle = await start_monitor(env, worker.task_queue)
        said = await handle.execute_update(ServiceMonitorWorkflow.pause, PauseRequest("upgrade"))
        assert said == "order-gateway paused"
        status = await handle.query(ServiceMonitorWorkflow.status)
        assert status.paused and status.state is ServiceState.PAUSED

        async def not_watching() -> None:
            desc = await handle.describe()
            assert not desc.raw_description.pending_activities, "a paused monitor watches nothing"

        await assert_eventually(not_watching)
        assert (
            await handle.execute_update(ServiceMonitorWorkflow.resume, PauseRequest("done"))
            == "order-gateway resumed"
        )

        async def watching() -> None:
            desc = await handle.describe()
            assert desc.raw_description.pending_activities

        await assert_eventually(watching)
        await handle.terminate()


async def test_monitor_continues_as_new_and_keeps_its_state(env: WorkflowEnvironment) -> None:
    world = FakeWorld()
    worker = new_worker(
        env.client, [ServiceMonitorWorkflow, RestartReplicaWorkflow], world.activities()
    )
    async with worker:
        handle = await start_monitor(env, worker.task_queue, max_history=25)
        first_run = (await handle.describe()).run_id
        await world.watch_results.put(failed("og-a"))

        async def new_run() -> None:
            assert (await handle.describe()).run_id != first_run

        await assert_eventually(new_run)
        status = await handle.query(ServiceMonitorWorkflow.status)
        actions = [d.action for d in status.decisions]
        assert actions[:3] == ["transition", "restart", "restarted"], actions
        og_a = next(r for r in status.replicas if r.name == "og-a")
        assert og_a.restarts_in_window >= 1
        await handle.terminate()


def _has_decision(handle: WorkflowHandle[ServiceMonitorWorkflow, None], action: str):  # type: ignore[no-untyped-def]
    async def check() -> None:
        status = await handle.query(ServiceMonitorWorkflow.status)
        assert action in [d.action for d in status.decisions], [d.action for d in status.decisions]

    return check


class FakeActions:
    """Every runbook action as one dynamic activity that records what ran."""

    def __init__(self) -> None:
        self.ran: list[str] = []

    @activity.defn(dynamic=True)
    async def any_action(self, args: Sequence[RawValue]) -> ActionResult:
        inp = activity.payload_converter().from_payload(args[0].payload, ActionInput)
        words = " ".join(str(v) for v in inp.args.values())
        self.ran.append(f"{inp.action} {words}".strip())
        return ActionResult(inp.action, f"{inp.action} done")


async def start_monitor_with_runbooks(
    env: WorkflowEnvironment, task_queue: str
) -> WorkflowHandle[ServiceMonitorWorkflow, None]:
    return await start_monitor(env, task_queue, runbooks=load_builtin_runbooks())


async def test_failed_primary_fails_over_then_reprotects_the_old_primary(
    env: WorkflowEnvironment,
) -> None:
    world, actions = FakeWorld(), FakeActions()
    worker = new_worker(
        env.client,
        [ServiceMonitorWorkflow, RestartReplicaWorkflow, RunbookWorkflow],
        [*world.activities(), actions.any_action],
    )
    async with worker:
        handle = await start_monitor_with_runbooks(env, worker.task_queue)
        await world.watch_results.put(failed("og-a"))

        async def reprotected() -> None:
            status = await handle.query(ServiceMonitorWorkflow.status)
            assert "reprotect-done" in [d.action for d in status.decisions], status.decisions

        await assert_eventually(reprotected)
        status = await handle.query(ServiceMonitorWorkflow.status)
        assert status.primary == "og-b"
        failover = next(d for d in status.decisions if d.action == "failover")
        assert failover.reason == (
            "failing over order-gateway from og-a to og-b: og-a failed: og-a missed 3 heartbeats "
            "in a row (last error: connection refused); og-b is the healthy standby"
        )
        assert actions.ran[:6] == [
            "replica.healthy og-b",
            "traffic.set og-b drain",
            "traffic.set og-a maint",
            "process.stop og-a",
            "replica.promote og-b",
            "traffic.set og-b ready",
        ], actions.ran
        assert world.calls["start"] == [], "a failed primary is failed over, not restarted"
        await handle.terminate()


async def test_failover_without_a_healthy_standby_is_refused_and_changes_nothing(
    env: WorkflowEnvironment,
) -> None:
    world, actions = FakeWorld(), FakeActions()
    world.exit_on_start.add("og-b")
    worker = new_worker(
        env.client,
        [ServiceMonitorWorkflow, RestartReplicaWorkflow, RunbookWorkflow],
        [*world.activities(), actions.any_action],
    )
    async with worker:
        handle = await start_monitor_with_runbooks(env, worker.task_queue)
        await world.watch_results.put(failed("og-b"))
        await assert_eventually(_has_decision(handle, "restart"))
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(
                ServiceMonitorWorkflow.failover, FailoverRequest(reason="drill")
            )
        assert "cannot fail over order-gateway: no healthy standby (og-b is failed)" in str(
            refused.value.cause
        )
        assert actions.ran == []
        status = await handle.query(ServiceMonitorWorkflow.status)
        assert status.primary == "og-a"
        await handle.terminate()
