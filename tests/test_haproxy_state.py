"""HAProxy's traffic state across its own death: the state file drc writes, on a real HAProxy."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redis
from aiohttp import web

from activities import traffic
from activities.traffic import (
    HAProxyRuntime,
    TrafficState,
    TrafficStateNotSavedError,
    parse_servers_state,
    to_application_error,
)
from demo.haproxy import fit_server_state, haproxy_config
from drc.catalog import Catalog
from drc.catalog_loader import parse_catalog
from drc.errors import CatalogError
from tests.support.haproxy import RunningHAProxy, running_haproxy
from tests.support.net import assert_eventually, free_port
from tests.support.redis_server import start_redis

BE = "be_og"
STATE = "demo/haproxy.state"


async def start_named_server(name: str, port: int) -> web.AppRunner:
    async def hello(_: web.Request) -> web.Response:
        return web.Response(text=name)

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


def og_catalog(ports: dict[str, int], traffic: dict[str, str] | None = None) -> Catalog:
    """og-a the primary (a normal server), og-b the standby (a ``backup`` server)."""
    service = {
        "name": "og",
        "redundancy": "active-standby",
        "primary": "og-a",
        "frontend": f"127.0.0.1:{free_port()}",
        "replicas": [
            {"name": name, "region": "ldn", "url": f"http://127.0.0.1:{port}/"}
            for name, port in ports.items()
        ],
    }
    data = {"services": [service], "traffic_control": traffic or {"haproxy_state_file": STATE}}
    return parse_catalog(data, "<haproxy state test>")


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


def runtime(haproxy: RunningHAProxy, home: Path) -> HAProxyRuntime:
    return HAProxyRuntime(haproxy.socket_path, state_file=home / STATE)


async def served_by(haproxy: RunningHAProxy, requests: int = 20) -> Counter[str]:
    async with httpx.AsyncClient(timeout=2) as http:
        return Counter([(await http.get(haproxy.frontend_url("og"))).text for _ in range(requests)])


async def admin(haproxy: RunningHAProxy) -> dict[str, str]:
    return {s.server: s.admin.value for s in await haproxy.runtime().servers(BE)}


async def test_every_change_is_saved_for_haproxys_next_start(
    haproxy: RunningHAProxy, tmp_path: Path
) -> None:
    state_file = tmp_path / STATE
    assert state_file.read_text() == "", "created empty, before HAProxy's first start"
    await runtime(haproxy, tmp_path).set_state(BE, "og-a", TrafficState.DRAIN)
    saved = {s.server: s.admin.value for s in parse_servers_state(state_file.read_text())}
    assert saved == {"og-a": "drain", "og-b": "ready"}
    leftovers = sorted(p.name for p in state_file.parent.iterdir() if p.name.endswith(".tmp"))
    assert leftovers == [], "written through a temp file renamed into place"


async def test_after_a_failover_a_restarted_haproxy_sends_clients_to_the_new_primary_only(
    haproxy: RunningHAProxy, tmp_path: Path
) -> None:
    # The config still says what the catalog said at first: og-a active, og-b `backup`.
    assert "server og-b" in haproxy.config.read_text() and " backup" in haproxy.config.read_text()
    drc = runtime(haproxy, tmp_path)
    # The failover runbook's traffic steps, then re-protection: og-a is the drained standby.
    for server, state in (
        ("og-b", TrafficState.DRAIN),  # hold
        ("og-a", TrafficState.MAINT),  # fence
        ("og-b", TrafficState.READY),  # switch
        ("og-a", TrafficState.DRAIN),  # reprotect: standby
    ):
        await drc.set_state(BE, server, state)
    assert await served_by(haproxy) == Counter({"og-b": 20})

    haproxy.kill_and_restart()

    assert await admin(haproxy) == {"og-a": "drain", "og-b": "ready"}
    assert await served_by(haproxy) == Counter({"og-b": 20}), "a drained og-a takes nobody"

    # Without the state drc saved, the same restart would send every client to og-a.
    (tmp_path / STATE).write_text("")
    haproxy.kill_and_restart()
    assert await admin(haproxy) == {"og-a": "ready", "og-b": "ready"}
    assert await served_by(haproxy) == Counter({"og-a": 20})


async def test_maintenance_survives_a_restart(haproxy: RunningHAProxy, tmp_path: Path) -> None:
    await runtime(haproxy, tmp_path).set_state(BE, "og-a", TrafficState.MAINT)
    haproxy.kill_and_restart()
    assert await admin(haproxy) == {"og-a": "maint", "og-b": "ready"}
    assert await served_by(haproxy) == Counter({"og-b": 20})


async def test_concurrent_changes_leave_the_last_state_saved(
    haproxy: RunningHAProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two workers (two runtimes) changing traffic at once: the saved file must be HAProxy's
    # final state, never an older dump that finished writing last. Slow, uneven writes make
    # the writes finish out of order unless writers are serialized.
    write = traffic._replace_file

    def slow_write(path: Path, text: str) -> None:
        time.sleep(random.uniform(0, 0.03))
        write(path, text)

    monkeypatch.setattr(traffic, "_replace_file", slow_write)
    workers = [runtime(haproxy, tmp_path), runtime(haproxy, tmp_path)]
    states = [TrafficState.READY, TrafficState.DRAIN, TrafficState.MAINT]

    async def change(state: TrafficState) -> None:
        await asyncio.sleep(random.uniform(0, 0.03))  # changes and saves interleave
        await random.choice(workers).set_state(BE, random.choice(["og-a", "og-b"]), state)

    for _ in range(4):  # 8 at a time: HAProxy's stats socket takes 10 connections at once
        await asyncio.gather(*(change(state) for state in random.choices(states, k=8)))
    saved = {s.server: s.admin.value for s in parse_servers_state((tmp_path / STATE).read_text())}
    assert saved == await admin(haproxy)


async def test_a_change_that_cannot_be_saved_fails_retryably(
    haproxy: RunningHAProxy, tmp_path: Path
) -> None:
    drc = HAProxyRuntime(haproxy.socket_path, state_file=tmp_path / "missing" / "haproxy.state")
    with pytest.raises(TrafficStateNotSavedError) as failed:
        await drc.set_state(BE, "og-a", TrafficState.DRAIN)
    assert "cannot save HAProxy's state to" in str(failed.value)
    error = to_application_error(failed.value)
    assert error.type == "TrafficStateNotSaved" and not error.non_retryable


DUMP = """1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
3 be_og 1 og-a 127.0.0.1 2 8 1 1 4 6 3 3 6 0 0 0 - {a} - 0 0 - - 0
3 be_og 2 og-b 127.0.0.1 2 0 1 1 4 6 3 3 6 0 0 0 - {b} - 0 0 - - 0
3 be_og 3 og-z 127.0.0.1 2 8 1 1 4 6 3 3 6 0 0 0 - 1 - 0 0 - - 0
"""  # noqa: E501 - HAProxy's own line


def test_saved_rows_that_no_longer_fit_the_catalog_are_dropped() -> None:
    ports = {"og-a": free_port(), "og-b": free_port()}
    catalog = og_catalog(ports)
    # og-b moved to another port since the dump; og-z left the catalog.
    saved = DUMP.format(a=ports["og-a"], b=ports["og-b"] + 1)
    fitted = parse_servers_state(fit_server_state(saved, catalog))
    assert [(s.server, s.admin.value) for s in fitted] == [("og-a", "drain")]
    assert fit_server_state("", catalog) == ""
    assert fit_server_state("garbage\n", catalog) == ""


def test_the_config_loads_the_state_file_at_start(tmp_path: Path) -> None:
    config = haproxy_config(og_catalog({"og-a": 1, "og-b": 2}), tmp_path, tmp_path / "s.sock")
    assert f"\n    server-state-file {tmp_path / STATE}\n" in config
    assert "\n    load-server-state-from-file global\n" in config
    plain = og_catalog({"og-a": 1, "og-b": 2}, traffic={"haproxy_socket": "s.sock"})
    assert "server-state" not in haproxy_config(plain, tmp_path, tmp_path / "s.sock")


def traffic_manager_catalog(**traffic: str) -> dict[str, object]:
    return {
        "traffic_control": {"haproxy_socket": "demo/haproxy.sock", **traffic},
        "services": [
            {
                "name": "traffic-manager",
                "replicas": [
                    {
                        "name": "haproxy",
                        "region": "ldn",
                        "url": f"http://127.0.0.1:{free_port()}",
                        "process": "haproxy",
                    }
                ],
            }
        ],
    }


async def test_haproxy_answers_the_traffic_manager_replicas_probes_itself(
    tmp_path: Path,
) -> None:
    catalog = parse_catalog(traffic_manager_catalog(haproxy_service="traffic-manager"))
    replica = catalog.services[0].replicas[0]
    with running_haproxy(tmp_path, catalog) as running:
        async with httpx.AsyncClient(timeout=2) as http:
            beat = await http.get(replica.endpoint("/health/heartbeat"))
            health = await http.get(replica.endpoint("/health"))
            other = await http.get(replica.endpoint("/orders"))
    assert beat.status_code == 200 and health.status_code == 200
    assert beat.json() == {
        "service": "traffic-manager",
        "replica": "haproxy",
        "pid": running.proc.pid,
    }
    assert other.status_code == 404


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"haproxy_service": "nope"}, "unknown service 'nope'"),
        ({"haproxy_service": "traffic-manager", "haproxy_socket": None}, "needs traffic_control"),
    ],
)
def test_the_traffic_manager_service_must_exist_and_have_a_socket(
    change: dict[str, str | None], problem: str
) -> None:
    data = traffic_manager_catalog()
    data["traffic_control"] = {**data["traffic_control"], **change}  # type: ignore[dict-item]
    with pytest.raises(CatalogError) as refused:
        parse_catalog(data)
    assert "traffic_control.haproxy_service" in str(refused.value) and problem in str(refused.value)


def test_the_traffic_manager_service_is_one_http_replica_without_a_frontend() -> None:
    data = traffic_manager_catalog(haproxy_service="traffic-manager")
    data["services"][0]["frontend"] = f"127.0.0.1:{free_port()}"  # type: ignore[index]
    with pytest.raises(CatalogError) as refused:
        parse_catalog(data)
    assert "traffic-manager must have one replica and no frontend" in str(refused.value)


def _state_catalog(ports: dict[str, int]) -> Catalog:
    """A Redis primary and standby behind a TCP front end: the standby is ``backup disabled``."""
    service = {
        "name": "st",
        "redundancy": "active-standby",
        "primary": "redis-a",
        "frontend": f"127.0.0.1:{free_port()}",
        "replicas": [
            {"name": name, "region": "ldn", "url": f"redis://127.0.0.1:{port}"}
            for name, port in ports.items()
        ],
    }
    return parse_catalog({"services": [service]}, "<haproxy state-store test>")


async def test_a_promoted_disabled_standby_reads_back_ready_not_maint(tmp_path: Path) -> None:
    # HAProxy 2.6 still dumps the `disabled` flag of a server taken out of maintenance by
    # `state ready`: read alone, a promoted standby serving every client looked like maint.
    servers = [start_redis(tmp_path), start_redis(tmp_path)]
    try:
        ports = {"redis-a": servers[0].port, "redis-b": servers[1].port}
        with running_haproxy(tmp_path, _state_catalog(ports)) as haproxy:
            runtime = haproxy.runtime()
            frontend = haproxy.catalog.services[0].frontend
            assert frontend is not None
            port = int(frontend.rsplit(":", 1)[1])

            async def standby_disabled() -> None:
                states = {s.server: s for s in await runtime.servers("be_st")}
                assert states["redis-a"].operational == "up", states
                assert states["redis-b"].admin is TrafficState.MAINT, states

            await assert_eventually(standby_disabled, timeout=10)

            await runtime.set_state("be_st", "redis-a", TrafficState.MAINT)
            promoted = await runtime.set_state("be_st", "redis-b", TrafficState.READY)
            assert promoted.admin is TrafficState.READY, promoted

            async def served_by_b() -> None:
                info = redis.Redis(port=port, socket_timeout=2).info("server")
                assert info["tcp_port"] == ports["redis-b"], info["tcp_port"]
                states = {s.server: s.admin for s in await runtime.servers()}
                assert states == {"redis-a": TrafficState.MAINT, "redis-b": TrafficState.READY}

            await assert_eventually(served_by_b, timeout=10)
    finally:
        for server in servers:
            server.stop()
