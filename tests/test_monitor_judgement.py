"""The monitor under repeated and compound faults (time-skipping server, fake activities)."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowUpdateFailedError

from drc.model import ReplicaState
from drc.operator import FailoverRequest, PauseRequest, RestartRequest, RetireRequest
from drc.sync import AliveSample, SyncStats
from drc.watch import WatchResult
from runbooks.runbook import load_builtin_runbooks
from tests.support.monitor_world import (
    GATEWAY,
    QUOTES,
    STATE,
    FakeWorld,
    all_healthy,
    failed,
    key,
    service,
    start_monitor,
    track,
    wait_decision,
)
from tests.support.net import assert_eventually
from tests.support.temporal import DevServer, new_worker
from workflows.monitor import ServiceMonitorWorkflow
from workflows.monitor_types import MonitorConfig
from workflows.restart import RestartReplicaWorkflow
from workflows.runbook import RunbookWorkflow

WORKFLOWS = [ServiceMonitorWorkflow, RestartReplicaWorkflow, RunbookWorkflow]


@pytest.fixture
def env(dev_server: DevServer) -> DevServer:
    # The real dev server: the test server skips no time while the (fake) watch runs, and it
    # does not tell a parent that its child was terminated.
    return dev_server


async def _status(handle):  # type: ignore[no-untyped-def]
    return await handle.query(ServiceMonitorWorkflow.status)


def _failover_runs(world: FakeWorld) -> int:
    return world.ran.count("replica.promote og-b") + world.ran.count("state.promote redis-b")


async def test_a_flapping_primary_with_a_healthy_standby_is_failed_over_and_frozen(
    env: DevServer,
) -> None:
    world = FakeWorld()
    async with new_worker(env.client, WORKFLOWS, world.activities()) as worker:
        handle = await start_monitor(env, worker.task_queue)
        await world.watch_results.put(failed(GATEWAY, "og-a", flapping=True))
        reason = await wait_decision(handle, "failover")
        assert reason.startswith(
            "failing over order-gateway from og-a to og-b: og-a failed: og-a missed 3 "
            "heartbeats in a row (last error: connection refused); og-a is flapping: its "
            "restarts are frozen, failing over keeps order-gateway serving; og-b is the "
            "healthy standby"
        ), reason
        frozen = await wait_decision(handle, "frozen")
        assert frozen == (
            "og-a is flapping: automatic restarts frozen for 300 s; an operator must look "
            "(drc resume order-gateway or drc restart order-gateway og-a lifts it)"
        )
        await wait_decision(handle, "reprotect-done")
        status = await _status(handle)
        assert status.primary == "og-b" and status.frozen == ["og-a"]
        assert world.calls["start"] == [], "a frozen replica is never restarted"
        await assert_eventually(lambda: _notified(world, "frozen"))
        said = await handle.execute_update(
            ServiceMonitorWorkflow.resume, PauseRequest("looked at it", "alice")
        )
        assert said == "lifted the freeze of og-a"
        assert (await _status(handle)).frozen == []
        assert await wait_decision(handle, "unfrozen") == "alice lifted the freeze of og-a"
        await handle.terminate()


async def _notified(world: FakeWorld, kind: str) -> None:
    assert kind in [n.kind for n in world.notes], world.notes


async def test_a_flapping_single_replica_is_frozen_then_restarted_when_the_freeze_expires(
    env: DevServer,
) -> None:
    risk = service(
        {
            "name": "risk-engine",
            "replicas": [
                {"name": "re-a", "region": "ldn", "url": "http://127.0.0.1:7", "process": "re-a"}
            ],
            "thresholds": {"flap_freeze_s": 2},
        }
    )
    world = FakeWorld()
    async with new_worker(env.client, WORKFLOWS, world.activities()) as worker:
        handle = await start_monitor(env, worker.task_queue, svc=risk)
        await world.watch_results.put(failed(risk, "re-a", flapping=True))
        assert "automatic restarts frozen for 2 s" in await wait_decision(handle, "frozen")
        replica = (await _status(handle)).replicas[0]
        assert replica.state is ReplicaState.FROZEN and replica.frozen_until is not None
        assert world.calls["start"] == []
        # The freeze is bounded: it expires by itself (2 s, real time: the fake watch is a
        # running activity, so the test server does not skip time) and the restart follows.
        reason = await wait_decision(handle, "unfrozen")
        assert reason == "the freeze of re-a expired: automatic restarts resume"
        await wait_decision(handle, "restarted")
        assert world.calls["start"] == ["re-a"]
        await handle.terminate()


async def test_an_operator_restart_lifts_a_freeze(env: DevServer) -> None:
    world = FakeWorld()
    async with new_worker(env.client, WORKFLOWS, world.activities()) as worker:
        handle = await start_monitor(env, worker.task_queue, runbooks=False)
        await world.watch_results.put(failed(GATEWAY, "og-b", flapping=True))
        await wait_decision(handle, "frozen")
        await handle.execute_update(
            ServiceMonitorWorkflow.request_restart, RestartRequest("og-b", "fixed", "bob")
        )
        await wait_decision(handle, "restarted")
        assert await wait_decision(handle, "unfrozen") == "bob lifted the freeze of og-b"
        assert world.calls["start"] == ["og-b"]
        await handle.terminate()


async def test_a_terminated_failover_is_finished_by_a_new_one(env: DevServer) -> None:
    world = FakeWorld()
    release = world.hold("replica.promote og-b")
    async with new_worker(env.client, WORKFLOWS, world.activities()) as worker:
        handle = await start_monitor(env, worker.task_queue)
        await world.watch_results.put(failed(GATEWAY, "og-a"))
        await assert_eventually(lambda: _ran(world, "replica.promote og-b"))
        wid = f"failover/{key(handle)}"
        first = env.client.get_workflow_handle(wid)
        first_run = (await first.describe()).run_id
        await first.terminate(reason="stuck, says the operator")
        reason = await wait_decision(handle, "failover-terminated")
        assert reason == (
            f"{wid} was terminated before it "
            "finished: its steps may be half done; finishing the failover to og-b (every step "
            "converges)"
        )
        release.set()
        await wait_decision(handle, "failover-done")
        await wait_decision(handle, "reprotect-done")
        assert (await _status(handle)).primary == "og-b"
        second = await env.client.get_workflow_handle(wid).describe()
        assert second.run_id != first_run, "a second execution finished the failover"
        await handle.terminate()


async def _ran(world: FakeWorld, text: str) -> None:
    assert text in world.ran, world.ran


async def test_a_terminated_reprotect_does_not_block_the_next_failover(
    env: DevServer,
) -> None:
    world = FakeWorld()
    hold = world.hold("replica.demote og-a")
    async with new_worker(env.client, WORKFLOWS, world.activities()) as worker:
        handle = await start_monitor(env, worker.task_queue)
        await world.watch_results.put(failed(GATEWAY, "og-a"))
        await wait_decision(handle, "failover-done")
        await assert_eventually(lambda: _ran(world, "replica.demote og-a"))
        rid = f"reprotect/{key(handle)}"
        await env.client.get_workflow_handle(rid).terminate(reason="drill")
        reason = await wait_decision(handle, "reprotect-terminated")
        assert f"{rid} was terminated; re-protecting og-a again in 2 s" == reason
        hold.set()
        await wait_decision(handle, "reprotect-done")
        # og-a is og-b's standby again: og-b's failure fails the service back over at once.
        await world.watch_results.put(failed(GATEWAY, "og-b"))

        async def failed_back() -> None:
            status = await _status(handle)
            assert status.primary == "og-a", "\n".join(
                f"{d.action}: {d.reason}" for d in status.decisions
            )

        await assert_eventually(failed_back)
        await handle.terminate()


async def test_a_terminated_restart_is_noticed_and_looked_at_again(
    env: DevServer,
) -> None:
    world = FakeWorld()
    hold = world.hold("start og-b")
    async with new_worker(env.client, WORKFLOWS, world.activities()) as worker:
        handle = await start_monitor(env, worker.task_queue, runbooks=False)
        await world.watch_results.put(failed(GATEWAY, "og-b"))
        await assert_eventually(lambda: _started(world, 1))
        wid = f"restart/{key(handle)}/og-b"
        await env.client.get_workflow_handle(wid).terminate(reason="x")
        reason = await wait_decision(handle, "restart-terminated")
        assert reason == f"{wid} was terminated; looking at og-b again in 1 s"
        hold.set()
        await wait_decision(handle, "restarted")
        assert world.calls["start"] == ["og-b", "og-b"]
        await handle.terminate()


async def _started(world: FakeWorld, n: int) -> None:
    assert len(world.calls["start"]) >= n, world.calls


async def test_failover_requested_by_signal_is_validated_and_a_refusal_recorded(
    env: DevServer,
) -> None:
    world = FakeWorld()
    async with new_worker(env.client, WORKFLOWS, world.activities()) as worker:
        handle = await start_monitor(env, worker.task_queue, state=all_healthy(GATEWAY))
        await handle.signal(ServiceMonitorWorkflow.request_failover, FailoverRequest(to="og-z"))
        reason = await wait_decision(handle, "failover-refused")
        assert reason == (
            "cannot fail over order-gateway: unknown replica 'og-z' of order-gateway "
            "(known: og-a, og-b)"
        )
        await assert_eventually(lambda: _notified(world, "failover-refused"))
        await handle.signal(
            ServiceMonitorWorkflow.request_failover, FailoverRequest(reason="drill", operator="al")
        )
        await wait_decision(handle, "failover-done")
        assert (await _status(handle)).primary == "og-b"
        await handle.terminate()


async def test_dry_run_plans_a_failover_and_changes_nothing(env: DevServer) -> None:
    world = FakeWorld()
    async with new_worker(env.client, WORKFLOWS, world.activities()) as worker:
        handle = await start_monitor(env, worker.task_queue, state=all_healthy(GATEWAY))
        plan = await handle.query(ServiceMonitorWorkflow.plan_failover, FailoverRequest())
        assert plan.target == "og-b" and plan.refusal is None
        assert plan.because == "og-b is the healthy standby"
        names = [g.name for g in plan.guards]
        assert names[:2] == ["one failover at a time", "failover possible"]
        assert plan.steps[0] == (
            "1. hold: guard replica.healthy og-b; traffic.set og-b drain "
            "(undo: traffic.set og-b ready)"
        )
        restart = await handle.query(
            ServiceMonitorWorkflow.plan_restart, RestartRequest("og-a", "drill", "al")
        )
        assert any(g.name == "serving" and not g.ok for g in restart.guards), restart.guards
        assert world.ran == [] and world.calls["start"] == []
        assert (await _status(handle)).repairs_running == []
        await handle.terminate()


async def test_a_forced_failover_needs_a_reason_and_is_recorded_as_forced(
    env: DevServer,
) -> None:
    world = FakeWorld()
    async with new_worker(env.client, WORKFLOWS, world.activities()) as worker:
        handle = await start_monitor(env, worker.task_queue, state=all_healthy(GATEWAY))
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await handle.execute_update(
                ServiceMonitorWorkflow.failover, FailoverRequest(force=True)
            )
        assert "needs a reason of your own" in refused.value.cause.message  # type: ignore[union-attr]
        await handle.execute_update(
            ServiceMonitorWorkflow.failover,
            FailoverRequest(force=True, reason="disk gone on og-a", operator="carol"),
        )
        reason = await wait_decision(handle, "failover")
        assert reason.endswith("FORCED by carol: replication guards skipped"), reason
        await handle.terminate()


async def test_drain_is_per_replica_and_never_the_last_in_rotation(
    env: DevServer,
) -> None:
    world = FakeWorld()
    world.hold("replica.wait_healthy md-a 60")
    world.hold("replica.wait_healthy md-b 60")
    async with new_worker(env.client, WORKFLOWS, world.activities()) as worker:
        handle = await start_monitor(env, worker.task_queue, svc=QUOTES)
        await world.watch_results.put(failed(QUOTES, "md-a"))
        await wait_decision(handle, "drain")
        await world.watch_results.put(
            failed(QUOTES, "md-b", others={"md-a": track(ReplicaState.FAILED)})
        )

        async def both_drained() -> None:
            running = (await _status(handle)).repairs_running
            drains = [f"drain/{key(handle)}/md-a", f"drain/{key(handle)}/md-b"]
            assert all(d in running for d in drains), running

        await assert_eventually(both_drained)
        await world.watch_results.put(
            failed(
                QUOTES,
                "md-c",
                others={"md-a": track(ReplicaState.FAILED), "md-b": track(ReplicaState.FAILED)},
            )
        )
        reason = await wait_decision(handle, "no-drain")
        assert reason == (
            "not draining md-c: it is the last replica in rotation (drained: md-a, md-b); the "
            "traffic manager's own health checks decide"
        )
        await handle.terminate()


async def test_a_changed_catalog_reaches_the_monitor_and_a_removed_service_retires_it(
    env: DevServer,
) -> None:
    world = FakeWorld()
    async with new_worker(env.client, WORKFLOWS, world.activities()) as worker:
        handle = await start_monitor(env, worker.task_queue)
        runbooks = load_builtin_runbooks()
        changed = GATEWAY.model_copy(update={"primary": "og-b"})
        config = MonitorConfig(changed, "http://127.0.0.1:10/RPC2", runbooks, ["true"], False)
        await handle.signal(ServiceMonitorWorkflow.reconfigure, config)
        reason = await wait_decision(handle, "reconfigured")
        assert reason == (
            "configuration of order-gateway changed: service, supervisor_url, allowed_commands; "
            "the catalog now names og-b primary, og-a stays primary until a failover "
            "(drc failover order-gateway --to og-b)"
        )
        await assert_eventually(lambda: _watching_with(world, "http://127.0.0.1:10/RPC2"))
        said = await handle.execute_update(ServiceMonitorWorkflow.retire, RetireRequest())
        assert said == "order-gateway removed from the catalog (drc reload): monitor ends"
        assert await handle.result() == said
        assert "retired" in [d.action for d in (await _status(handle)).decisions]


async def _watching_with(world: FakeWorld, supervisor_url: str) -> None:
    assert world.watch_inputs and world.watch_inputs[-1].supervisor_url == supervisor_url


def _state_sync(link_up: bool, state: str = "in_sync") -> dict[str, SyncStats]:
    alive = AliveSample(99.0, 1.2 if link_up else None, link_up, 5000, 5000, state)
    stats = SyncStats(
        replica="redis-b",
        primary="redis-a",
        state=state,
        primary_offset=5000,
        replica_offset=5000,
        link_up=link_up,
        last_alive=alive,
    )
    return {"redis-b": stats}


async def test_a_dead_state_primary_fails_over_on_what_was_last_seen(
    env: DevServer,
) -> None:
    world = FakeWorld()
    async with new_worker(env.client, WORKFLOWS, world.activities()) as worker:
        handle = await start_monitor(env, worker.task_queue, svc=STATE)
        await world.watch_results.put(failed(STATE, "redis-a", at=100.0, sync=_state_sync(True)))
        reason = await wait_decision(handle, "failover-state")
        assert reason.endswith(
            "redis-b is the healthy standby: redis-b was in sync when redis-a last answered "
            "(link up, lag 1.2 ms); its offset is checked live"
        ), reason
        await assert_eventually(
            lambda: _ran(world, "state.caught_up redis-b redis-a 0 99.250 5000")
        )
        await handle.terminate()


async def test_a_standby_whose_link_was_already_down_is_refused_then_forced(
    env: DevServer,
) -> None:
    world = FakeWorld()
    async with new_worker(env.client, WORKFLOWS, world.activities()) as worker:
        handle = await start_monitor(env, worker.task_queue, svc=STATE)
        sync = _state_sync(False, "sync_degraded")
        await world.watch_results.put(failed(STATE, "redis-a", at=100.0, sync=sync))
        reason = await wait_decision(handle, "no-failover")
        assert reason.startswith(
            "cannot fail over order-state: redis-b's replication link was already down when "
            "redis-a last answered; promoting could lose acknowledged writes (override: drc "
            'failover order-state --force --reason "...")'
        ), reason
        assert not [r for r in world.ran if "promote" in r]
        await handle.execute_update(
            ServiceMonitorWorkflow.failover,
            FailoverRequest(force=True, reason="redis-a's disk is gone", operator="dan"),
        )
        await wait_decision(handle, "failover-state-done")
        forced = [r for r in world.ran if r.startswith("state.caught_up")]
        assert forced == ["state.caught_up redis-b redis-a -1 99.250 5000"], world.ran
        assert "FORCED by dan" in await wait_decision(handle, "failover-state")
        await handle.terminate()


async def test_resume_lifts_the_freeze_of_a_drained_active_active_replica(
    env: DevServer,
) -> None:
    world = FakeWorld()
    world.hold("replica.wait_healthy md-a 60")
    async with new_worker(env.client, WORKFLOWS, world.activities()) as worker:
        handle = await start_monitor(env, worker.task_queue, svc=QUOTES)
        await world.watch_results.put(failed(QUOTES, "md-a", flapping=True))
        await wait_decision(handle, "frozen")
        said = await handle.execute_update(
            ServiceMonitorWorkflow.resume, PauseRequest("looked", "eve")
        )
        assert said == "lifted the freeze of md-a"
        assert await wait_decision(handle, "unfrozen") == "eve lifted the freeze of md-a"
        await wait_decision(handle, "restart")
        await handle.terminate()


async def test_a_state_primary_its_standby_still_replicates_from_is_unreachable_not_dead(
    env: DevServer,
) -> None:
    world = FakeWorld()
    async with new_worker(env.client, WORKFLOWS, world.activities()) as worker:
        handle = await start_monitor(env, worker.task_queue, svc=STATE)
        sync = _state_sync(True)
        sync["redis-b"].primary_reachable = False  # drc cannot reach redis-a; redis-b can
        cut = failed(STATE, "redis-a", at=100.0, sync=sync)
        await world.watch_results.put(cut)
        reason = await wait_decision(handle, "unreachable")
        assert reason.startswith(
            "redis-a does not answer drc, but redis-b still replicate(s) from it (replication "
            "link up): unreachable from drc, not dead"
        ), reason
        assert not [r for r in world.ran if "promote" in r]
        # Then redis-b loses it too: dead after all, failed over on what was last seen.
        lost = _state_sync(True)
        lost["redis-b"].link_up, lost["redis-b"].primary_reachable = False, False
        await world.watch_results.put(WatchResult([], cut.tracks, sync=lost))
        await wait_decision(handle, "failover-state")
        await handle.terminate()
