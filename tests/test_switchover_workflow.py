"""ScheduledSwitchover on the time-skipping server: nothing happens before ``scheduled_at``,
the failover is asked once at that time, a refusal is its result, and a cancel beforehand
asks nothing."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import CancelledError
from temporalio.testing import WorkflowEnvironment

from drc.names import REQUEST_FAILOVER
from drc.switchover import FailoverCall, SwitchoverInput, SwitchoverResult
from tests.support.temporal import new_worker, start_time_skipping
from workflows.switchover import ScheduledSwitchoverWorkflow

HOUR_S = 3600.0


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await start_time_skipping()
    try:
        yield environment
    finally:
        await environment.shutdown()


class Monitor:
    """The fake ``request_failover``: records each call, refuses when told to."""

    def __init__(self, refusal: str | None = None) -> None:
        self.calls: list[tuple[float, FailoverCall]] = []
        self.refusal = refusal

    def activity(self):  # type: ignore[no-untyped-def]
        @activity.defn(name=REQUEST_FAILOVER)
        async def request_failover(call: FailoverCall) -> SwitchoverResult:
            self.calls.append((activity.info().current_attempt_scheduled_time.timestamp(), call))
            if self.refusal:
                return SwitchoverResult(call.service, None, refused=self.refusal)
            return SwitchoverResult(call.service, f"failover/{call.service}")

        return request_failover


async def _start(env: WorkflowEnvironment, monitor: Monitor, ahead_s: float):  # type: ignore[no-untyped-def]
    now = (await env.get_current_time()).timestamp()
    inp = SwitchoverInput("order-gateway", now + ahead_s, "og-b", "kernel patch", "alice")
    worker = new_worker(env.client, [ScheduledSwitchoverWorkflow], [monitor.activity()])
    handle = await env.client.start_workflow(
        ScheduledSwitchoverWorkflow.run,
        inp,
        id=f"switchover-{uuid.uuid4()}",
        task_queue=worker.task_queue,
    )
    return worker, handle, inp


async def test_the_failover_is_asked_once_at_the_scheduled_time(env: WorkflowEnvironment) -> None:
    monitor = Monitor()
    worker, handle, inp = await _start(env, monitor, HOUR_S)
    async with worker:
        assert await handle.query(ScheduledSwitchoverWorkflow.scheduled) == inp
        result = await handle.result()
    assert result == SwitchoverResult("order-gateway", "failover/order-gateway")
    [(at, call)] = monitor.calls
    assert at >= inp.scheduled_at
    assert (call.to, call.operator) == ("og-b", "alice")
    assert call.reason == "scheduled switchover: kernel patch"
    assert call.update_id.startswith("switchover-")  # one update id: a retry attaches to it


async def test_a_refusal_is_the_result_not_a_retry_storm(env: WorkflowEnvironment) -> None:
    monitor = Monitor(refusal="cannot fail over order-gateway: og-b is failed")
    worker, handle, _ = await _start(env, monitor, 60)
    async with worker:
        result = await handle.result()
    assert result.refused == "cannot fail over order-gateway: og-b is failed"
    assert len(monitor.calls) == 1


async def test_cancelled_before_its_time_it_asks_nothing(env: WorkflowEnvironment) -> None:
    monitor = Monitor()
    worker, handle, _ = await _start(env, monitor, HOUR_S)
    async with worker:
        await env.sleep(timedelta(minutes=30))
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
    assert isinstance(failure.value.cause, CancelledError)
    assert monitor.calls == []
