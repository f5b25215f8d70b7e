from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import redis

from demo.platform import marker_path, replica_command, supervisor_config, write_supervisor_config
from demo.services.faults import Faults
from drc.catalog_loader import load_catalog
from tests.support.net import assert_eventually, wait_port
from tests.support.supervisor import Platform, running_platform, small_catalog

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def platform(tmp_path: Path):
    with running_platform(tmp_path) as running:
        yield running


@pytest.fixture
async def http():
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


async def test_heartbeat_and_health_of_every_replica(platform: Platform, http: httpx.AsyncClient):
    for service in platform.catalog.services:
        for replica in service.replicas:
            beat = await http.get(replica.endpoint("/health/heartbeat"))
            assert beat.status_code == 200
            body = beat.json()
            assert body["service"] == service.name
            assert body["replica"] == replica.name
            assert body["pid"] > 0 and body["uptime_s"] >= 0

            health = await http.get(replica.endpoint("/health"))
            assert health.status_code == 200, health.text
            assert health.json()["status"] == "ok"
            deps = health.json()["dependencies"]
            expected = {
                str(r.url).rstrip("/")
                for dep in service.depends_on
                for r in platform.catalog.service(dep).replicas  # type: ignore[union-attr]
            }
            assert set(deps) == expected
            assert set(deps.values()) <= {"ok"}


async def test_health_names_a_dead_dependency(platform: Platform, http: httpx.AsyncClient):
    from activities.process_control import SupervisorController

    control = SupervisorController(http, credentials=platform.credentials)
    await control.stop(platform.supervisor_url, "re-a")

    health = await http.get(platform.url("og-a", "/health"))
    assert health.status_code == 503
    body = health.json()
    assert body["status"] == "failing"
    assert set(body["failed"]) == {"risk-engine"}
    re_url = platform.url("re-a")
    assert "connection refused" in body["dependencies"][re_url]
    assert "risk-engine" in body["error"] and "connection refused" in body["error"]


async def test_one_dead_replica_of_an_active_active_dependency_is_reported_but_ok(
    platform: Platform, http: httpx.AsyncClient
):
    from activities.process_control import SupervisorController

    control = SupervisorController(http, credentials=platform.credentials)
    await control.stop(platform.supervisor_url, "md-a")

    health = await http.get(platform.url("re-a", "/health"))
    assert health.status_code == 200
    deps = health.json()["dependencies"]
    assert deps[platform.url("md-a")] == "connection refused"
    assert deps[platform.url("md-b")] == "ok"
    # ...and the gateway still trades, through md-b.
    placed = await http.post(
        platform.url("og-a", "/orders"), json={"symbol": "ACME", "side": "buy", "qty": 1}
    )
    assert placed.status_code == 201, placed.text


async def test_order_round_trip_through_real_dependencies(
    platform: Platform, http: httpx.AsyncClient
):
    placed = await http.post(
        platform.url("og-a", "/orders"), json={"symbol": "acme", "side": "buy", "qty": 100}
    )
    assert placed.status_code == 201, placed.text
    order_id = placed.json()["id"]

    fetched = await http.get(platform.url("og-a", f"/orders/{order_id}"))
    assert fetched.status_code == 200
    order = fetched.json()
    assert order["symbol"] == "ACME" and order["side"] == "buy" and order["qty"] == 100
    assert order["price"] > 0 and order["gateway"] == "og-a"

    missing = await http.get(platform.url("og-a", "/orders/no-such-order"))
    assert missing.status_code == 404


async def test_gateway_rejects_bad_and_risky_orders(platform: Platform, http: httpx.AsyncClient):
    bad = await http.post(
        platform.url("og-a", "/orders"), json={"symbol": "ACME", "side": "hold", "qty": 1}
    )
    assert bad.status_code == 400 and "side" in bad.json()["error"]
    risky = await http.post(
        platform.url("og-a", "/orders"), json={"symbol": "ACME", "side": "sell", "qty": 1_000_000}
    )
    assert risky.status_code == 422
    assert "limit" in risky.json()["reason"]


async def test_gateway_answers_503_naming_a_dead_dependency(
    platform: Platform, http: httpx.AsyncClient
):
    from activities.process_control import SupervisorController

    control = SupervisorController(http, credentials=platform.credentials)
    await control.stop(platform.supervisor_url, "re-a")
    placed = await http.post(
        platform.url("og-a", "/orders"), json={"symbol": "ACME", "side": "buy", "qty": 1}
    )
    assert placed.status_code == 503
    assert placed.json()["dependency"] == "risk-engine"


async def test_quotes_move_and_stay_crossed_correctly(platform: Platform, http: httpx.AsyncClient):
    async def quote() -> dict[str, float]:
        resp = await http.get(platform.url("md-a", "/quotes/ACME"))
        assert resp.status_code == 200
        return resp.json()

    first = await quote()
    assert 0 < first["bid"] < first["ask"]

    async def moved() -> None:
        assert (await quote())["mid"] != first["mid"]

    await assert_eventually(moved, timeout=5)
    assert (await http.get(platform.url("md-a", "/quotes/not a symbol"))).status_code == 404


def test_demo_config_never_lets_supervisord_restart_on_its_own(tmp_path: Path):
    catalog = load_catalog(REPO / "demo" / "catalog.yaml")
    config = supervisor_config(catalog, tmp_path)
    programs = config.split("[program:")[1:]
    assert len(programs) == sum(len(s.replicas) for s in catalog.services) == 10
    for program in programs:
        assert "\nautorestart=false\n" in program
        assert "\nstartretries=0\n" in program
        assert "\nautostart=true\n" in program
    assert "port=127.0.0.1:18001" in config
    assert f"--fail-marker {tmp_path}/demo/markers/og-a" in config
    assert f"--admin-hang-marker {tmp_path}/demo/markers/og-a.admin-hang" in config
    assert f"--latency-marker {tmp_path}/demo/markers/og-a.latency" in config
    assert f"--error-marker {tmp_path}/demo/markers/og-a.errors" in config
    assert "--depends risk-engine=http://127.0.0.1:18111" in config
    [haproxy] = [p for p in programs if p.startswith("haproxy]")]
    assert f" -f {tmp_path}/demo/haproxy.cfg -db\n" in haproxy  # HAProxy, in the foreground


def test_a_restarted_supervisord_starts_no_program(tmp_path: Path):
    # Its programs may still run as orphans of the supervisord that died: no duplicates.
    catalog = load_catalog(REPO / "demo" / "catalog.yaml")
    programs = supervisor_config(catalog, tmp_path, autostart=False).split("[program:")[1:]
    assert len(programs) == 10
    assert all("\nautostart=false\n" in program for program in programs)


def test_config_port_override(tmp_path: Path):
    catalog = load_catalog(REPO / "demo" / "catalog.yaml")
    config = supervisor_config(catalog, tmp_path, python="/opt/py", port=19999)
    assert "port=127.0.0.1:19999" in config and "serverurl=http://127.0.0.1:19999" in config
    assert "command=/opt/py -m demo.services --service market-data" in config


async def test_only_the_primary_accepts_orders_and_roles_move_by_promote_and_demote(
    platform: Platform, http: httpx.AsyncClient
):
    order = {"symbol": "ACME", "side": "buy", "qty": 1}
    refused = await http.post(platform.url("og-b", "/orders"), json=order)
    assert refused.status_code == 503 and refused.json()["error"] == "standby: not accepting orders"
    promoted = await http.post(platform.url("og-b", "/admin/promote"))
    assert promoted.json() == {"role": "primary", "previous": "standby"}
    assert (await http.post(platform.url("og-b", "/orders"), json=order)).status_code == 201
    beat = await http.get(platform.url("og-b", "/health/heartbeat"))
    assert beat.json()["role"] == "primary"
    demoted = await http.post(platform.url("og-a", "/admin/demote"))
    assert demoted.json() == {"role": "standby", "previous": "primary"}
    assert (await http.post(platform.url("og-a", "/orders"), json=order)).status_code == 503


async def test_a_promoted_role_survives_a_restart(platform: Platform, http: httpx.AsyncClient):
    from activities.process_control import SupervisorController

    await http.post(platform.url("og-b", "/admin/promote"))
    control = SupervisorController(http, credentials=platform.credentials)
    await control.stop(platform.supervisor_url, "og-b")
    await control.start(platform.supervisor_url, "og-b")

    async def primary() -> None:
        try:
            beat = await http.get(platform.url("og-b", "/health/heartbeat"))
        except httpx.ConnectError as exc:
            raise AssertionError("og-b is not listening yet") from exc
        assert beat.json()["role"] == "primary"

    await assert_eventually(primary, timeout=10)


async def test_promote_and_demote_wait_while_the_admin_hang_marker_exists(
    platform: Platform, http: httpx.AsyncClient
):
    hang = platform.marker("og-b.admin-hang")
    hang.touch()
    promote = asyncio.create_task(http.post(platform.url("og-b", "/admin/promote")))
    await asyncio.sleep(0.5)
    assert not promote.done(), "held while the marker exists"
    beat = await http.get(platform.url("og-b", "/health/heartbeat"))
    assert beat.json()["role"] == "standby", "the replica serves; only the role change waits"
    hang.unlink()
    assert (await promote).json() == {"role": "primary", "previous": "standby"}


async def test_promotion_fails_while_the_promote_fail_marker_exists(
    platform: Platform, http: httpx.AsyncClient
):
    platform.marker("og-b.promote-fail").touch()
    refused = await http.post(platform.url("og-b", "/admin/promote"))
    assert refused.status_code == 500 and "promotion refused" in refused.json()["error"]
    beat = await http.get(platform.url("og-b", "/health/heartbeat"))
    assert beat.json()["role"] == "standby"


# --- the fault switch ----------------------------------------------------------------------------


def _pattern(faults: Faults, kind: tuple[str, str, str], n: int) -> str:
    return "".join("x" if faults.fails(kind) else "." for _ in range(n))


def test_an_error_share_fails_that_share_evenly_per_kind_of_request(tmp_path: Path):
    marker = tmp_path / "og-a.errors"
    faults = Faults(error_marker=marker)
    beat, health = ("GET", "/health/heartbeat", "drc-probe"), ("GET", "/health", "drc-probe")
    assert _pattern(faults, beat, 10) == "." * 10, "no file, no fault"
    marker.write_text("0.3\n")
    pattern = _pattern(faults, beat, 100)
    assert pattern.count("x") == 30 and "xx" not in pattern
    assert all(pattern[i : i + 10].count("x") == 3 for i in range(0, 100, 10))
    assert _pattern(faults, health, 10) == "...x..x..x", "each kind keeps its own share"
    marker.write_text("0.1")
    assert _pattern(faults, ("POST", "/orders", "x"), 20) == ".........x.........x"
    marker.write_text("1")
    assert _pattern(faults, beat, 5) == "xxxxx"
    marker.write_text("not a number")
    assert _pattern(faults, beat, 5) == "....."
    marker.unlink()
    assert faults.error_share() == 0.0


def test_a_latency_marker_holds_milliseconds(tmp_path: Path):
    marker = tmp_path / "og-a.latency"
    faults = Faults(latency_marker=marker)
    assert faults.delay_ms() == 0.0
    marker.write_text("200")
    assert faults.delay_ms() == 200.0
    marker.write_text("-5")
    assert faults.delay_ms() == 0.0


async def test_the_fault_switch_slows_and_fails_a_running_replica_until_removed(
    platform: Platform, http: httpx.AsyncClient
):
    url = platform.url("md-a", "/health/heartbeat")

    async def timed() -> tuple[float, int]:
        started = asyncio.get_running_loop().time()
        status = (await http.get(url)).status_code
        return (asyncio.get_running_loop().time() - started) * 1000, status

    latency = platform.marker("md-a.latency")
    latency.write_text("200")
    slow = [await timed() for _ in range(3)]
    assert all(ms >= 200 and status == 200 for ms, status in slow), slow
    latency.unlink()
    fast, _ = await timed()
    assert fast < 150, fast

    errors = platform.marker("md-a.errors")
    errors.write_text("0.3")
    answers = [await http.get(url) for _ in range(20)]
    statuses = "".join("x" if a.status_code == 500 else "." for a in answers)
    assert statuses.count("x") == 6 and "xx" not in statuses, statuses
    failed = next(a for a in answers if a.status_code == 500)
    assert "injected fault: 0.3 of requests fail" in failed.json()["error"]
    health = [(await http.get(platform.url("md-a", "/health"))).status_code for _ in range(10)]
    assert health.count(500) == 3, "the health endpoint too"
    errors.unlink()
    assert {(await http.get(url)).status_code for _ in range(10)} == {200}
    other = await http.get(platform.url("md-b", "/health/heartbeat"))
    assert other.status_code == 200, "only the marked replica"


def test_a_redis_replica_with_its_fail_marker_exits_3_and_starts_without_it(tmp_path: Path):
    # A lost region's order store must not come back either: the same marker as the services.
    catalog = small_catalog(("order-state",))
    state = catalog.services[0]
    replica = state.replicas[0]
    assert replica.protocol == "redis" and replica.url.port is not None
    write_supervisor_config(catalog, tmp_path)  # writes the Redis config files too
    argv = replica_command(catalog, state, replica, tmp_path)

    marker_path(tmp_path, replica.name).touch()
    refused = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert refused.returncode == 3
    assert f"fail marker {marker_path(tmp_path, replica.name)} exists" in refused.stderr

    marker_path(tmp_path, replica.name).unlink()
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(replica.url.port, timeout=20)
        assert redis.Redis(port=replica.url.port).ping()
        # exec: the pid supervisord holds is redis-server's own, so its signals reach it.
        assert Path(f"/proc/{server.pid}/comm").read_text().strip() == "redis-server"
    finally:
        server.kill()
        server.wait(timeout=10)


async def test_the_readmes_region_kill_command_kills_every_named_replica(platform: Platform):
    # README: `supervisorctl -c .drc/demo/supervisord.conf signal KILL md-a re-a redis-a og-a`
    # (the config's [supervisorctl] section holds the URL and the login).
    supervisorctl = str(Path(sys.executable).parent / "supervisorctl")
    names = ["md-a", "re-a"]
    result = subprocess.run(
        [
            supervisorctl,
            "-c",
            str(platform.home / "demo" / "supervisord.conf"),
            "signal",
            "KILL",
            *names,
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    proxy = platform.rpc()

    async def killed() -> None:
        for name in names:
            assert proxy.getProcessInfo(name)["statename"] == "EXITED", name

    await assert_eventually(killed, timeout=10)
    assert proxy.getProcessInfo("md-b")["statename"] == "RUNNING"
