"""The chaos fault activities against a real supervisord, demo services, Redis and iptables.

Each fault is injected twice and undone twice: the second of each must change nothing and
say so. Activities run in ``ActivityEnvironment`` (they heartbeat); no Temporal server needed,
like tests/test_process_control.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redis
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.chaos_faults import NOWHERE, FaultActivities
from activities.process_control import SupervisorController
from drc.chaos import FaultInput, FaultKind, FaultResult, FaultTarget
from drc.credentials import SUPERVISOR_CREDENTIALS_FILE, ensure_credentials
from drc.errors import ProcessExitedError
from tests.support.net import assert_eventually, free_port
from tests.support.redis_server import RedisServer, start_redis
from tests.support.supervisor import Platform, running_platform, small_catalog

IPTABLES = shutil.which("iptables") or shutil.which("iptables", path="/usr/sbin:/sbin")


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    # market-data alone: two programs with no dependencies start fastest.
    with running_platform(tmp_path, small_catalog(("market-data",))) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def faults(tmp_path: Path, http: httpx.AsyncClient) -> FaultActivities:
    # The login the platform's supervisord will ask for: written first, it is kept there.
    login = ensure_credentials(tmp_path / SUPERVISOR_CREDENTIALS_FILE)
    return FaultActivities(SupervisorController(http, credentials=login), tmp_path)


def fault(
    kind: FaultKind,
    platform: Platform,
    *replicas: str,
    latency_ms: float = 0.0,
    error_share: float = 0.0,
) -> FaultInput:
    return FaultInput(
        kind,
        [target(platform, r) for r in replicas],
        platform.supervisor_url,
        f"t{uuid.uuid4().hex[:8]}",  # a run id per test: no two tests' iptables rules alike
        latency_ms=latency_ms,
        error_share=error_share,
    )


def target(platform: Platform, replica: str) -> FaultTarget:
    service = next(s for s in platform.catalog.services if s.replica(replica) is not None)
    r = platform.replica(replica)
    return FaultTarget(service.name, replica, r.region, str(r.url), process=r.process)


async def inject(faults: FaultActivities, inp: FaultInput) -> FaultResult:
    return await ActivityEnvironment().run(faults.chaos_inject, inp)


async def undo(faults: FaultActivities, inp: FaultInput) -> FaultResult:
    return await ActivityEnvironment().run(faults.chaos_undo, inp)


def control(platform: Platform, http: httpx.AsyncClient) -> SupervisorController:
    return SupervisorController(http, credentials=platform.credentials)


async def state(platform: Platform, http: httpx.AsyncClient, name: str) -> tuple[str, int | None]:
    info = await control(platform, http).info(platform.supervisor_url, name)
    return info.state, info.pid


async def answers(platform: Platform, replica: str, timeout: float = 2.0) -> float:
    """Seconds one heartbeat took; AssertionError when the replica does not answer 200."""
    started = time.monotonic()
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            resp = await client.get(platform.url(replica, "/health/heartbeat"))
    except httpx.TransportError as exc:
        raise AssertionError(f"{replica}: {type(exc).__name__}") from exc
    assert resp.status_code == 200, resp.status_code
    return time.monotonic() - started


def proc_state(pid: int) -> str:
    # /proc/<pid>/stat: "pid (comm) S ..."; comm may hold spaces, the state follows its ")".
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]


# KILL


async def test_kill_then_start(
    platform: Platform, faults: FaultActivities, http: httpx.AsyncClient
):
    inp = fault(FaultKind.KILL, platform, "md-a")
    _, pid = await state(platform, http, "md-a")

    first = await inject(faults, inp)
    assert first.kind is FaultKind.KILL
    assert first.detail == f"SIGKILLed md-a (pid {pid})"
    assert await state(platform, http, "md-a") == ("EXITED", None)
    assert (await state(platform, http, "md-b"))[0] == "RUNNING"  # only the target
    again = await inject(faults, inp)
    assert again.detail == "md-a was not running: nothing to kill"
    assert again.at >= first.at

    restored = await undo(faults, inp)
    st, new_pid = await state(platform, http, "md-a")
    assert st == "RUNNING" and new_pid not in (None, pid)
    assert restored.detail == f"started md-a (pid {new_pid})"
    await assert_eventually(lambda: answers(platform, "md-a"), timeout=15)
    twice = await undo(faults, inp)
    assert twice.detail == f"md-a is RUNNING (pid {new_pid}): nothing to start"
    assert await state(platform, http, "md-a") == ("RUNNING", new_pid)


async def test_undo_of_a_kill_that_never_happened_starts_nothing(
    platform: Platform, faults: FaultActivities, http: httpx.AsyncClient
):
    _, pid = await state(platform, http, "md-b")
    result = await undo(faults, fault(FaultKind.KILL, platform, "md-b"))
    assert result.detail == f"md-b is RUNNING (pid {pid}): nothing to start"


# HANG


async def test_hang_then_continue(
    platform: Platform, faults: FaultActivities, http: httpx.AsyncClient
):
    inp = fault(FaultKind.HANG, platform, "md-a")
    _, pid = await state(platform, http, "md-a")
    assert pid is not None
    try:
        for _ in range(2):  # the second SIGSTOP changes nothing
            result = await inject(faults, inp)
            assert result.detail == f"SIGSTOPped md-a (pid {pid})"

            async def stopped() -> None:
                assert proc_state(pid) == "T"

            await assert_eventually(stopped, timeout=5)
            with pytest.raises(AssertionError):
                await answers(platform, "md-a", timeout=0.5)
            assert await state(platform, http, "md-a") == ("RUNNING", pid)
    finally:
        for _ in range(2):  # the second SIGCONT changes nothing
            result = await undo(faults, inp)
            assert result.detail == f"SIGCONTed md-a (pid {pid})"
    assert proc_state(pid) != "T"
    await assert_eventually(lambda: answers(platform, "md-a"), timeout=5)


async def test_continue_of_a_process_no_longer_running(
    platform: Platform, faults: FaultActivities, http: httpx.AsyncClient
):
    inp = fault(FaultKind.HANG, platform, "md-b")
    await inject(faults, inp)
    await control(platform, http).stop(platform.supervisor_url, "md-b")
    result = await undo(faults, inp)
    assert result.detail == "md-b was not running: nothing to continue"
    assert (await inject(faults, inp)).detail == "md-b was not running: nothing to stop"


# REGION_STOP: an HTTP replica and a Redis one together


async def test_region_stop_keeps_the_region_down_until_undone(
    tmp_path: Path, faults: FaultActivities, http: httpx.AsyncClient
):
    catalog = small_catalog(("market-data", "order-state"))
    with running_platform(tmp_path, catalog) as platform:
        targets = [target(platform, "md-a"), target(platform, "redis-b")]
        inp = FaultInput(FaultKind.REGION_STOP, targets, platform.supervisor_url, "t-region")
        pids = {r: (await state(platform, http, r))[1] for r in ("md-a", "redis-b")}

        first = await inject(faults, inp)
        assert first.detail == (
            f"set md-a's fail marker and SIGKILLed it (pid {pids['md-a']}); "
            f"set redis-b's fail marker and SIGKILLed it (pid {pids['redis-b']})"
        )
        for replica in ("md-a", "redis-b"):
            assert platform.marker(replica).exists()  # activities and demo agree on the path
            assert (await state(platform, http, replica))[0] == "EXITED"
        assert (await state(platform, http, "redis-a"))[0] == "RUNNING"
        again = await inject(faults, inp)
        assert again.detail == (
            "set md-a's fail marker (md-a was not running); "
            "set redis-b's fail marker (redis-b was not running)"
        )

        # Kept from starting: a start (drc's, say) exits 3 at once while the marker is there.
        with contextlib.suppress(ProcessExitedError):  # if supervisord sees the exit in time
            await control(platform, http).start(platform.supervisor_url, "redis-b")

        async def exited_3() -> None:
            info = await control(platform, http).info(platform.supervisor_url, "redis-b")
            assert (info.state, info.exitstatus) == ("EXITED", 3), info

        await assert_eventually(exited_3, timeout=15)

        restored = await undo(faults, inp)
        now = {r: await state(platform, http, r) for r in ("md-a", "redis-b")}
        assert {s for s, _ in now.values()} == {"RUNNING"}
        assert restored.detail == (
            f"removed md-a's fail marker, started md-a (pid {now['md-a'][1]}); "
            f"removed redis-b's fail marker, started redis-b (pid {now['redis-b'][1]})"
        )
        assert not platform.marker("md-a").exists() and not platform.marker("redis-b").exists()
        await assert_eventually(lambda: answers(platform, "md-a"), timeout=15)

        async def redis_b_answers() -> None:
            client = redis.Redis(port=platform.replica("redis-b").url.port, socket_timeout=1)
            try:
                assert client.ping()
            except redis.ConnectionError as exc:
                raise AssertionError(str(exc)) from exc
            finally:
                client.close()

        await assert_eventually(redis_b_answers, timeout=15)
        twice = await undo(faults, inp)
        assert twice.detail == (
            f"md-a had no fail marker, md-a is RUNNING (pid {now['md-a'][1]}): "
            "nothing to start; "
            f"redis-b had no fail marker, redis-b is RUNNING (pid {now['redis-b'][1]}): "
            "nothing to start"
        )


def break_spawn(platform: Platform, replica: str) -> Path:
    """Make supervisord unable to spawn ``replica``: a directory where its log file goes.

    A real failure of the start (supervisord's SPAWN_ERROR), not a marker the fault owns.
    """
    log = platform.home / "demo" / "logs" / f"{replica}.out.log"
    log.unlink(missing_ok=True)
    log.mkdir()
    return log


async def test_region_stop_undo_raises_only_when_every_start_failed(
    platform: Platform, faults: FaultActivities, http: httpx.AsyncClient
):
    inp = fault(FaultKind.REGION_STOP, platform, "md-a", "md-b")
    await inject(faults, inp)
    broken = [break_spawn(platform, "md-a")]

    partly = await undo(faults, inp)  # md-a cannot start, md-b can: reported, not raised
    md_b = await state(platform, http, "md-b")
    assert md_b[0] == "RUNNING"
    assert partly.detail.startswith(
        "removed md-a's fail marker, could not start md-a: md-a did not stay up (SPAWN_ERROR)"
    )
    assert partly.detail.endswith(f"removed md-b's fail marker, started md-b (pid {md_b[1]})")

    await inject(faults, fault(FaultKind.KILL, platform, "md-b"))
    broken.append(break_spawn(platform, "md-b"))
    with pytest.raises(ApplicationError, match="every start failed") as caught:
        await undo(faults, inp)
    assert caught.value.type == "ProcessExited" and caught.value.non_retryable
    assert "could not start md-a" in caught.value.message
    assert "could not start md-b" in caught.value.message

    for log in broken:
        log.rmdir()
    healed = await undo(faults, inp)  # the retry an operator makes once the cause is gone
    assert healed.detail.count("had no fail marker") == 2
    assert healed.detail.count("started md-") == 2
    for replica in ("md-a", "md-b"):
        await assert_eventually(lambda r=replica: answers(platform, r), timeout=15)


# LATENCY and ERRORS: the fault switch


async def test_latency_marker(platform: Platform, faults: FaultActivities):
    inp = fault(FaultKind.LATENCY, platform, "md-a", latency_ms=400)
    marker = platform.marker("md-a.latency")
    for _ in range(2):
        result = await inject(faults, inp)
        assert result.detail == "slowed md-a by 400 ms"
        assert marker.read_text() == "400\n"
        assert await answers(platform, "md-a") >= 0.4
    assert await answers(platform, "md-b") < 0.4  # only the target

    assert (await undo(faults, inp)).detail == "removed md-a's latency marker"
    assert not marker.exists()

    async def fast() -> None:
        assert await answers(platform, "md-a") < 0.3

    await assert_eventually(fast, timeout=5)
    assert (await undo(faults, inp)).detail == "md-a had no latency marker: nothing to remove"


async def test_error_marker(platform: Platform, faults: FaultActivities, http: httpx.AsyncClient):
    inp = fault(FaultKind.ERRORS, platform, "md-a", error_share=0.5)
    marker = platform.marker("md-a.errors")

    async def statuses() -> list[int]:
        url = platform.url("md-a", "/health/heartbeat")
        return [(await http.get(url, timeout=2)).status_code for _ in range(10)]

    for _ in range(2):
        result = await inject(faults, inp)
        assert result.detail == "made md-a answer 50% of requests with 500"
        assert marker.read_text() == "0.5\n"
        assert sorted(await statuses()) == [200] * 5 + [500] * 5  # spread evenly, never random

    assert (await undo(faults, inp)).detail == "removed md-a's error marker"
    assert not marker.exists()
    assert await statuses() == [200] * 10
    assert (await undo(faults, inp)).detail == "md-a had no error marker: nothing to remove"


# NETCUT: a real iptables rule (needs root)


def rules_tagged(tag: str) -> int:
    assert IPTABLES is not None
    listing = subprocess.run([IPTABLES, "-w", "5", "-S", "INPUT"], capture_output=True, text=True)
    return sum(tag in line for line in listing.stdout.splitlines())


async def connects(port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 0.5)
    except (TimeoutError, OSError):
        return False
    writer.close()
    await writer.wait_closed()
    return True


@pytest.mark.skipif(IPTABLES is None, reason="iptables is not installed (make test-deps)")
async def test_netcut_drops_then_restores(platform: Platform, faults: FaultActivities):
    inp = fault(FaultKind.NETCUT, platform, "md-a")
    port = platform.replica("md-a").url.port
    assert port is not None
    tag = f"drc-chaos-{inp.run}-md-a"
    try:
        first = await inject(faults, inp)
        assert first.detail == f"cut md-a's port {port} (iptables DROP on 127.0.0.1)"
        assert rules_tagged(tag) == 1
        assert not await connects(port)  # dropped, not refused: the connect times out
        assert await connects(platform.replica("md-b").url.port or 0)
        again = await inject(faults, inp)
        assert again.detail == f"md-a's port {port} was already cut: nothing to add"
        assert rules_tagged(tag) == 1

        restored = await undo(faults, inp)
        assert restored.detail == f"restored md-a's port {port} (deleted 1 iptables rule(s))"
        assert rules_tagged(tag) == 0
        assert await connects(port)
        await assert_eventually(lambda: answers(platform, "md-a"), timeout=5)
    finally:
        await undo(faults, inp)  # idempotent: also the cleanup should an assertion fail
    assert (await undo(faults, inp)).detail == f"md-a's port {port} was not cut: nothing to delete"
    assert rules_tagged(tag) == 0


async def test_netcut_without_iptables_is_refused(
    platform: Platform, faults: FaultActivities, monkeypatch: pytest.MonkeyPatch
):
    # As on a host without iptables: the lookup (PATH, then /usr/sbin:/sbin) finds nothing.
    monkeypatch.setattr(shutil, "which", lambda *args, **kwargs: None)
    with pytest.raises(ApplicationError) as caught:
        await inject(faults, fault(FaultKind.NETCUT, platform, "md-a"))
    assert caught.value.type == "NetcutUnavailable" and caught.value.non_retryable
    assert "md-a" in caught.value.message and "not installed" in caught.value.message


async def test_netcut_refuses_a_replica_off_loopback(faults: FaultActivities):
    off = FaultTarget("svc", "far-a", "nyc", "http://10.1.2.3:8080", process="far-a")
    inp = FaultInput(FaultKind.NETCUT, [off], "http://127.0.0.1:1/RPC2", "t-off")
    with pytest.raises(ApplicationError, match="far-a.*loopback only") as caught:
        await inject(faults, inp)
    assert caught.value.type == "ChaosTarget" and caught.value.non_retryable


# REPLICATION_BREAK: real redis-servers


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[RedisServer, RedisServer]]:
    primary = start_redis(tmp_path)
    replica = start_redis(tmp_path, replica_of=primary.port)
    try:
        replica.wait_link_up()
        yield primary, replica
    finally:
        replica.stop()
        primary.stop()


def redis_target(port: int, primary_port: int | None) -> FaultTarget:
    primary = f"redis://127.0.0.1:{primary_port}" if primary_port else None
    return FaultTarget(
        "order-state", f"redis-{port}", "ldn", f"redis://127.0.0.1:{port}", primary_url=primary
    )


def replication(port: int) -> dict[str, object]:
    client = redis.Redis(port=port, socket_timeout=2)
    try:
        return client.info("replication")  # type: ignore[return-value]
    finally:
        client.close()


async def test_replication_break_then_reattach(
    pair: tuple[RedisServer, RedisServer], faults: FaultActivities
):
    primary, replica = pair
    name = f"redis-{replica.port}"
    inp = FaultInput(
        FaultKind.REPLICATION_BREAK,
        [redis_target(replica.port, primary.port)],
        "http://127.0.0.1:1/RPC2",
        "t-repl",
    )
    try:
        first = await inject(faults, inp)
        assert first.detail == (
            f"pointed {name} at {NOWHERE}, where nothing listens "
            f"(it followed 127.0.0.1:{primary.port})"
        )
        info = replication(replica.port)
        assert (info["master_port"], info["master_link_status"]) == (1, "down")
        again = await inject(faults, inp)
        assert again.detail == f"{name} already follows {NOWHERE}: nothing to break"
    finally:
        restored = await undo(faults, inp)
    assert restored.detail == f"pointed {name} back at its primary 127.0.0.1:{primary.port}"

    async def linked() -> None:
        assert replication(replica.port)["master_link_status"] == "up"

    await assert_eventually(linked, timeout=15)
    twice = await undo(faults, inp)
    assert twice.detail == f"{name} follows its primary 127.0.0.1:{primary.port}: nothing to undo"


async def test_undo_leaves_a_replica_drc_promoted_alone(
    pair: tuple[RedisServer, RedisServer], faults: FaultActivities
):
    primary, replica = pair
    inp = FaultInput(
        FaultKind.REPLICATION_BREAK,
        [redis_target(replica.port, primary.port)],
        "http://127.0.0.1:1/RPC2",
        "t-promoted",
    )
    await inject(faults, inp)
    client = redis.Redis(port=replica.port)
    try:
        client.execute_command("REPLICAOF", "NO", "ONE")  # a failover during the experiment
    finally:
        client.close()
    result = await undo(faults, inp)
    assert (
        result.detail
        == f"redis-{replica.port} is a primary since the break (drc's doing): left alone"
    )
    assert replication(replica.port)["role"] == "master"


async def test_replication_break_refuses_a_primary_and_a_target_without_primary(
    pair: tuple[RedisServer, RedisServer], faults: FaultActivities
):
    primary, replica = pair
    on_primary = FaultInput(
        FaultKind.REPLICATION_BREAK,
        [redis_target(primary.port, replica.port)],
        "http://127.0.0.1:1/RPC2",
        "t-refuse",
    )
    with pytest.raises(ApplicationError, match=f"redis-{primary.port}: .* is a primary") as caught:
        await inject(faults, on_primary)
    assert caught.value.type == "StateError" and caught.value.non_retryable
    assert replication(primary.port)["role"] == "master"  # not demoted

    orphan = FaultInput(
        FaultKind.REPLICATION_BREAK,
        [redis_target(replica.port, None)],
        "http://127.0.0.1:1/RPC2",
        "t-refuse",
    )
    with pytest.raises(
        ApplicationError, match=f"redis-{replica.port} has no primary_url"
    ) as caught:
        await inject(faults, orphan)
    assert caught.value.type == "ChaosTarget" and caught.value.non_retryable
    assert replication(replica.port)["master_link_status"] == "up"  # untouched


async def test_replication_break_on_an_unreachable_redis_is_retryable(faults: FaultActivities):
    port = free_port()
    inp = FaultInput(
        FaultKind.REPLICATION_BREAK, [redis_target(port, free_port())], "http://x/RPC2", "t-gone"
    )
    with pytest.raises(ApplicationError, match=f"redis-{port}: .*unreachable") as caught:
        await inject(faults, inp)
    assert caught.value.type == "StateUnreachable" and not caught.value.non_retryable


# Refusals and transient failures of process control


async def test_unknown_program_is_non_retryable_and_named(
    platform: Platform, faults: FaultActivities
):
    ghost = FaultTarget("market-data", "md-z", "ldn", "http://127.0.0.1:1", process="no-such")
    inp = FaultInput(FaultKind.KILL, [ghost], platform.supervisor_url, "t-ghost")
    with pytest.raises(ApplicationError, match="md-z: .*BAD_NAME") as caught:
        await inject(faults, inp)
    assert caught.value.type == "ProcessControl" and caught.value.non_retryable


async def test_a_target_without_program_is_refused_before_anything_is_done(
    platform: Platform, faults: FaultActivities, http: httpx.AsyncClient
):
    bare = FaultTarget("market-data", "md-x", "ldn", "http://127.0.0.1:1")
    inp = FaultInput(FaultKind.KILL, [target(platform, "md-a"), bare], platform.supervisor_url, "t")
    with pytest.raises(ApplicationError, match="md-x has no process-control program") as caught:
        await inject(faults, inp)
    assert caught.value.type == "ChaosTarget" and caught.value.non_retryable
    assert (await state(platform, http, "md-a"))[0] == "RUNNING"  # md-a was not killed


async def test_supervisord_unreachable_is_retryable(faults: FaultActivities):
    bare = FaultTarget("market-data", "md-a", "ldn", "http://127.0.0.1:1", process="md-a")
    inp = FaultInput(FaultKind.HANG, [bare], f"http://127.0.0.1:{free_port()}/RPC2", "t")
    with pytest.raises(ApplicationError, match="md-a: .*unreachable") as caught:
        await inject(faults, inp)
    assert caught.value.type == "ProcessControl" and not caught.value.non_retryable


async def test_markers_outside_the_demos_home_are_refused(
    platform: Platform, tmp_path: Path, http: httpx.AsyncClient
):
    elsewhere = FaultActivities(SupervisorController(http), tmp_path / "not-the-home")
    inp = fault(FaultKind.LATENCY, platform, "md-a", latency_ms=100)
    with pytest.raises(ApplicationError, match="is DRC_HOME the demo's home") as caught:
        await inject(elsewhere, inp)
    assert caught.value.type == "ChaosTarget" and caught.value.non_retryable


async def test_a_latency_of_zero_is_refused(platform: Platform, faults: FaultActivities):
    with pytest.raises(ApplicationError, match="latency_ms must be above 0"):
        await inject(faults, fault(FaultKind.LATENCY, platform, "md-a"))
    assert not platform.marker("md-a.latency").exists()
