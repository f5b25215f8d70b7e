from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import httpx
import pytest
from temporalio.exceptions import ApplicationError

from activities.process_control import (
    ProcessActivities,
    SupervisorController,
    SupervisorFaultError,
    to_application_error,
)
from drc.credentials import SUPERVISOR_CREDENTIALS_FILE, ensure_credentials
from drc.errors import ProcessControlError, ProcessExitedError
from drc.repair import ProcessInput
from tests.support.net import assert_eventually, free_port
from tests.support.supervisor import Platform, running_platform, small_catalog


@pytest.fixture
def platform(tmp_path: Path):
    # market-data alone: two programs with no dependencies start fastest.
    with running_platform(tmp_path, small_catalog(("market-data",))) as running:
        yield running


@pytest.fixture
async def controller(tmp_path: Path):
    # The login the platform's supervisord will ask for: written first, it is kept there.
    login = ensure_credentials(tmp_path / SUPERVISOR_CREDENTIALS_FILE)
    async with httpx.AsyncClient() as http:
        yield SupervisorController(http, credentials=login)


async def heartbeat_pid(platform: Platform, replica: str) -> int:
    async with httpx.AsyncClient(timeout=2) as http:
        resp = await http.get(platform.url(replica, "/health/heartbeat"))
        assert resp.status_code == 200
        return int(resp.json()["pid"])


async def test_info_of_a_running_program(platform: Platform, controller: SupervisorController):
    info = await controller.info(platform.supervisor_url, "md-a")
    assert info.name == "md-a" and info.state == "RUNNING"
    assert info.pid == await heartbeat_pid(platform, "md-a")
    assert info.exitstatus is None


async def test_stop_then_start_gives_a_new_process(
    platform: Platform, controller: SupervisorController
):
    old_pid = await heartbeat_pid(platform, "md-a")

    stopped = await controller.stop(platform.supervisor_url, "md-a")
    assert (stopped.action, stopped.state_before, stopped.state_after) == (
        "stop",
        "RUNNING",
        "STOPPED",
    )
    assert stopped.pid == old_pid
    with pytest.raises(httpx.ConnectError):
        await heartbeat_pid(platform, "md-a")

    started = await controller.start(platform.supervisor_url, "md-a")
    assert (started.action, started.state_before) == ("start", "STOPPED")
    assert started.pid is not None and started.pid != old_pid

    async def serves_again() -> int:
        try:
            return await heartbeat_pid(platform, "md-a")
        except httpx.TransportError as exc:
            raise AssertionError(str(exc)) from exc

    assert await assert_eventually(serves_again, timeout=15) == started.pid


async def test_stop_of_a_hung_process(platform: Platform, controller: SupervisorController):
    info = await controller.info(platform.supervisor_url, "md-a")
    assert info.pid is not None
    os.kill(info.pid, signal.SIGSTOP)  # hung: accepts nothing, acts on no signal but KILL/CONT

    stopped = await controller.stop(platform.supervisor_url, "md-a")
    assert stopped.action == "stop" and stopped.state_after == "STOPPED"
    # SIGCONT first, so the replica shut down on SIGTERM (exit 0) rather than sitting out
    # stopwaitsecs and being SIGKILLed (no exit status 0): the outcome shows it, not a stopwatch.
    assert (await controller.info(platform.supervisor_url, "md-a")).exitstatus == 0


async def test_stop_is_idempotent(platform: Platform, controller: SupervisorController):
    first = await controller.stop(platform.supervisor_url, "md-b")
    second = await controller.stop(platform.supervisor_url, "md-b")
    assert first.action == "stop"
    assert (second.action, second.state_before, second.state_after) == (
        "none",
        "STOPPED",
        "STOPPED",
    )


async def test_start_when_running_does_nothing(
    platform: Platform, controller: SupervisorController
):
    pid = await heartbeat_pid(platform, "md-a")
    result = await controller.start(platform.supervisor_url, "md-a")
    assert (result.action, result.state_before, result.state_after) == (
        "none",
        "RUNNING",
        "RUNNING",
    )
    assert result.pid == pid


async def test_start_with_fail_marker_does_not_stay_up(
    platform: Platform, controller: SupervisorController
):
    await controller.stop(platform.supervisor_url, "md-a")
    platform.marker("md-a").write_text("crash on start\n")

    # Observed with startsecs=0: startProcess answers OK (supervisord calls the process RUNNING
    # as soon as it is spawned), and a moment later the process exits 3 and shows EXITED. A
    # fast enough exit would surface as ProcessExitedError instead; both are accepted.
    try:
        result = await controller.start(platform.supervisor_url, "md-a")
    except ProcessExitedError as exc:
        assert "md-a" in str(exc)
    else:
        assert result.action == "start"

    async def exited() -> None:
        info = await controller.info(platform.supervisor_url, "md-a")
        assert info.state == "EXITED", info
        assert info.exitstatus == 3 and info.pid is None

    await assert_eventually(exited, timeout=15)

    platform.marker("md-a").unlink()
    again = await controller.start(platform.supervisor_url, "md-a")
    assert (again.action, again.state_before) == ("start", "EXITED")


async def test_unknown_program_is_bad_name(platform: Platform, controller: SupervisorController):
    for call in (controller.info, controller.stop, controller.start):
        with pytest.raises(ProcessControlError, match="BAD_NAME") as caught:
            await call(platform.supervisor_url, "no-such-program")
        assert isinstance(caught.value, SupervisorFaultError)
        assert caught.value.fault == "BAD_NAME"


async def test_unreachable_supervisord(controller: SupervisorController):
    url = f"http://127.0.0.1:{free_port()}/RPC2"
    with pytest.raises(ProcessControlError, match="unreachable"):
        await controller.stop(url, "md-a")


async def test_activities_convert_errors(platform: Platform, controller: SupervisorController):
    activities = ProcessActivities(controller)
    stopped = await activities.stop_process(ProcessInput(platform.supervisor_url, "md-b"))
    assert stopped.action == "stop"
    started = await activities.start_process(ProcessInput(platform.supervisor_url, "md-b"))
    assert started.action == "start"

    with pytest.raises(ApplicationError) as caught:
        await activities.stop_process(ProcessInput(platform.supervisor_url, "nope"))
    assert caught.value.type == "ProcessControl" and caught.value.non_retryable

    unreachable = ProcessInput(f"http://127.0.0.1:{free_port()}/RPC2", "md-a")
    with pytest.raises(ApplicationError) as caught:
        await activities.start_process(unreachable)
    assert caught.value.type == "ProcessControl" and not caught.value.non_retryable


def test_process_exited_is_non_retryable():
    err = to_application_error(ProcessExitedError("og-a did not stay up"))
    assert err.type == "ProcessExited" and err.non_retryable


async def test_concurrent_stops_agree(platform: Platform, controller: SupervisorController):
    results = await asyncio.gather(
        controller.stop(platform.supervisor_url, "md-a"),
        controller.stop(platform.supervisor_url, "md-a"),
    )
    assert sorted(r.action for r in results) in (["none", "stop"], ["stop", "stop"])
    assert {r.state_after for r in results} == {"STOPPED"}
