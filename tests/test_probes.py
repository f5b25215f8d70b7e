"""Probes against real servers: aiohttp, TCP, redis-server, PostgreSQL; and the ticker."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import aclosing
from dataclasses import dataclass, field
from types import SimpleNamespace

import psycopg
import pytest
from aiohttp import web

from activities.probes import HttpProber, ProbeEngine, probe_postgres, probe_redis, probe_tcp
from activities.probes import ticker as ticker_module
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
    # /slow answers 200 after SLOW_S: only the probe's own 100 ms timeout can make this fail,
    # and the error says so; no wall-clock bound needed.
    result = await prober.get(site.url("/slow"), 100)
    assert not result.ok
    assert result.error == "timed out after 100 ms"


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
#
# The ticker's contract, checked on a fake clock whose sleep returns at once and advances fake
# time by exactly what was asked (plus any oversleep a test injects): no wall-clock bound, so a
# noisy machine cannot fail these, and every figure is exact (binary fractions of a second).


@dataclass
class FakeTime:
    now: float = 100.0
    slept: list[float] = field(default_factory=list)
    oversleep: dict[int, float] = field(default_factory=dict)
    """Extra seconds the n-th sleep takes: a loop busy elsewhere wakes the ticker late."""

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        self.now += delay + self.oversleep.get(len(self.slept), 0.0)
        self.slept.append(delay)


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime()
    # The ticker waits with asyncio.sleep; only its own module's reference is replaced.
    monkeypatch.setattr(ticker_module, "asyncio", SimpleNamespace(sleep=fake.sleep))
    return fake


async def first_ticks(
    fake: FakeTime,
    count: int,
    interval_s: float = 1.0,
    work: Callable[[int], float] = lambda k: 0.0,
    offset_s: float = 0.0,
) -> list[Tick]:
    """The first ``count`` ticks; after tick k the consumer spends ``work(k)`` seconds."""
    seen: list[Tick] = []
    async with aclosing(ticks(interval_s, clock=fake.clock, offset_s=offset_s)) as stream:
        async for tick in stream:
            seen.append(tick)
            if len(seen) == count:
                break
            fake.now += work(len(seen) - 1)
    return seen


async def test_ticker_schedule_is_drift_free_whatever_the_consumer_takes(
    fake_time: FakeTime,
) -> None:
    work = [0.25, 0.5, 0.125, 0.75, 0.0] * 4
    seen = await first_ticks(fake_time, 20, work=lambda k: work[k])
    assert [t.scheduled for t in seen] == [100.0 + k for k in range(20)]
    assert [(t.lateness_s, t.skipped) for t in seen] == [(0.0, 0)] * 20
    # It sleeps only what is left of each interval: the consumer's time is absorbed, not added.
    assert fake_time.slept == [1.0 - w for w in work[:19]]


async def test_ticker_reports_a_late_wakeup_without_shifting_later_ticks(
    fake_time: FakeTime,
) -> None:
    fake_time.oversleep = {1: 0.125}  # the second wait ends 125 ms late
    seen = await first_ticks(fake_time, 5)
    assert [(t.scheduled, t.lateness_s, t.skipped) for t in seen] == [
        (100.0, 0.0, 0),
        (101.0, 0.0, 0),
        (102.0, 0.125, 0),
        (103.0, 0.0, 0),
        (104.0, 0.0, 0),
    ]
    assert fake_time.slept == [1.0, 1.0, 0.875, 1.0]  # the next wait is shorter, not the schedule


@pytest.mark.parametrize(
    ("blocked_s", "second"),
    [
        (1.0, (101.0, 0.0, 0)),  # just in time for tick 1
        (1.75, (101.0, 0.75, 0)),  # late, but within an interval: delivered late, nothing skipped
        (2.0, (102.0, 0.0, 1)),  # a whole interval late: tick 1 is skipped, tick 2 is due now
        (3.5, (103.0, 0.5, 2)),  # ticks 1 and 2 skipped; the latest due one, late by 0.5 s
    ],
)
async def test_ticker_skips_missed_ticks_instead_of_bursting(
    fake_time: FakeTime, blocked_s: float, second: tuple[float, float, int]
) -> None:
    seen = await first_ticks(fake_time, 3, work=lambda k: blocked_s if k == 0 else 0.0)
    assert (seen[0].scheduled, seen[0].lateness_s, seen[0].skipped) == (100.0, 0.0, 0)
    assert (seen[1].scheduled, seen[1].lateness_s, seen[1].skipped) == second
    # Back on the grid right after: the tick after the late one is waited for, not bursted.
    assert (seen[2].scheduled, seen[2].lateness_s, seen[2].skipped) == (second[0] + 1, 0.0, 0)
    assert fake_time.slept == [1.0 - second[1]]


async def test_ticker_offset_delays_only_the_first_tick(fake_time: FakeTime) -> None:
    seen = await first_ticks(fake_time, 3, offset_s=0.25)
    assert [(t.scheduled, t.lateness_s, t.skipped) for t in seen] == [
        (100.25, 0.0, 0),
        (101.25, 0.0, 0),
        (102.25, 0.0, 0),
    ]
    assert fake_time.slept == [0.25, 1.0, 1.0]


@pytest.mark.parametrize("interval_s", [0, -1.0])
async def test_ticker_rejects_nonpositive_interval(interval_s: float) -> None:
    with pytest.raises(ValueError, match="interval_s must be positive"):
        await anext(aiter(ticks(interval_s)))


async def test_ticker_on_the_real_clock_yields_no_tick_before_it_is_due() -> None:
    # The defaults (time.monotonic, asyncio.sleep) really wait: a lower bound only, which a
    # slow machine cannot break. asyncio may run a timer up to the clock's resolution early.
    early = time.get_clock_info("monotonic").resolution
    seen: list[tuple[Tick, float]] = []
    async with aclosing(ticks(0.01, offset_s=0.01)) as stream:
        async for tick in stream:
            seen.append((tick, time.monotonic()))
            if len(seen) == 3:
                break
    for tick, at in seen:
        assert at >= tick.scheduled - early, (tick, at)
        assert tick.lateness_s >= -early


async def test_a_vantage_points_redis_ping_leaves_from_its_source_and_sees_a_hung_server(
    redis_pair: tuple[RedisServer, RedisServer],
) -> None:
    from activities.probes.tcp import probe_redis_ping

    primary, _ = redis_pair
    answered = await probe_redis_ping("127.0.0.1", primary.port, 500, "127.0.0.12")
    # From 127.0.0.12 a Redis in protected mode answers -DENIED: alive all the same.
    assert answered.ok and answered.detail is not None, answered
    primary.pause()  # connects still complete in the kernel; PING gets no answer
    try:
        hung = await probe_redis_ping("127.0.0.1", primary.port, 300, "127.0.0.12")
    finally:
        primary.resume()
    assert not hung.ok and hung.error is not None and "300" in hung.error, hung
