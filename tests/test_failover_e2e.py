"""Failover end to end: real Temporal, supervisord, HAProxy and demo services, real worker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError

from activities.traffic import HAProxyRuntime
from drc.model import ServiceState
from drc.names import backend_name, monitor_id, runbook_id
from drc.operator import FailoverRequest
from drc.repair import RunbookResult
from tests.support.incidents import one_resolved_incident
from tests.support.net import assert_eventually
from tests.support.stack import DrcStack, running_drc
from workflows.monitor import ServiceMonitorWorkflow
from workflows.runbook import result_from_failure

pytestmark = pytest.mark.integration

SERVICE = "order-gateway"
ORDER = {"symbol": "ACME", "side": "buy", "qty": 1}


@pytest.fixture
async def drc(tmp_path: Path) -> AsyncIterator[DrcStack]:
    async with running_drc(tmp_path) as stack:
        await assert_eventually(lambda: _all_healthy(stack), timeout=60)
        yield stack


async def _all_healthy(stack: DrcStack) -> None:
    states = {s.name: s.state for s in (await stack.status()).values()}
    assert set(states.values()) == {ServiceState.HEALTHY}, states


@dataclass
class OrderClient:
    """Sends orders through the front end every few ms and records (time, status, gateway)."""

    url: str
    results: list[tuple[float, int, str | None]] = field(default_factory=list)
    running: bool = True
    interval: float = 0.02

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=1.0) as http:
            while self.running:
                sent = time.time()  # when it was sent: a failure is dated by its request
                try:
                    resp = await http.post(self.url, json=ORDER)
                    gateway = resp.json().get("gateway") if resp.status_code == 201 else None
                    self.results.append((sent, resp.status_code, gateway))
                except httpx.HTTPError:
                    self.results.append((sent, 0, None))
                await asyncio.sleep(self.interval)

    def failed(self) -> int:
        return sum(1 for _, status, _ in self.results if status != 201)

    async def answered_by(self, gateway: str, since: float = 0.0) -> None:
        """Some order sent after ``since`` was taken by ``gateway``."""
        assert any(t > since and g == gateway for t, _, g in self.results), self.results[-5:]


def _frontend(stack: DrcStack) -> str:
    service = stack.catalog.service(SERVICE)
    assert service is not None and service.frontend is not None
    return f"http://{service.frontend}/orders"


async def _traffic(stack: DrcStack) -> dict[str, str]:
    socket = stack.catalog.traffic_control.socket_path(stack.home)
    assert socket is not None
    servers = await HAProxyRuntime(socket).servers(backend_name(SERVICE))
    return {s.server: s.admin.value for s in servers}


async def _result(stack: DrcStack, runbook: str) -> RunbookResult:
    handle = stack.client.get_workflow_handle(
        runbook_id(runbook, SERVICE), result_type=RunbookResult
    )
    try:
        return await handle.result()
    except WorkflowFailureError as err:
        result = result_from_failure(err)
        assert result is not None, err
        return result


async def test_killed_primary_fails_over_fenced_before_promoted_no_failure_after_the_switch(
    drc: DrcStack,
) -> None:
    client = OrderClient(_frontend(drc))
    task = asyncio.create_task(client.run())
    await assert_eventually(lambda: client.answered_by("og-a"))
    assert client.failed() == 0 and {g for _, _, g in client.results} == {"og-a"}
    drc.supervisor().signalProcess("og-a", "KILL")

    async def failed_over_and_reprotected() -> None:
        status = (await drc.status())[SERVICE]
        assert status.primary == "og-b" and status.state is ServiceState.HEALTHY, status
        assert "reprotect-done" in [d.action for d in status.decisions], status.decisions

    await assert_eventually(failed_over_and_reprotected, timeout=60)
    failover = await _result(drc, "failover")
    switched = failover.steps[-1].finished_at.timestamp() if failover.steps[-1].finished_at else 0.0
    await assert_eventually(lambda: client.answered_by("og-b", since=switched))
    client.running = False
    await task

    assert failover.outcome == "succeeded"
    steps = {s.name: s for s in failover.steps}
    assert [s.name for s in failover.steps] == [
        "hold",
        "fence",
        "stop-old",
        "promote",
        "switch",
        "verify",
    ]
    assert steps["fence"].finished_at <= steps["promote"].started_at  # type: ignore[operator]
    assert "og-a failed: og-a missed a heartbeat (last error: connection refused) and process " in (
        failover.trigger
    )
    assert "reports it EXITED" in failover.trigger and "dead, not a blip" in failover.trigger
    assert (await _traffic(drc)) == {"og-a": "drain", "og-b": "ready"}
    assert client.results[-1][1:] == (201, "og-b")
    # Orders fail only while the primary is dead and fenced: none sent after the switch.
    late = [r for r in client.results if r[1] != 201 and r[0] > switched]
    assert not late, late
    reprotect = await _result(drc, "reprotect")
    assert reprotect.outcome == "succeeded"


async def test_a_failing_promotion_rolls_back_to_the_original_primary(drc: DrcStack) -> None:
    drc.platform.marker("og-b.promote-fail").touch()
    handle = drc.client.get_workflow_handle_for(ServiceMonitorWorkflow.run, monitor_id(SERVICE))
    wid = await handle.execute_update(
        ServiceMonitorWorkflow.failover, FailoverRequest(reason="drill", operator="alice")
    )
    assert wid == runbook_id("failover", SERVICE)
    result = await _result(drc, "failover")
    assert result.outcome == "compensated"
    assert result.reason.startswith("step 'promote' (replica.promote og-b) failed")
    assert "compensated stop-old, fence, hold in reverse" in result.reason
    assert "alice asked: drill" in result.trigger

    async def back_on_og_a() -> None:
        assert (await _traffic(drc)) == {"og-a": "ready", "og-b": "ready"}
        status = (await drc.status())[SERVICE]
        assert status.primary == "og-a" and status.state is ServiceState.HEALTHY
        assert any(d.action == "failover-compensated" for d in status.decisions)

    await assert_eventually(back_on_og_a, timeout=30)
    async with httpx.AsyncClient(timeout=2) as http:
        placed = await http.post(_frontend(drc), json=ORDER)
    assert placed.status_code == 201 and placed.json()["gateway"] == "og-a"

    # The incident's report shows the failed step, every compensation in order, the outcome.
    incident = await assert_eventually(lambda: one_resolved_incident(drc.home, SERVICE), 60)
    # The drill stopped og-a before the promotion failed: the service was down until the
    # compensation brought og-a back, so the operator's incident became a service_down one.
    assert incident.type == "service_down" and "alice asked: drill" in incident.cause
    written = drc.home / "reports" / f"{incident.id}.md"
    report = await assert_eventually(lambda: _read(written), timeout=60)
    assert "| promote | replica.promote | failed |" in report, report
    order = [report.index(f"{n}. **{step}**") for n, step in enumerate(CompensatedSteps, 1)]
    assert order == sorted(order), order
    assert "**outcome:** compensated" in report


CompensatedSteps = ("stop-old", "fence", "hold")
"""Undone in reverse of the order they ran."""


async def _read(path: Path) -> str:
    assert path.exists(), path
    return path.read_text()


async def test_two_simultaneous_failover_triggers_make_one_failover(drc: DrcStack) -> None:
    handle = drc.client.get_workflow_handle_for(ServiceMonitorWorkflow.run, monitor_id(SERVICE))
    answers = await asyncio.gather(
        *(
            handle.execute_update(
                ServiceMonitorWorkflow.failover, FailoverRequest(reason=f"trigger {i}")
            )
            for i in range(2)
        )
    )
    assert answers == [runbook_id("failover", SERVICE)] * 2
    assert (await _result(drc, "failover")).outcome == "succeeded"
    runs = [
        w.status
        async for w in drc.client.list_workflows(
            f'WorkflowId = "{runbook_id("failover", SERVICE)}"'
        )
    ]
    assert runs == [WorkflowExecutionStatus.COMPLETED]


async def test_failover_requests_without_a_healthy_target_are_refused(drc: DrcStack) -> None:
    from temporalio.client import WorkflowUpdateFailedError

    handle = drc.client.get_workflow_handle_for(ServiceMonitorWorkflow.run, monitor_id(SERVICE))
    for to, why in (
        ("og-z", "unknown replica 'og-z' of order-gateway (known: og-a, og-b)"),
        ("og-a", "og-a is already the primary"),
    ):
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(ServiceMonitorWorkflow.failover, FailoverRequest(to=to))
        assert f"cannot fail over order-gateway: {why}" in str(refused.value.cause)
    runs = [w async for w in drc.client.list_workflows('WorkflowType = "Runbook"')]
    assert runs == [], "a refused failover starts nothing"
