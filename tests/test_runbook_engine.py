"""RunbookWorkflow on the time-skipping test server, with same-named fake action activities."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError, CancelledError
from temporalio.testing import WorkflowEnvironment

from drc.catalog_loader import parse_catalog
from drc.repair import ActionInput, ActionResult, RunbookResult
from runbooks.actions import ACTIONS
from runbooks.runbook import Runbook, load_builtin_runbooks
from tests.support.net import assert_eventually
from tests.support.temporal import new_worker, start_time_skipping
from workflows.runbook import RunbookInput, RunbookWorkflow, result_from_failure

SERVICE = parse_catalog(
    {
        "services": [
            {
                "name": "order-gateway",
                "redundancy": "active-standby",
                "primary": "og-a",
                "frontend": "127.0.0.1:3",
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
            }
        ]
    }
).services[0]


def step(name: str, action: str, args: dict[str, Any], undo: tuple[str, dict[str, Any]] | None):
    out: dict[str, Any] = {"name": name, "action": action, "args": args}
    if undo is not None:
        out["compensation"] = {"action": undo[0], "args": undo[1]}
    return out


# Five steps whose calls are all told apart by their description ("traffic.set og-a maint").
STEPS = [
    step(
        "one",
        "traffic.set",
        {"server": "{a}", "state": "maint"},
        ("traffic.set", {"server": "{a}", "state": "ready"}),
    ),
    step("two", "process.stop", {"replica": "{a}"}, ("process.start", {"replica": "{a}"})),
    step("three", "replica.promote", {"replica": "{b}"}, ("replica.demote", {"replica": "{b}"})),
    step(
        "four",
        "traffic.set",
        {"server": "{b}", "state": "drain"},
        ("traffic.set", {"server": "{b}", "state": "ready"}),
    ),
    step("five", "frontend.verify", {"expect_replica": "{b}"}, None),
]
FORWARD = [
    "traffic.set og-a maint",
    "process.stop og-a",
    "replica.promote og-b",
    "traffic.set og-b drain",
    "frontend.verify og-b",
]
UNDO = [
    "traffic.set og-a ready",
    "process.start og-a",
    "replica.demote og-b",
    "traffic.set og-b ready",
]


def runbook(steps: list[dict[str, Any]] | None = None, **extra: Any) -> Runbook:
    data = {"name": "test", "params": ["a", "b"], "steps": steps or STEPS, **extra}
    return Runbook.model_validate(data)


def describe(inp: ActionInput) -> str:
    words = [" ".join(v) if isinstance(v, list) else str(v) for v in inp.args.values()]
    return " ".join([inp.action, *words])


class FakeActions:
    """A same-named fake for every registered action; records calls, fails on request."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.fail: set[str] = set()
        self.flaky: dict[str, int] = {}  # call -> retryable failures before it succeeds
        self.block: str | None = None
        self.release = asyncio.Event()

    def activities(self) -> list[Any]:
        return [self._fake(spec.activity) for spec in ACTIONS.values()]

    def _fake(self, name: str) -> Any:
        @activity.defn(name=name)
        async def fake(inp: ActionInput) -> ActionResult:
            return await self._run(inp)

        return fake

    async def _run(self, inp: ActionInput) -> ActionResult:
        call = describe(inp)
        self.calls.append(call)
        if call == self.block:
            while not self.release.is_set():
                activity.heartbeat()
                await asyncio.sleep(0.05)
        if call in self.fail:
            raise ApplicationError(f"boom: {call}", type="Boom", non_retryable=True)
        if self.flaky.get(call, 0) > 0:
            self.flaky[call] -= 1
            raise ApplicationError(f"flaky: {call}", type="Flaky")
        return ActionResult(inp.action, f"did {call}")


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await start_time_skipping()
    yield environment
    await environment.shutdown()


async def start(
    env: WorkflowEnvironment, task_queue: str, rb: Runbook, params: dict[str, str] | None = None
) -> WorkflowHandle[RunbookWorkflow, RunbookResult]:
    inp = RunbookInput(
        runbook=rb,
        params={"a": "og-a", "b": "og-b"} if params is None else params,
        service=SERVICE,
        supervisor_url="http://127.0.0.1:9/RPC2",
        trigger="test: og-a failed",
    )
    return await env.client.start_workflow(
        RunbookWorkflow.run, inp, id=f"test/{uuid.uuid4()}", task_queue=task_queue
    )


async def failure_of(handle: WorkflowHandle[RunbookWorkflow, RunbookResult]) -> ApplicationError:
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError), cause
    return cause


async def test_all_steps_run_in_order_and_the_journal_is_complete(
    env: WorkflowEnvironment,
) -> None:
    fake = FakeActions()
    async with new_worker(env.client, [RunbookWorkflow], fake.activities()) as worker:
        handle = await start(env, worker.task_queue, runbook())
        result = await handle.result()
        journal = await handle.query(RunbookWorkflow.progress)
    assert fake.calls == FORWARD
    assert result.outcome == "succeeded"
    assert result.reason == "runbook test succeeded: one, two, three, four, five"
    assert result.trigger == "test: og-a failed"
    assert [(r.name, r.status) for r in result.steps] == [
        (name, "succeeded") for name in ("one", "two", "three", "four", "five")
    ]
    assert result.steps[0].summary == "did traffic.set og-a maint"
    assert all(r.started_at is not None and r.finished_at is not None for r in result.steps)
    assert journal == result.steps


@pytest.mark.parametrize("position", range(len(FORWARD)))
async def test_failure_compensates_exactly_the_completed_steps_in_reverse(
    env: WorkflowEnvironment, position: int
) -> None:
    fake = FakeActions()
    fake.fail.add(FORWARD[position])
    async with new_worker(env.client, [RunbookWorkflow], fake.activities()) as worker:
        handle = await start(env, worker.task_queue, runbook())
        error = await failure_of(handle)
    completed_undo = UNDO[:position]
    assert fake.calls == FORWARD[: position + 1] + completed_undo[::-1]
    assert error.type == "RunbookCompensated" and error.non_retryable
    result = result_from_failure(error)
    assert result is not None and result.outcome == "compensated"
    names = ["one", "two", "three", "four", "five"]
    expected = (
        [(n, "compensated") for n in names[:position]]
        + [(names[position], "failed")]
        + [(n, "skipped") for n in names[position + 1 :]]
    )
    assert [(r.name, r.status) for r in result.steps] == expected
    failed = f"step {names[position]!r} ({FORWARD[position]}) failed: boom: {FORWARD[position]}"
    undone = ", ".join(names[:position][::-1])
    tail = f"compensated {undone} in reverse" if position else "nothing to compensate"
    assert result.reason == f"{failed}; {tail}"
    assert error.message == result.reason


async def test_failover_promote_failure_reads_as_one_sentence(env: WorkflowEnvironment) -> None:
    fake = FakeActions()
    fake.fail.add("replica.promote og-b")
    failover = load_builtin_runbooks()["failover"]
    async with new_worker(env.client, [RunbookWorkflow], fake.activities()) as worker:
        handle = await start(
            env, worker.task_queue, failover, {"from_replica": "og-a", "to_replica": "og-b"}
        )
        error = await failure_of(handle)
    assert fake.calls == [
        "replica.healthy og-b",
        "traffic.set og-b drain",
        "traffic.set og-a maint",
        "process.stop og-a",
        "replica.promote og-b",
        "process.start og-a",
        "traffic.set og-a ready",
        "traffic.set og-b ready",
    ]
    assert error.message == (
        "step 'promote' (replica.promote og-b) failed: boom: replica.promote og-b; "
        "compensated stop-old, fence, hold in reverse"
    )


async def test_retryable_failures_are_retried_by_the_step_policy(env: WorkflowEnvironment) -> None:
    fake = FakeActions()
    fake.flaky["process.stop og-a"] = 2  # the default policy makes 3 attempts
    async with new_worker(env.client, [RunbookWorkflow], fake.activities()) as worker:
        result = await (await start(env, worker.task_queue, runbook())).result()
    assert result.outcome == "succeeded"
    assert fake.calls.count("process.stop og-a") == 3


async def test_failed_compensation_is_reported_and_the_others_still_run(
    env: WorkflowEnvironment,
) -> None:
    fake = FakeActions()
    fake.fail |= {"frontend.verify og-b", "process.start og-a"}
    async with new_worker(env.client, [RunbookWorkflow], fake.activities()) as worker:
        error = await failure_of(await start(env, worker.task_queue, runbook()))
    assert fake.calls == FORWARD + UNDO[::-1]
    assert error.type == "RunbookCompensationFailed"
    result = result_from_failure(error)
    assert result is not None and result.outcome == "failed_compensation"
    statuses = {r.name: r.status for r in result.steps}
    assert statuses == {
        "one": "compensated",
        "two": "compensation_failed",
        "three": "compensated",
        "four": "compensated",
        "five": "failed",
    }
    assert result.steps[1].compensation == "process.start og-a: boom: process.start og-a"
    assert result.reason == (
        "step 'five' (frontend.verify og-b) failed: boom: frontend.verify og-b; "
        "compensated four, three, one in reverse; "
        "compensation of two (process.start og-a: boom: process.start og-a) failed"
    )


async def test_guard_failure_skips_the_step_and_compensates_the_earlier_ones(
    env: WorkflowEnvironment,
) -> None:
    steps = [dict(s) for s in STEPS]
    steps[2]["guard"] = {"action": "replica.healthy", "args": {"replica": "{b}"}}
    fake = FakeActions()
    fake.fail.add("replica.healthy og-b")
    async with new_worker(env.client, [RunbookWorkflow], fake.activities()) as worker:
        error = await failure_of(await start(env, worker.task_queue, runbook(steps)))
    assert "replica.promote og-b" not in fake.calls
    assert fake.calls == FORWARD[:2] + ["replica.healthy og-b"] + UNDO[:2][::-1]
    assert error.message == (
        "step 'three' not run: guard replica.healthy og-b failed: boom: replica.healthy og-b; "
        "compensated two, one in reverse"
    )


@pytest.mark.parametrize(
    ("change", "params", "problem"),
    [
        (
            {"action": "replica.explode"},
            None,
            "steps[0].action: unknown action 'replica.explode' (known: ",
        ),
        (
            {"args": {"state": "maint"}},
            None,
            "steps[0].args: missing required arg 'server' of action traffic.set",
        ),
        (
            {"args": {"server": "{c}", "state": "maint"}},
            None,
            "steps[0].args.server: unknown placeholder {c} (known: a, b, backend, ",
        ),
        ({}, {"a": "og-a"}, "params.b: missing value for param 'b'"),
    ],
)
async def test_invalid_runbook_fails_before_any_activity_runs(
    env: WorkflowEnvironment,
    change: dict[str, Any],
    params: dict[str, str] | None,
    problem: str,
) -> None:
    steps = [{**STEPS[0], **change}, *STEPS[1:]]
    fake = FakeActions()
    async with new_worker(env.client, [RunbookWorkflow], fake.activities()) as worker:
        error = await failure_of(await start(env, worker.task_queue, runbook(steps), params))
    assert fake.calls == []
    assert error.type == "InvalidRunbook" and error.non_retryable
    assert error.message.startswith("runbook test cannot run on order-gateway: ")
    assert problem in error.message


async def test_cancellation_mid_run_compensates_the_completed_steps(
    env: WorkflowEnvironment,
) -> None:
    fake = FakeActions()
    fake.block = "replica.promote og-b"
    async with new_worker(env.client, [RunbookWorkflow], fake.activities()) as worker:
        handle = await start(env, worker.task_queue, runbook())
        try:

            async def blocked() -> None:
                assert fake.calls[-1:] == ["replica.promote og-b"], fake.calls

            await assert_eventually(blocked)
            await handle.cancel()
            with pytest.raises(WorkflowFailureError) as failed:
                await handle.result()
        finally:
            fake.release.set()
        journal = await handle.query(RunbookWorkflow.progress)
    assert isinstance(failed.value.cause, CancelledError)
    assert fake.calls == FORWARD[:3] + UNDO[:2][::-1]
    assert [r.status for r in journal] == [
        "compensated",
        "compensated",
        "failed",
        "skipped",
        "skipped",
    ]
    assert journal[2].summary == "step 'three' (replica.promote og-b) cancelled"
