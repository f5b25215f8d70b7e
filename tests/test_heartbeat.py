"""Actions heartbeat while they run, so a dead worker's step is retried within seconds."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from temporalio.activity import _Definition
from temporalio.testing import ActivityEnvironment

from activities.actions import RunbookActivities
from activities.heartbeat import HEARTBEAT_EVERY_S, heartbeating
from activities.process_control import ProcessActivities
from activities.state_actions import StateActions
from drc.repair import ActionInput, ActionResult


async def test_a_heartbeating_activity_beats_until_it_returns() -> None:
    beats: list[tuple[Any, ...]] = []

    @heartbeating
    async def work(until: int) -> str:
        while len(beats) < until:
            await asyncio.sleep(0.05)
        return "done"

    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details)
    assert await env.run(work, 3) == "done"
    seen = len(beats)
    await asyncio.sleep(HEARTBEAT_EVERY_S * 3)
    assert len(beats) == seen, "no beat after the activity returned"


async def test_a_heartbeating_activity_that_fails_stops_beating_and_raises() -> None:
    beats: list[tuple[Any, ...]] = []

    @heartbeating
    async def work() -> None:
        while not beats:
            await asyncio.sleep(0.05)
        raise ValueError("broken")

    env = ActivityEnvironment()
    env.on_heartbeat = lambda *details: beats.append(details)
    with pytest.raises(ValueError, match="broken"):
        await env.run(work)
    seen = len(beats)
    await asyncio.sleep(HEARTBEAT_EVERY_S * 3)
    assert len(beats) == seen


def test_every_action_and_process_activity_heartbeats_and_keeps_its_types() -> None:
    actions = RunbookActivities.__new__(RunbookActivities).activities()
    state = StateActions.__new__(StateActions).activities()
    for bound in [*actions, *state]:
        defn = _Definition.must_from_callable(bound)
        assert defn.arg_types == [ActionInput] and defn.ret_type is ActionResult, defn.name
        assert bound.__func__.__wrapped__ is not None, f"{defn.name} does not heartbeat"
    for fn in (ProcessActivities.stop_process, ProcessActivities.start_process):
        assert _Definition.must_from_callable(fn).name in ("stop_process", "start_process")
        assert fn.__wrapped__ is not None  # type: ignore[attr-defined]
