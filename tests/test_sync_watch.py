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
from drc.model import ReplicaState, ReplicaTrack, WatchInput, WatchResult
from drc.sync import SyncStats, observe
from tests.support.net import free_port
from tests.support.redis_server import start_redis
from workflows.escalation import choose_standby


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
    result = await watch_until_sync_event(state_service(*pair), state)
    await state.close()
    stats = result.sync["redis-b"]
    assert result.sync_events[0].state == "in_sync"
    assert stats.last_lag_ms is not None and 0 < stats.last_lag_ms < 1000
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
    assert "for 3 samples" in event.reason and "link down" in event.reason


def test_sync_hysteresis_needs_three_bad_and_two_good_samples() -> None:
    stats = SyncStats(replica="b", primary="a", state="in_sync")
    bad = [observe(stats, 500.0, 10, 5, True, None, 100, t) for t in range(3)]
    assert bad[:2] == [None, None] and bad[2] is not None and bad[2].state == "sync_degraded"
    assert "lag 500.0 ms above 100 ms for 3 samples, offset gap 5 bytes" in bad[2].reason
    good = [observe(stats, 1.0, 10, 10, True, None, 100, t) for t in range(3, 5)]
    assert good[0] is None and good[1] is not None and good[1].state == "in_sync"
    assert stats.percentile(50) == 500.0 and stats.percentile(99) == 500.0


def test_a_sync_degraded_standby_is_never_chosen_unless_forced() -> None:
    service = state_service(1, 2)
    tracks = {n: ReplicaTrack(state=ReplicaState.HEALTHY) for n in ("redis-a", "redis-b")}
    behind = SyncStats(
        replica="redis-b",
        primary="redis-a",
        state="sync_degraded",
        last_lag_ms=2300.0,
        primary_offset=900,
        replica_offset=100,
    )
    target, why = choose_standby(service, "redis-a", tracks, None, {"redis-b": behind})
    assert target is None
    assert why == (
        "redis-b is sync_degraded: lag 2300.0 ms (max_lag_on_failover 0 ms), offset gap 800 "
        "bytes; promoting it could lose acknowledged writes (--force overrides)"
    )
    assert choose_standby(service, "redis-a", tracks, None, None)[0] == "redis-b"  # forced
