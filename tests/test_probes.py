"""Probes against real servers: aiohttp, TCP, redis-server, PostgreSQL; and the ticker."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

import psycopg
import pytest
from aiohttp import web

from activities.probes import HttpProber, ProbeEngine, probe_postgres, probe_redis, probe_tcp
from activities.probes.ticker import Tick, ticks
from drc.catalog import HttpCheck, PostgresCheck, RedisCheck, Replica, TcpCheck
from tests.support.net import free_port
from tests.support.redis_server import REDIS_SERVER, RedisServer, start_redis

PG_BASE = os.environ.get("DRC_TEST_PG", "host=127.0.0.1 port=5432 user=postgres")
SLOW_S = 1.0


@dataclass
class Site:
    port: int
    peers: list[tuple[str, int]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
async def site() -> AsyncIterator[Site]:
    port = free_port()
    state = Site(port)

    async def ok(request: web.Request) -> web.Response:
        state.peers.append(request.transport.get_extra_info("peername"))  # type: ignore[union-attr]
        return web.Response(text="ok")

    async def unavailable(request: web.Request) -> web.Response:
        return web.Response(status=503, text="overloaded: queue full")

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(SLOW_S)
        return web.Response(text="late")

    async def big(request: web.Request) -> web.Response:
        return web.Response(status=500, text="x" * 300_000)

    app = web.Application()
    app.add_routes(
        [
            web.get("/ok", ok),
            web.get("/health/heartbeat", ok),
            web.get("/health", ok),
            web.get("/down", unavailable),
            web.get("/slow", slow),
            web.get("/big", big),
        ]
    )
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield state
    await runner.cleanup()


@pytest.fixture
async def prober() -> AsyncIterator[HttpProber]:
    prober = HttpProber()
    yield prober
    await prober.close()


# --- HTTP -----------------------------------------------------------------------------------


async def test_http_ok(site: Site, prober: HttpProber) -> None:
    result = await prober.get(site.url("/ok"), 500)
    assert result.ok and result.error is None
    assert result.detail == "HTTP 200"
    assert result.latency_ms > 0


async def test_http_wrong_status_carries_body(site: Site, prober: HttpProber) -> None:
    result = await prober.get(site.url("/down"), 500)
    assert not result.ok
    assert result.error == "HTTP 503: overloaded: queue full"


async def test_http_expected_status(site: Site, prober: HttpProber) -> None:
    assert (await prober.get(site.url("/down"), 500, expect_status=503)).ok


async def test_http_error_text_is_capped(site: Site, prober: HttpProber) -> None:
    result = await prober.get(site.url("/big"), 2000)
    assert not result.ok and result.error is not None
    assert result.error.startswith("HTTP 500: xxx")
    assert len(result.error) <= len("HTTP 500: ") + 200


async def test_http_timeout(site: Site, prober: HttpProber) -> None:
    started = time.monotonic()
    result = await prober.get(site.url("/slow"), 100)
    assert not result.ok
    assert result.error == "timed out after 100 ms"
    assert time.monotonic() - started < SLOW_S


async def test_http_refused(prober: HttpProber) -> None:
    result = await prober.get(f"http://127.0.0.1:{free_port()}/ok", 500)
    assert not result.ok
    assert result.error == "connection refused"


async def test_http_reuses_connection(site: Site, prober: HttpProber) -> None:
    for _ in range(3):
        assert (await prober.get(site.url("/ok"), 500)).ok
    assert len(site.peers) == 3
    assert len(set(site.peers)) == 1, "every probe should ride the same keep-alive connection"


async def test_http_session_reopens_after_close(site: Site, prober: HttpProber) -> None:
    assert (await prober.get(site.url("/ok"), 500)).ok
    await prober.close()
    assert (await prober.get(site.url("/ok"), 500)).ok


# --- TCP ------------------------------------------------------------------------------------


async def test_tcp_open(site: Site) -> None:
    result = await probe_tcp("127.0.0.1", site.port, 500)
    assert result.ok and result.latency_ms > 0


async def test_tcp_closed() -> None:
    result = await probe_tcp("127.0.0.1", free_port(), 500)
    assert not result.ok
    assert result.error == "connection refused"


# --- Redis ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def redis_pair(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RedisServer, RedisServer]]:
    if not shutil.which(REDIS_SERVER):
        pytest.skip("redis-server is not installed")
    tmp = tmp_path_factory.mktemp("redis")
    primary = start_redis(tmp)
    replica = start_redis(tmp, replica_of=primary.port)
    try:
        replica.wait_link_up()
        yield primary, replica
    finally:
        replica.stop()
        primary.stop()


async def test_redis_primary(redis_pair: tuple[RedisServer, RedisServer]) -> None:
    primary, _ = redis_pair
    result = await probe_redis(RedisCheck(type="redis", port=primary.port, expect_role="master"))
    assert result.ok, result.error
    assert result.detail == "role=master"


async def test_redis_replica_role_and_link(redis_pair: tuple[RedisServer, RedisServer]) -> None:
    _, replica = redis_pair
    result = await probe_redis(RedisCheck(type="redis", port=replica.port))
    assert result.ok, result.error
    assert result.detail == "role=slave master_link_status=up"


async def test_redis_role_mismatch(redis_pair: tuple[RedisServer, RedisServer]) -> None:
    _, replica = redis_pair
    result = await probe_redis(RedisCheck(type="redis", port=replica.port, expect_role="master"))
    assert not result.ok
    assert result.error == "role is slave, expected master"


async def test_redis_refused() -> None:
    result = await probe_redis(RedisCheck(type="redis", port=free_port(), timeout_ms=500))
    assert not result.ok
    assert result.error == "connection refused"


# --- PostgreSQL -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_dsn() -> str:
    try:
        with psycopg.connect(f"{PG_BASE} dbname=test", autocommit=True, connect_timeout=3) as conn:
            try:
                conn.execute("CREATE DATABASE drc_test")
            except psycopg.errors.DuplicateDatabase:
                pass
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable: {exc}")
    return f"{PG_BASE} dbname=drc_test"


async def test_postgres_ok(pg_dsn: str) -> None:
    result = await probe_postgres(PostgresCheck(type="postgres", dsn=pg_dsn))
    assert result.ok, result.error


async def test_postgres_unknown_database(pg_dsn: str) -> None:
    dsn = f"{PG_BASE} dbname=drc_no_such_db"
    result = await probe_postgres(PostgresCheck(type="postgres", dsn=dsn))
    assert not result.ok
    assert result.error == 'database "drc_no_such_db" does not exist'


async def test_postgres_refused() -> None:
    dsn = f"host=127.0.0.1 port={free_port()} user=postgres dbname=drc_test"
    result = await probe_postgres(PostgresCheck(type="postgres", dsn=dsn, timeout_ms=1000))
    assert not result.ok
    assert result.error == "connection refused"


# --- Engine ---------------------------------------------------------------------------------


def replica_at(site: Site, *checks: object, health_path: str = "/health") -> Replica:
    return Replica.model_validate(
        {
            "name": "r1",
            "region": "eu",
            "url": site.url(""),
            "health_path": health_path,
            "checks": [c.model_dump(mode="json") for c in checks],  # type: ignore[attr-defined]
        }
    )


async def test_engine_heartbeat(site: Site) -> None:
    async with ProbeEngine() as engine:
        result = await engine.heartbeat(replica_at(site), 500)
    assert result.ok and result.detail == "HTTP 200"


async def test_engine_health_all_ok(
    site: Site, redis_pair: tuple[RedisServer, RedisServer]
) -> None:
    checks = (
        TcpCheck(type="tcp", host="127.0.0.1", port=site.port),
        RedisCheck(type="redis", port=redis_pair[0].port, expect_role="master"),
        HttpCheck(type="http", url=site.url("/ok")),  # type: ignore[arg-type]
    )
    async with ProbeEngine() as engine:
        result = await engine.health(replica_at(site, *checks), 500)
    assert result.ok, result.error
    assert result.detail is not None and "role=master" in result.detail


async def test_engine_health_names_failing_check(site: Site) -> None:
    dead = free_port()
    checks = (
        TcpCheck(type="tcp", host="127.0.0.1", port=site.port),
        RedisCheck(type="redis", port=dead, timeout_ms=500),
    )
    async with ProbeEngine() as engine:
        result = await engine.health(replica_at(site, *checks), 500)
    assert not result.ok
    assert result.error == f"redis 127.0.0.1:{dead}: connection refused"


async def test_engine_health_names_every_failing_part(site: Site) -> None:
    dead = free_port()
    checks = (TcpCheck(type="tcp", host="127.0.0.1", port=dead),)
    async with ProbeEngine() as engine:
        result = await engine.health(replica_at(site, *checks, health_path="/down"), 500)
    assert not result.ok
    assert result.error == (
        f"/down: HTTP 503: overloaded: queue full; tcp 127.0.0.1:{dead}: connection refused"
    )


async def test_engine_check_dispatches_http(site: Site) -> None:
    check = HttpCheck(type="http", url=site.url("/down"), expect_status=503)  # type: ignore[arg-type]
    async with ProbeEngine() as engine:
        assert (await engine.check(check)).ok


# --- Ticker ---------------------------------------------------------------------------------


async def test_ticker_does_not_drift() -> None:
    interval, count = 0.02, 20
    seen: list[Tick] = []
    started = time.monotonic()
    async for tick in ticks(interval):
        seen.append(tick)
        await asyncio.sleep(interval / 4)  # consumer work must not push the schedule
        if len(seen) == count:
            break
    elapsed = time.monotonic() - started
    start = seen[0].scheduled
    for k, tick in enumerate(seen):
        assert tick.scheduled == pytest.approx(start + k * interval, abs=1e-9)
        assert tick.skipped == 0 or tick.lateness_s < interval
    # 19 intervals plus the last consumer step; drift of 20 × 5 ms would add 0.1 s.
    assert (count - 1) * interval <= elapsed < (count - 1) * interval + 0.09


async def test_ticker_skips_instead_of_bursting() -> None:
    interval = 0.02
    seen: list[Tick] = []
    async for tick in ticks(interval):
        seen.append(tick)
        if len(seen) == 1:
            time.sleep(interval * 3.5)  # a blocked loop, not a cooperative wait
        if len(seen) == 3:
            break
    assert seen[1].skipped >= 2
    assert 0 <= seen[1].lateness_s < interval
    assert seen[2].skipped == 0 or seen[2].skipped < 3


async def test_ticker_skip_count_is_exact_with_a_fake_clock() -> None:
    now = [100.0]
    seen: list[Tick] = []
    async for tick in ticks(1.0, clock=lambda: now[0]):
        seen.append(tick)
        if len(seen) == 1:
            now[0] += 3.25  # the consumer took three and a quarter intervals
        elif len(seen) == 2:
            now[0] += 1.0  # exactly on time for the next one
        else:
            break
    assert [(t.scheduled, t.skipped) for t in seen] == [(100.0, 0), (103.0, 2), (104.0, 0)]
    assert seen[1].lateness_s == pytest.approx(0.25)
    assert seen[2].lateness_s == pytest.approx(0.25)


async def test_ticker_rejects_nonpositive_interval() -> None:
    with pytest.raises(ValueError):
        await anext(aiter(ticks(0)))


async def test_ticker_offset_delays_only_the_first_tick() -> None:
    interval, offset = 0.02, 0.05
    before = time.monotonic()
    seen: list[Tick] = []
    async for tick in ticks(interval, offset_s=offset):
        seen.append(tick)
        if len(seen) == 3:
            break
    assert time.monotonic() - before >= offset + 2 * interval
    assert seen[0].scheduled - before == pytest.approx(offset, abs=0.01)
    assert seen[2].scheduled - seen[0].scheduled == pytest.approx(2 * interval, abs=1e-9)
    assert all(t.lateness_s >= 0 for t in seen)
