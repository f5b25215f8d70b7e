"""Action activities that need no outside world, and placeholder rendering."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.actions import RunbookActivities
from activities.probes.engine import ProbeEngine
from activities.process_control import ProcessController
from activities.state_actions import StateActions
from activities.traffic import ServerState, TrafficManager, TrafficState
from drc.catalog_loader import parse_catalog
from drc.errors import RunbookError
from drc.repair import ActionInput, ProcessResult
from runbooks.actions import ACTIONS
from runbooks.runbook import render_args

SERVICE = parse_catalog(
    {
        "services": [
            {
                "name": "order-gateway",
                "redundancy": "active-standby",
                "primary": "og-a",
                "replicas": [
                    {"name": "og-a", "region": "ldn", "url": "http://og-a:1", "process": "og-a"},
                    {"name": "og-b", "region": "nyc", "url": "http://og-b:2", "process": "og-b"},
                ],
            }
        ]
    }
).services[0]


class FakeTraffic(TrafficManager):
    def __init__(self) -> None:
        self.states = {"og-a": TrafficState.READY, "og-b": TrafficState.READY}

    async def set_state(self, backend: str, server: str, state: TrafficState) -> ServerState:
        self.states[server] = state
        return self._state(backend, server)

    async def servers(self, backend: str | None = None) -> list[ServerState]:
        return [self._state(backend or "be_order-gateway", s) for s in self.states]

    def _state(self, backend: str, server: str) -> ServerState:
        return ServerState(backend, server, self.states[server], "up", "127.0.0.1:1")


class NoProcesses(ProcessController):
    async def info(self, url: str, name: str) -> Any:
        raise AssertionError("not used")

    async def stop(self, url: str, name: str) -> ProcessResult:
        return ProcessResult("stop", "RUNNING", "STOPPED", 7)

    async def start(self, url: str, name: str) -> ProcessResult:
        return ProcessResult("none", "RUNNING", "RUNNING", 7)


@pytest.fixture
async def actions() -> Any:
    async with httpx.AsyncClient() as http:
        yield RunbookActivities(FakeTraffic(), NoProcesses(), ProbeEngine(), http)


def run(activity: Any, action: str, allowed: list[str] | None = None, **args: Any) -> Any:
    env = ActivityEnvironment()
    env.info = env.info.__class__(
        **{**env.info.__dict__, "start_to_close_timeout": timedelta(seconds=5)}
    )
    inp = ActionInput(action, args, SERVICE, "http://127.0.0.1:9/RPC2", allowed or [])
    return env.run(activity, inp)


def test_every_registered_action_has_an_activity_of_its_name() -> None:
    names = {
        fn.__temporal_activity_definition.name  # type: ignore[attr-defined]
        for cls in (RunbookActivities, StateActions)
        for fn in cls.__dict__.values()
        if hasattr(fn, "__temporal_activity_definition")
    }
    assert names == {spec.activity for spec in ACTIONS.values()}


async def test_command_runs_an_argv_without_a_shell(actions: RunbookActivities) -> None:
    result = await run(actions.command, "command", ["echo"], argv=["echo", "a;b", "$HOME"])
    assert result.summary == "echo a;b $HOME exited 0: a;b $HOME"


async def test_command_not_in_the_allow_list_is_refused(actions: RunbookActivities) -> None:
    with pytest.raises(ApplicationError) as refused:
        await run(actions.command, "command", ["echo"], argv=["rm", "-rf", "/tmp/x"])
    assert refused.value.type == "CommandNotAllowed" and refused.value.non_retryable
    assert refused.value.message == "command 'rm' is not allow-listed (allowed: echo)"


async def test_command_that_exits_non_zero_fails_with_its_stderr(
    actions: RunbookActivities,
) -> None:
    argv = ["sh", "-c", "echo out; echo bad thing >&2; exit 3"]
    with pytest.raises(ApplicationError) as failed:
        await run(actions.command, "command", ["sh"], argv=argv)
    assert failed.value.type == "CommandFailed" and not failed.value.non_retryable
    assert failed.value.message.endswith("exited 3: bad thing")


async def test_command_that_outlives_its_timeout_is_killed(actions: RunbookActivities) -> None:
    env = ActivityEnvironment()
    env.info = env.info.__class__(
        **{**env.info.__dict__, "start_to_close_timeout": timedelta(seconds=0.3)}
    )
    inp = ActionInput("command", {"argv": ["sleep", "5"]}, SERVICE, "", ["sleep"])
    with pytest.raises(TimeoutError):
        await env.run(actions.command, inp)


async def test_traffic_set_says_what_changed(actions: RunbookActivities) -> None:
    result = await run(actions.traffic_set, "traffic.set", server="og-a", state="maint")
    assert result.summary == "og-a in be_order-gateway set to maint (was ready)"


async def test_unknown_replica_is_not_retried(actions: RunbookActivities) -> None:
    with pytest.raises(ApplicationError) as refused:
        await run(actions.process_stop, "process.stop", replica="og-z")
    assert refused.value.type == "UnknownReplica" and refused.value.non_retryable
    assert refused.value.message == "unknown replica 'og-z' of order-gateway (known: og-a, og-b)"


async def test_traffic_expect_fails_on_another_state(actions: RunbookActivities) -> None:
    with pytest.raises(ApplicationError) as failed:
        await run(actions.traffic_expect, "traffic.expect", server="og-a", state="maint")
    assert failed.value.message == "og-a in be_order-gateway is ready, expected maint"


def test_render_args_fills_placeholders() -> None:
    args = {"server": "{to}", "argv": ["echo", "{service}-{to}", "{{literal}}"], "n": 3}
    rendered = render_args(args, {"to": "og-b", "service": "og"})
    assert rendered == {"server": "og-b", "argv": ["echo", "og-og-b", "{literal}"], "n": 3}
    assert args["server"] == "{to}"  # pure: the input is untouched


def test_render_args_refuses_unknown_placeholders() -> None:
    with pytest.raises(RunbookError) as refused:
        render_args({"argv": ["echo", "{nope}"]}, {"to": "og-b"})
    assert str(refused.value) == "arg argv[1]: no value for placeholder {nope} (known: to)"
