"""Incidents kept by the monitor: opened by a detection, joined by repairs, resolved, recorded."""

from __future__ import annotations

import time

import pytest

from drc.incident import Incident
from drc.model import ReplicaState, Transition
from drc.watch import WatchResult
from tests.support.monitor_world import (
    GATEWAY,
    FakeWorld,
    failed,
    healthy,
    key,
    start_monitor,
    track,
    wait_decision,
)
from tests.support.net import assert_eventually
from tests.support.temporal import DevServer, new_worker
from workflows.monitor import ServiceMonitorWorkflow
from workflows.report import IncidentReportWorkflow
from workflows.restart import RestartReplicaWorkflow
from workflows.runbook import RunbookWorkflow

WORKFLOWS = [
    ServiceMonitorWorkflow,
    RestartReplicaWorkflow,
    RunbookWorkflow,
    IncidentReportWorkflow,
]


@pytest.fixture
def env(dev_server: DevServer) -> DevServer:
    return dev_server


def only_incident(world: FakeWorld) -> Incident:
    assert len(world.incidents) == 1, sorted(world.incidents)
    return next(iter(world.incidents.values()))


async def test_failover_opens_an_incident_that_resolves_with_a_report(env: DevServer) -> None:
    world = FakeWorld()
    async with new_worker(env.client, WORKFLOWS, world.activities()) as worker:
        handle = await start_monitor(env, worker.task_queue)
        now = time.time()
        first_miss = now - 0.5
        result = failed(GATEWAY, "og-a", at=now)
        result.tracks["og-a"].failing_since = first_miss
        await world.watch_results.put(result)
        await wait_decision(handle, "reprotect-done")

        async def opened() -> Incident:
            incident = only_incident(world)
            kinds = [r.kind for r in incident.runs]
            assert kinds[:3] == ["monitor", "failover", "reprotect"], kinds
            assert incident.mitigated_at is not None
            return incident

        incident = await assert_eventually(opened)
        assert incident.service == "order-gateway" and incident.type == "service_down"
        assert incident.severity == "critical" and incident.status == "open"
        assert incident.started_at == pytest.approx(first_miss, abs=1e-3)
        assert incident.detected_at == pytest.approx(now, abs=1e-3)
        assert incident.id.startswith("order-gateway-")
        assert "og-a missed 3 heartbeats" in incident.cause
        assert any(n.action == "failover" for n in incident.notes)
        paged = [n for n in world.notes if n.kind == "incident-opened"]
        assert len(paged) == 1 and paged[0].incident_id == incident.id

        # og-a is back as og-b's standby: healthy and redundant again.
        await world.watch_results.put(healthy(GATEWAY, "og-a"))
        await wait_decision(handle, "incident-resolved")

        async def resolved() -> Incident:
            done = world.incidents[incident.id]
            assert done.status == "resolved" and world.reports == [incident.id]
            return done

        done = await assert_eventually(resolved)
        assert done.resolved_at is not None and done.mitigated_at is not None
        assert done.started_at <= done.detected_at <= done.mitigated_at <= done.resolved_at
        assert not done.near_miss and "repaired by failover, reprotect" in done.outcome
        assert [n.kind for n in world.notes if n.kind.startswith("incident-")] == [
            "incident-opened",
            "incident-resolved",
        ]
        changes = [(c.state, c.at) for u in world.updates for c in u.changes]
        assert [state for state, _ in changes] == ["down", "degraded", "up"]
        assert changes[0][1] == pytest.approx(first_miss, abs=1e-3)
        failures = [f for u in world.updates for f in u.failures]
        assert [(f.type, f.replica, f.incident_id) for f in failures] == [
            ("service_down", "og-a", incident.id)
        ]
        await handle.terminate()


async def test_a_restart_that_heals_at_once_is_a_near_miss(env: DevServer) -> None:
    world = FakeWorld()
    async with new_worker(env.client, WORKFLOWS, world.activities()) as worker:
        handle = await start_monitor(env, worker.task_queue, runbooks=False)
        await world.watch_results.put(failed(GATEWAY, "og-b", at=time.time()))
        await wait_decision(handle, "restarted")
        await world.watch_results.put(healthy(GATEWAY, "og-b"))
        reason = await wait_decision(handle, "near-miss")
        assert "near miss: order-gateway healthy and redundant again" in reason
        assert "repaired by restart" in reason

        incident = await assert_eventually(
            lambda: _resolved(world)  # type: ignore[arg-type,return-value]
        )
        assert incident.near_miss and incident.type == "replica_failed"
        assert incident.severity == "high"
        assert world.reports == []  # a one-line record, no report
        # Not paged: it healed within the near-miss window before anyone was woken.
        assert not [n for n in world.notes if n.kind.startswith("incident-")]
        await handle.terminate()


async def _resolved(world: FakeWorld) -> Incident:
    incident = only_incident(world)
    assert incident.status == "resolved"
    return incident


async def test_a_store_that_is_away_delays_records_but_loses_none(env: DevServer) -> None:
    world = FakeWorld()
    world.record_failures = 3
    async with new_worker(env.client, WORKFLOWS, world.activities()) as worker:
        handle = await start_monitor(env, worker.task_queue, runbooks=False)
        await world.watch_results.put(failed(GATEWAY, "og-b", at=time.time()))
        await wait_decision(handle, "restarted")
        await world.watch_results.put(healthy(GATEWAY, "og-b"))
        await wait_decision(handle, "near-miss")
        incident = await assert_eventually(lambda: _resolved(world), timeout=60)  # type: ignore[arg-type,return-value]
        assert world.record_failures == 0
        failures = [f.key for u in world.updates for f in u.failures]
        assert len(failures) == 1  # written once, however often it was sent
        assert incident.status == "resolved"

        async def outbox_empty() -> None:
            state = await handle.query(ServiceMonitorWorkflow.status)
            assert state is not None
            described = await handle.describe()
            pending = [p.activity_type.name for p in described.raw_description.pending_activities]
            assert "record_incident" not in pending, pending

        await assert_eventually(outbox_empty)
        assert key(handle)
        await handle.terminate()


async def test_an_error_rate_increase_is_a_failure_and_an_incident(env: DevServer) -> None:
    world = FakeWorld()
    async with new_worker(env.client, WORKFLOWS, world.activities()) as worker:
        handle = await start_monitor(env, worker.task_queue, runbooks=False)
        now = time.time()
        reason = "og-b failed 6 of its last 20 probes (30 %, limit 20 %)"
        tracks = {r.name: track(ReplicaState.HEALTHY) for r in GATEWAY.replicas}
        tracks["og-b"] = track(ReplicaState.DEGRADED, now)
        bad = Transition(
            "og-b",
            ReplicaState.HEALTHY,
            ReplicaState.DEGRADED,
            reason,
            now,
            condition="error_rate_increase",
            severity="high",
        )
        await world.watch_results.put(WatchResult([bad], tracks))
        incident = await assert_eventually(lambda: _open_incident(world))
        assert incident.type == "error_rate_increase" and incident.cause == reason
        failures = [f for u in world.updates for f in u.failures]
        assert [(f.type, f.severity, f.replica) for f in failures] == [
            ("error_rate_increase", "high", "og-b")
        ]
        assert world.calls["stop"] == [], "a degraded replica serves: it is not restarted"
        await handle.terminate()


async def _open_incident(world: FakeWorld) -> Incident:
    incident = only_incident(world)
    assert incident.status == "open"
    return incident
