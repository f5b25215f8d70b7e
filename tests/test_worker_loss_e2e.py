"""A repair in flight when its worker dies resumes fast, exactly once, on a worker that lives.

Real Temporal dev server, supervisord, HAProxy, demo services and ``drc worker`` processes. A
failover is held in its ``promote`` step (og-b's admin-hang marker) while the worker running
that step is SIGKILLed.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.api.enums.v1 import PendingActivityState, TimeoutType
from temporalio.api.workflow.v1 import PendingActivityInfo
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.service import RPCError

from drc.model import ServiceState
from drc.names import monitor_id, runbook_id
from drc.operator import FailoverRequest
from drc.repair import RunbookResult
from tests.support.incidents import one_resolved_incident
from tests.support.net import assert_eventually
from tests.support.stack import DrcStack, running_drc, supervised_worker
from workers.devstack import Child
from workflows.monitor import ServiceMonitorWorkflow

pytestmark = pytest.mark.integration

SERVICE = "order-gateway"
PROMOTE = "action_replica_promote"
ORDER = {"symbol": "ACME", "side": "buy", "qty": 1}


@pytest.fixture
async def drc(tmp_path: Path) -> AsyncIterator[DrcStack]:
    async with running_drc(tmp_path, worker=False) as stack:
        yield stack


async def _all_healthy(stack: DrcStack) -> None:
    states = {s.name: s.state for s in (await stack.status()).values()}
    assert set(states.values()) == {ServiceState.HEALTHY}, states


def _failover(stack: DrcStack) -> WorkflowHandle[Any, RunbookResult]:
    return stack.client.get_workflow_handle(
        runbook_id("failover", SERVICE), result_type=RunbookResult
    )


async def _promote(stack: DrcStack) -> PendingActivityInfo:
    """The failover's promote step while a worker runs it (STARTED)."""
    try:
        described = await _failover(stack).describe()
    except RPCError as exc:  # the failover has not started yet
        raise AssertionError(exc.message) from exc
    running = [
        p
        for p in described.raw_description.pending_activities
        if p.activity_type.name == PROMOTE
        and p.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
    ]
    assert running, "no worker runs the promote step yet"
    return running[0]


def _pid_of(identity: str) -> int:
    """The pid in a worker's default identity, ``pid@host``."""
    return int(identity.split("@", 1)[0])


async def _retried_after_a_heartbeat_timeout(stack: DrcStack, on: int) -> PendingActivityInfo:
    promote = await _promote(stack)
    assert promote.attempt >= 2 and _pid_of(promote.last_worker_identity) == on, promote
    # The first attempt ended by its heartbeat timeout, not by the step's start-to-close.
    failure = promote.last_failure.timeout_failure_info
    assert failure.timeout_type == TimeoutType.TIMEOUT_TYPE_HEARTBEAT, promote.last_failure
    return promote


async def _finished_once_with_one_promote(stack: DrcStack) -> list[Any]:
    """The failover succeeded, ran once, and promoted once; the promote's started events."""
    result = await _failover(stack).result()
    assert result.outcome == "succeeded", result.reason
    assert [s.name for s in result.steps if s.status == "succeeded"] == [
        "hold",
        "fence",
        "stop-old",
        "promote",
        "switch",
        "verify",
    ]
    runs = [
        w.status
        async for w in stack.client.list_workflows(
            f'WorkflowId = "{runbook_id("failover", SERVICE)}"'
        )
    ]
    assert runs == [WorkflowExecutionStatus.COMPLETED], "one execution of the failover"
    events = [e async for e in _failover(stack).fetch_history_events()]
    promotes = {
        e.event_id
        for e in events
        if e.HasField("activity_task_scheduled_event_attributes")
        and e.activity_task_scheduled_event_attributes.activity_type.name == PROMOTE
    }
    completed = [
        e
        for e in events
        if e.HasField("activity_task_completed_event_attributes")
        and e.activity_task_completed_event_attributes.scheduled_event_id in promotes
    ]
    assert len(promotes) == 1 and len(completed) == 1, "one successful promote"
    return [
        e.activity_task_started_event_attributes
        for e in events
        if e.HasField("activity_task_started_event_attributes")
        and e.activity_task_started_event_attributes.scheduled_event_id in promotes
    ]


@dataclass
class Client:
    """Uses the platform through its front ends every few ms: quotes, and orders."""

    quotes_url: str
    orders_url: str
    quotes: list[tuple[float, int]] = field(default_factory=list)
    orders: list[tuple[float, int, str | None]] = field(default_factory=list)
    running: bool = True

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=1.0) as http:
            while self.running:
                self.quotes.append((time.time(), await _status(http.get(self.quotes_url))))
                try:
                    placed = await http.post(self.orders_url, json=ORDER)
                    gateway = placed.json().get("gateway") if placed.status_code == 201 else None
                    self.orders.append((time.time(), placed.status_code, gateway))
                except httpx.HTTPError:
                    self.orders.append((time.time(), 0, None))
                await asyncio.sleep(0.05)


async def _status(request: Any) -> int:
    try:
        return int((await request).status_code)
    except httpx.HTTPError:
        return 0


def _client(stack: DrcStack) -> Client:
    quotes = stack.catalog.service("market-data")
    orders = stack.catalog.service(SERVICE)
    assert quotes is not None and orders is not None
    return Client(f"http://{quotes.frontend}/quotes/ACME", f"http://{orders.frontend}/orders")


async def test_a_failover_whose_worker_is_killed_mid_promote_resumes_once_on_the_restarted_worker(
    drc: DrcStack,
) -> None:
    async with supervised_worker(drc) as (supervision, lines):
        await assert_eventually(lambda: _all_healthy(drc), timeout=60)
        bystanders = {name: drc.pid(name) for name in ("md-a", "md-b", "re-a")}
        hang = drc.platform.marker("og-b.admin-hang")
        hang.touch()
        drc.supervisor().signalProcess("og-a", "KILL")  # the primary: a failover starts

        promote = await assert_eventually(lambda: _promote(drc), timeout=60)
        first = supervision.child("worker")
        assert first is not None and _pid_of(promote.last_worker_identity) == first.proc.pid
        client = _client(drc)
        using = asyncio.create_task(client.run())
        os.killpg(first.proc.pid, signal.SIGKILL)  # the worker, mid-promote
        killed_at = time.time()

        async def worker_back() -> Child:
            worker = supervision.child("worker")
            assert worker is not None and worker.proc.pid != first.proc.pid, lines
            assert worker.proc.poll() is None
            return worker

        second = await assert_eventually(worker_back, timeout=60)
        assert lines[0].startswith("worker exited with -9; restarting in 0.5 s (restart 1)")
        await assert_eventually(
            lambda: _retried_after_a_heartbeat_timeout(drc, on=second.proc.pid), timeout=60
        )
        back_at = time.time()
        hang.unlink()

        started = await _finished_once_with_one_promote(drc)
        assert [_pid_of(s.identity) for s in started] == [second.proc.pid]

        async def orders_on_og_b() -> None:
            assert client.orders and client.orders[-1][1:] == (201, "og-b"), client.orders[-3:]

        await assert_eventually(orders_on_og_b, timeout=30)
        client.running = False
        await using

        # The incident survived the worker's death whole: recorded once, with its failover
        # once, resolved once og-a was re-protected.
        incident = await assert_eventually(
            lambda: one_resolved_incident(drc.home, SERVICE), timeout=90
        )
        kinds = [run.kind for run in incident.runs]
        assert kinds.count("failover") == 1 and "reprotect" in kinds, incident.runs
        assert incident.type == "service_down" and not incident.near_miss
        assert incident.started_at <= incident.detected_at <= (incident.mitigated_at or 0)

    # The platform never noticed the worker's death: its other services answered throughout.
    while_dead = [status for at, status in client.quotes if killed_at <= at <= back_at]
    assert while_dead and set(while_dead) == {200}, while_dead
    assert {name: drc.pid(name) for name in bystanders} == bystanders


async def test_two_workers_on_one_queue_a_killed_one_hands_its_step_to_the_other(
    drc: DrcStack,
) -> None:
    workers = [drc.spawn_worker("worker-1"), drc.spawn_worker("worker-2")]
    try:
        await assert_eventually(lambda: _all_healthy(drc), timeout=60)
        hang = drc.platform.marker("og-b.admin-hang")
        hang.touch()
        monitor = drc.client.get_workflow_handle_for(
            ServiceMonitorWorkflow.run, monitor_id(SERVICE)
        )
        await monitor.execute_update(
            ServiceMonitorWorkflow.failover, FailoverRequest(reason="drill", operator="alice")
        )

        promote = await assert_eventually(lambda: _promote(drc), timeout=60)
        running_it = _pid_of(promote.last_worker_identity)
        [victim] = [w for w in workers if w.proc.pid == running_it]
        [other] = [w for w in workers if w is not victim]
        os.killpg(victim.proc.pid, signal.SIGKILL)
        victim.proc.wait()

        await assert_eventually(
            lambda: _retried_after_a_heartbeat_timeout(drc, on=other.proc.pid), timeout=60
        )
        hang.unlink()
        started = await _finished_once_with_one_promote(drc)
        assert [_pid_of(s.identity) for s in started] == [other.proc.pid]
        assert other.proc.poll() is None, "the other worker kept running"
    finally:
        for worker in workers:
            worker.stop()
