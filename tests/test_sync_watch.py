"""Replication lag as the watch measures it, on a real Redis primary/replica pair, and the
failover choice that refuses a standby that has fallen behind."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from temporalio.testing import ActivityEnvironment

from activities.probes.engine import ProbeEngine
from activities.state import RedisReplicator
from activities.watch import WatchActivities
from drc.catalog import Service
from drc.catalog_loader import parse_catalog
from drc.watch import WatchInput, WatchResult
from tests.support.net import free_port
from tests.support.redis_server import start_redis


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[int, int]]:
    primary = start_redis(tmp_path / "p")
    replica = start_redis(tmp_path / "r", replica_of=primary.port)
    replica.wait_link_up()
    try:
        yield primary.port, replica.port
    finally:
        replica.stop()
        primary.stop()


def state_service(primary: int, replica: int) -> Service:
    return parse_catalog(
        {
            "services": [
                {
                    "name": "order-state",
                    "redundancy": "active-standby",
                    "primary": "redis-a",
                    "replicas": [
                        {"name": "redis-a", "region": "ldn", "url": f"redis://127.0.0.1:{primary}"},
                        {"name": "redis-b", "region": "nyc", "url": f"redis://127.0.0.1:{replica}"},
                    ],
                    "probe": {"interval_ms": 250, "timeout_ms": 200, "health_every": 2},
                }
            ]
        }
    ).services[0]


async def watch_until_sync_event(service: Service, state: RedisReplicator) -> WatchResult:
    env = ActivityEnvironment()
    async with ProbeEngine() as engine:
        watch = WatchActivities(engine, state)
        result = await env.run(
            watch.watch_service, WatchInput(service, primary="redis-a", max_duration_s=20)
        )
        for _ in range(10):  # bounded: a missing event fails the test instead of hanging it
            if result.sync_events:
                return result
            result = await env.run(
                watch.watch_service,
                WatchInput(
                    service, result.tracks, primary="redis-a", sync=result.sync, max_duration_s=20
                ),
            )
        raise AssertionError("no sync event from the watch")


async def test_a_healthy_pair_is_in_sync_with_a_measured_lag(pair: tuple[int, int]) -> None:
    state = RedisReplicator()
    service = state_service(*pair)
    result = await watch_until_sync_event(service, state)
    await state.close()
    stats = result.sync["redis-b"]
    assert result.sync_events[0].state == "in_sync"
    # The sample that made it in_sync was within the service's threshold (not merely "under
    # a second", which the measurement's own timeout, well under a second here, guaranteed).
    assert stats.last_lag_ms is not None
    assert 0 < stats.last_lag_ms <= service.thresholds.sync_lag_ms
    assert stats.primary_offset == stats.replica_offset and stats.link_up


async def test_a_replica_that_stops_replicating_becomes_sync_degraded(
    pair: tuple[int, int],
) -> None:
    service = state_service(*pair)
    state = RedisReplicator()
    in_sync = await watch_until_sync_event(service, state)
    replica = aioredis.Redis(port=pair[1])
    await replica.execute_command("REPLICAOF", "127.0.0.1", str(free_port()))  # link broken
    await replica.aclose()
    env = ActivityEnvironment()
    async with ProbeEngine() as engine:
        watch = WatchActivities(engine, state)
        result = await env.run(
            watch.watch_service,
            WatchInput(
                service, in_sync.tracks, primary="redis-a", sync=in_sync.sync, max_duration_s=20
            ),
        )
    await state.close()
    event = result.sync_events[0]
    assert event.state == "sync_degraded"
    assert event.reason.startswith(
        "redis-b is behind redis-a: lag unmeasurable (heartbeat not seen on replica"
    )
    assert "for 1 sample," in event.reason and "link down" in event.reason  # judged at once
