"""Grouped watching: monitors register with a WatchGroup, which sends them watch reports.

The real dev server; the group's activity is faked (it only records the specs it was given),
reports are sent the way the real activity sends them (a ``watch_report`` signal).
"""

from __future__ import annotations

import asyncio
import uuid

from temporalio import activity

from drc.names import watch_group_id
from drc.operator import PauseRequest, RetireRequest
from drc.watch import GroupProgress, WatchGroupInput, WatchReport
from tests.support.monitor_world import GATEWAY, FakeWorld, failed, start_monitor, wait_decision
from tests.support.net import assert_eventually
from tests.support.temporal import DevServer, new_worker
from workflows.monitor import ServiceMonitorWorkflow
from workflows.restart import RestartReplicaWorkflow
from workflows.runbook import RunbookWorkflow
from workflows.watch_group import WatchGroupWorkflow

WORKFLOWS = [ServiceMonitorWorkflow, RestartReplicaWorkflow, RunbookWorkflow, WatchGroupWorkflow]


class FakeGroupActivity:
    """Stands in for ``watch_group``: runs until cancelled, probing nothing."""

    @activity.defn(name="watch_group")
    async def watch_group(self, inp: WatchGroupInput) -> GroupProgress:
        while True:
            activity.heartbeat()
            await asyncio.sleep(0.2)


async def _group(env: DevServer, task_queue: str) -> str:
    group = watch_group_id(int(uuid.uuid4().int % 10**9))
    await env.client.start_workflow(
        WatchGroupWorkflow.run, WatchGroupInput(group), id=group, task_queue=task_queue
    )
    return group


async def _members(env: DevServer, group: str) -> WatchGroupInput:
    handle = env.client.get_workflow_handle_for(WatchGroupWorkflow.run, group)
    return await handle.query(WatchGroupWorkflow.members)


def _report(seq: int, generation: int = 0) -> WatchReport:
    result = failed(GATEWAY, "og-b")
    return WatchReport("order-gateway", generation, seq, result.transitions, result.tracks)


async def test_a_grouped_monitor_registers_and_applies_each_report_once(
    dev_server: DevServer,
) -> None:
    world, fake = FakeWorld(), FakeGroupActivity()
    activities = [*world.activities(), fake.watch_group]
    async with new_worker(dev_server.client, WORKFLOWS, activities) as worker:
        group = await _group(dev_server, worker.task_queue)
        handle = await start_monitor(
            dev_server, worker.task_queue, runbooks=False, watch_group=group
        )

        async def registered() -> None:
            members = (await _members(dev_server, group)).members
            assert "order-gateway" in members and members["order-gateway"].monitor_id == handle.id

        await assert_eventually(registered)
        for _ in range(3):  # delivered at least once: the same report three times
            await handle.signal(ServiceMonitorWorkflow.watch_report, _report(seq=1))
        await wait_decision(handle, "restarted")
        status = await handle.query(ServiceMonitorWorkflow.status)
        transitions = [d for d in status.decisions if d.action == "transition"]
        assert len(transitions) == 1 and world.calls["start"] == ["og-b"], status.decisions
        assert world.watch_inputs == [], "a grouped monitor runs no watch activity of its own"
        await handle.signal(ServiceMonitorWorkflow.watch_report, _report(seq=1, generation=-1))
        await asyncio.sleep(0.5)  # nothing should follow a stale report; give it the time to
        assert world.calls["start"] == ["og-b"]
        await handle.terminate()


async def test_a_pause_is_a_new_generation_the_group_stops_watching(
    dev_server: DevServer,
) -> None:
    world, fake = FakeWorld(), FakeGroupActivity()
    activities = [*world.activities(), fake.watch_group]
    async with new_worker(dev_server.client, WORKFLOWS, activities) as worker:
        group = await _group(dev_server, worker.task_queue)
        handle = await start_monitor(
            dev_server, worker.task_queue, runbooks=False, watch_group=group
        )
        await handle.execute_update(ServiceMonitorWorkflow.pause, PauseRequest("upgrade"))

        async def spec_paused(paused: bool, after: int) -> int:
            spec = (await _members(dev_server, group)).members.get("order-gateway")
            assert spec is not None and spec.paused is paused and spec.generation > after, spec
            return spec.generation

        # (paused before its first registration, it may register paused at generation 0)
        paused_at = await assert_eventually(lambda: spec_paused(True, -1))
        await handle.execute_update(ServiceMonitorWorkflow.resume, PauseRequest("done"))
        resumed_at = await assert_eventually(lambda: spec_paused(False, paused_at))
        report = _report(seq=1, generation=resumed_at)
        await handle.signal(ServiceMonitorWorkflow.watch_report, report)
        await wait_decision(handle, "restarted")
        await handle.terminate()


async def test_a_monitor_whose_group_is_gone_watches_alone_and_says_so(
    dev_server: DevServer,
) -> None:
    world = FakeWorld()
    async with new_worker(dev_server.client, WORKFLOWS, world.activities()) as worker:
        handle = await start_monitor(
            dev_server, worker.task_queue, runbooks=False, watch_group="watch-group/nowhere"
        )
        reason = await wait_decision(handle, "watch-alone")
        assert reason.startswith(
            "cannot register with watch group watch-group/nowhere (Unable to signal external "
            "workflow because it was not found): watching order-gateway with its own activity"
        ), reason
        await assert_eventually(lambda: _watching_alone(world))
        await world.watch_results.put(failed(GATEWAY, "og-b"))
        await wait_decision(handle, "restarted")
        assert [n.kind for n in world.notes] == ["watch-alone"]
        await handle.terminate()


async def _watching_alone(world: FakeWorld) -> None:
    assert world.watch_inputs, "no watch activity of its own yet"


async def test_a_retired_monitor_leaves_its_group(dev_server: DevServer) -> None:
    world, fake = FakeWorld(), FakeGroupActivity()
    activities = [*world.activities(), fake.watch_group]
    async with new_worker(dev_server.client, WORKFLOWS, activities) as worker:
        group = await _group(dev_server, worker.task_queue)
        handle = await start_monitor(
            dev_server, worker.task_queue, runbooks=False, watch_group=group
        )
        await assert_eventually(lambda: _member_count(dev_server, group, 1))
        await handle.execute_update(ServiceMonitorWorkflow.retire, RetireRequest())
        await handle.result()
        await assert_eventually(lambda: _member_count(dev_server, group, 0))


async def _member_count(env: DevServer, group: str, count: int) -> None:
    assert len((await _members(env, group)).members) == count


async def test_a_pause_and_a_resume_back_to_back_end_watched(dev_server: DevServer) -> None:
    # The resume may land while the monitor still sends the paused spec: what it records as
    # registered must be what it sent, or it never registers the resumed one.
    world, fake = FakeWorld(), FakeGroupActivity()
    activities = [*world.activities(), fake.watch_group]
    async with new_worker(dev_server.client, WORKFLOWS, activities) as worker:
        group = await _group(dev_server, worker.task_queue)
        handle = await start_monitor(
            dev_server, worker.task_queue, runbooks=False, watch_group=group
        )
        for _ in range(5):
            await handle.execute_update(ServiceMonitorWorkflow.pause, PauseRequest("x"))
            await handle.execute_update(ServiceMonitorWorkflow.resume, PauseRequest("y"))

        async def watched() -> None:
            spec = (await _members(dev_server, group)).members.get("order-gateway")
            assert spec is not None and not spec.paused, spec

        await assert_eventually(watched)
        await handle.terminate()


def test_a_restarted_member_numbers_its_reports_past_every_earlier_attempts() -> None:
    import time

    from activities.watch_group import _Run, start_seq
    from drc.watch import MemberProgress, WatchSpec

    spec = WatchSpec(GATEWAY, "monitor/order-gateway", generation=3, paused=True, seq_floor=2)
    earlier = start_seq()  # where an attempt that started before this one counted from
    time.sleep(0.01)
    # A retry with no heartbeat to resume from, and one that resumes seq 10: either way the
    # reports the attempt before sent (after its last heartbeat, or before its first) stay
    # below, so the monitor applies this attempt's reports instead of dropping them.
    for resumed in (GroupProgress(), GroupProgress({"order-gateway": MemberProgress(3, 10, {})})):
        run = _Run(watches=None, client=None, group_workflow_id="g")  # type: ignore[arg-type]
        run.apply({"order-gateway": spec}, resumed)
        assert run.members["order-gateway"].seq > earlier + 1000
    # Numbers never go down: a member resumed above the clock keeps counting from there.
    ahead = GroupProgress({"order-gateway": MemberProgress(3, 2**60, {})})
    run = _Run(watches=None, client=None, group_workflow_id="g")  # type: ignore[arg-type]
    run.apply({"order-gateway": spec}, ahead)
    assert run.members["order-gateway"].seq == 2**60
