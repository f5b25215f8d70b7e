from __future__ import annotations

import subprocess
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.traffic import (
    HAProxyRuntime,
    ReadTrafficInput,
    ServerState,
    SetTrafficInput,
    TrafficActivities,
    TrafficError,
    TrafficState,
    TrafficUnreachableError,
    admin_state,
    parse_servers_state,
)
from demo.haproxy import (
    backend_name,
    haproxy_config,
    haproxy_executable,
    server_name,
    write_haproxy_config,
)
from drc.catalog import Catalog
from drc.catalog_loader import parse_catalog
from tests.support.haproxy import RunningHAProxy, running_haproxy
from tests.support.net import assert_eventually, free_port

BE = "be_og"


async def start_named_server(name: str, port: int) -> web.AppRunner:
    async def hello(_: web.Request) -> web.Response:
        return web.Response(text=name)

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


def og_catalog(ports: dict[str, int], redundancy: str = "active-standby") -> Catalog:
    service = {
        "name": "og",
        "redundancy": redundancy,
        "frontend": f"127.0.0.1:{free_port()}",
        "replicas": [
            {"name": name, "region": "ldn", "url": f"http://127.0.0.1:{port}/"}
            for name, port in ports.items()
        ],
    }
    if redundancy == "active-standby":
        service["primary"] = "og-a"
    return parse_catalog({"services": [service]}, "<haproxy test>")


@pytest.fixture
async def replica_ports() -> AsyncIterator[dict[str, int]]:
    ports = {"og-a": free_port(), "og-b": free_port()}
    runners = [await start_named_server(name, port) for name, port in ports.items()]
    yield ports
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
def haproxy(tmp_path: Path, replica_ports: dict[str, int]) -> Iterator[RunningHAProxy]:
    with running_haproxy(tmp_path, og_catalog(replica_ports)) as running:
        yield running


async def answered_by(haproxy: RunningHAProxy, requests: int = 8) -> Counter[str]:
    async with httpx.AsyncClient(timeout=5, trust_env=False) as http:
        return Counter([(await http.get(haproxy.frontend_url("og"))).text for _ in range(requests)])


async def all_up(runtime: HAProxyRuntime) -> list[ServerState]:
    servers = await runtime.servers(BE)
    assert [s.operational for s in servers] == ["up", "up"], servers
    return servers


async def test_servers_lists_both_ready(haproxy: RunningHAProxy, replica_ports: dict[str, int]):
    servers = await assert_eventually(lambda: all_up(haproxy.runtime()), timeout=10)
    assert [(s.backend, s.server, s.admin) for s in servers] == [
        (BE, "og-a", TrafficState.READY),
        (BE, "og-b", TrafficState.READY),
    ]
    assert servers[0].address == f"127.0.0.1:{replica_ports['og-a']}"
    assert {s.backend for s in await haproxy.runtime().servers()} == {BE}


async def test_failover_to_backup_and_back(haproxy: RunningHAProxy):
    runtime = haproxy.runtime()
    await assert_eventually(lambda: all_up(runtime), timeout=10)
    assert await answered_by(haproxy) == Counter({"og-a": 8})

    fenced = await runtime.set_state(BE, "og-a", TrafficState.MAINT)
    assert (fenced.server, fenced.admin, fenced.operational) == ("og-a", "maint", "down")

    async def only_og_b() -> None:
        assert await answered_by(haproxy) == Counter({"og-b": 8})

    await assert_eventually(only_og_b, timeout=10)

    again = await runtime.set_state(BE, "og-a", TrafficState.MAINT)
    assert again.admin is TrafficState.MAINT

    back = await runtime.set_state(BE, "og-a", TrafficState.READY)
    assert back.admin is TrafficState.READY

    async def only_og_a() -> None:
        assert await answered_by(haproxy) == Counter({"og-a": 8})

    await assert_eventually(only_og_a, timeout=10)


async def test_drain_reads_back_as_drain(haproxy: RunningHAProxy):
    runtime = haproxy.runtime()
    drained = await runtime.set_state(BE, "og-b", TrafficState.DRAIN)
    assert drained.admin is TrafficState.DRAIN
    [og_b] = [s for s in await runtime.servers(BE) if s.server == "og-b"]
    assert og_b.admin is TrafficState.DRAIN
    # From maintenance, drain clears the forced maintenance and keeps only the drain.
    await runtime.set_state(BE, "og-b", TrafficState.MAINT)
    assert (await runtime.set_state(BE, "og-b", TrafficState.DRAIN)).admin is TrafficState.DRAIN


async def test_active_active_spreads_and_drain_takes_one_out(
    tmp_path: Path, replica_ports: dict[str, int]
):
    with running_haproxy(tmp_path, og_catalog(replica_ports, "active-active")) as haproxy:
        runtime = haproxy.runtime()
        await assert_eventually(lambda: all_up(runtime), timeout=10)
        assert await answered_by(haproxy) == Counter({"og-a": 4, "og-b": 4})

        await runtime.set_state(BE, "og-a", TrafficState.DRAIN)

        async def only_og_b() -> None:
            assert await answered_by(haproxy) == Counter({"og-b": 8})

        await assert_eventually(only_og_b, timeout=10)


async def test_unknown_server_and_backend_are_named(haproxy: RunningHAProxy):
    runtime = haproxy.runtime()
    with pytest.raises(TrafficError, match="og-z") as exc_info:
        await runtime.set_state(BE, "og-z", TrafficState.MAINT)
    assert not isinstance(exc_info.value, TrafficUnreachableError)
    with pytest.raises(TrafficError, match="be_nope"):
        await runtime.set_state("be_nope", "og-a", TrafficState.MAINT)
    with pytest.raises(TrafficError, match="be_nope"):
        await runtime.servers("be_nope")


async def test_names_that_could_smuggle_commands_are_refused(haproxy: RunningHAProxy):
    with pytest.raises(TrafficError, match="invalid HAProxy server name"):
        await haproxy.runtime().set_state(BE, "og-a state ready; shutdown", TrafficState.MAINT)


async def test_activities_convert_errors(haproxy: RunningHAProxy, tmp_path: Path):
    env = ActivityEnvironment()
    acts = TrafficActivities(haproxy.runtime())

    result = await env.run(acts.set_traffic, SetTrafficInput(BE, "og-a", TrafficState.DRAIN))
    assert (result.server, result.admin) == ("og-a", TrafficState.DRAIN)
    read = await env.run(acts.read_traffic, ReadTrafficInput(BE))
    assert [(r.server, r.admin) for r in read] == [("og-a", "drain"), ("og-b", "ready")]

    with pytest.raises(ApplicationError) as unknown:
        await env.run(acts.set_traffic, SetTrafficInput(BE, "og-z", TrafficState.MAINT))
    assert unknown.value.type == "TrafficError" and unknown.value.non_retryable
    assert "og-z" in str(unknown.value)

    gone = TrafficActivities(HAProxyRuntime(tmp_path / "no.sock", timeout_s=1))
    with pytest.raises(ApplicationError) as unreachable:
        await env.run(gone.read_traffic, ReadTrafficInput())
    assert unreachable.value.type == "TrafficUnreachable"
    assert not unreachable.value.non_retryable


async def test_stopped_haproxy_is_unreachable(haproxy: RunningHAProxy):
    haproxy.stop()
    with pytest.raises(TrafficUnreachableError):
        await haproxy.runtime(timeout_s=1).servers(BE)


def test_generated_configs_pass_haproxy_check(tmp_path: Path):
    ports = {"og-a": free_port(), "og-b": free_port()}
    for redundancy in ("active-standby", "active-active"):
        config = write_haproxy_config(og_catalog(ports, redundancy), tmp_path / redundancy)
        run = subprocess.run(
            [haproxy_executable(), "-c", "-f", str(config)], capture_output=True, text=True
        )
        assert run.returncode == 0, run.stdout + run.stderr


def test_active_standby_marks_non_primary_backup(tmp_path: Path):
    ports = {"og-a": free_port(), "og-b": free_port()}
    text = haproxy_config(og_catalog(ports), tmp_path)
    assert "stats socket" in text and "level admin" in text
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith("server ")]
    assert lines[0].startswith(f"server og-a 127.0.0.1:{ports['og-a']} check")
    assert not lines[0].endswith("backup")
    assert lines[1].endswith(" backup")


def test_active_active_has_no_backup(tmp_path: Path):
    ports = {"og-a": free_port(), "og-b": free_port()}
    text = haproxy_config(og_catalog(ports, "active-active"), tmp_path)
    assert "backup" not in text
    assert "balance roundrobin" in text


def test_services_without_frontend_are_left_out(tmp_path: Path):
    catalog = parse_catalog(
        {
            "services": [
                {
                    "name": "solo",
                    "replicas": [{"name": "s-a", "region": "ldn", "url": "http://127.0.0.1:1/"}],
                }
            ]
        }
    )
    text = haproxy_config(catalog, tmp_path)
    assert not [line for line in text.splitlines() if line.startswith(("frontend", "backend"))]


def test_names_agree_with_the_config(tmp_path: Path):
    assert backend_name("order-gateway") == "be_order-gateway"
    assert server_name("og-a") == "og-a"


def test_too_long_socket_path_is_refused(tmp_path: Path):
    ports = {"og-a": free_port(), "og-b": free_port()}
    with pytest.raises(ValueError, match="UNIX socket path"):
        haproxy_config(og_catalog(ports), tmp_path, Path("/tmp/" + "x" * 120))


def test_parse_uses_header_names_not_positions():
    text = (
        "1\n"
        "# srv_name be_name srv_admin_state srv_op_state srv_port srv_addr be_id\n"
        "a be 0 2 80 10.0.0.1 3\n"
        "b be 2 0 81 10.0.0.2 3\n"
        "c be 16 3 82 10.0.0.3 3\n"
        "\n"
    )
    assert parse_servers_state(text) == [
        ServerState("be", "a", TrafficState.READY, "up", "10.0.0.1:80"),
        ServerState("be", "b", TrafficState.MAINT, "down", "10.0.0.2:81"),
        ServerState("be", "c", TrafficState.DRAIN, "stopping", "10.0.0.3:82"),
    ]


@pytest.mark.parametrize(
    ("flags", "state"),
    [
        (0x00, TrafficState.READY),
        (0x01, TrafficState.MAINT),
        (0x02, TrafficState.MAINT),
        (0x04, TrafficState.MAINT),
        (0x08, TrafficState.DRAIN),
        (0x10, TrafficState.DRAIN),
        (0x09, TrafficState.MAINT),
        (0x20, TrafficState.MAINT),
        (0x40, TrafficState.READY),
    ],
)
def test_admin_flags(flags: int, state: TrafficState):
    assert admin_state(flags) is state


def test_unreadable_answer_is_a_traffic_error():
    with pytest.raises(TrafficError, match="header"):
        parse_servers_state("Permission denied\n")
