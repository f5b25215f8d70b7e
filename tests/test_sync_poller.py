"""The watch's background lag poller against a real Redis pair whose primary dies."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import redis

from activities.state import Endpoint, LagSample, RedisReplicator
from activities.sync_poller import SyncPoller
from tests.support.redis_server import start_redis


async def one_sample(poller: SyncPoller, timeout_s: float = 20.0) -> LagSample:
    poller.start()
    deadline = time.monotonic() + timeout_s
    while (sample := poller.take_lag()) is None:
        assert time.monotonic() < deadline, "the measurement never finished"
        await asyncio.sleep(0.01)
    return sample


async def test_a_dead_primary_gives_samples_of_the_replicas_own_view(tmp_path: Path) -> None:
    primary = start_redis(tmp_path / "p")
    replica = start_redis(tmp_path / "r", replica_of=primary.port)
    state = RedisReplicator()
    try:
        replica.wait_link_up()
        poller = SyncPoller(
            state, Endpoint("127.0.0.1", primary.port), Endpoint("127.0.0.1", replica.port), 500
        )
        # Redis 7.0 streams to a diskless-synced replica only after its first ACK (up to 1 s).
        deadline = time.monotonic() + 20
        while (alive := await one_sample(poller)).lag_ms is None:
            assert time.monotonic() < deadline, f"no lag measured on a healthy pair: {alive}"
        primary.process.kill()
        primary.process.wait()
        with redis.Redis(port=replica.port) as c:
            deadline = time.monotonic() + 20
            while c.info("replication")["master_link_status"] != "down":
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)

        dead = await one_sample(poller)
    finally:
        await state.close()
        replica.stop()
        primary.stop()

    assert alive.primary_reachable and alive.link_up and alive.lag_ms is not None
    assert not dead.primary_reachable and not dead.link_up and dead.lag_ms is None
    assert dead.replica_offset >= alive.primary_offset > 0
    assert dead.link_down_since_s is not None and dead.link_down_since_s >= 0
    assert dead.replid == alive.primary_replid
