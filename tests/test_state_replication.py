"""RedisReplicator against real redis-server primary/replica pairs on free ports."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from activities.state import (
    FENCED_MIN_REPLICAS,
    NEVER_UP,
    Endpoint,
    RedisReplicator,
    ReplicationInfo,
    StateError,
    StateUnreachableError,
    to_application_error,
)
from tests.support.net import assert_eventually, free_port
from tests.support.redis_server import RedisServer, start_redis


@dataclass
class Pair:
    primary: RedisServer
    replica: RedisServer

    @property
    def p(self) -> Endpoint:
        return Endpoint("127.0.0.1", self.primary.port)

    @property
    def r(self) -> Endpoint:
        return Endpoint("127.0.0.1", self.replica.port)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    primary = start_redis(tmp_path)
    replica = start_redis(tmp_path, replica_of=primary.port)
    try:
        replica.wait_link_up()
        yield Pair(primary, replica)
    finally:
        replica.stop()
        primary.stop()


@pytest.fixture
async def rep() -> AsyncIterator[RedisReplicator]:
    replicator = RedisReplicator(timeout_s=1.0)
    try:
        yield replicator
    finally:
        await replicator.close()


def client(server: RedisServer) -> redis.Redis:
    return redis.Redis(port=server.port, socket_timeout=5)


def write_keys(server: RedisServer, prefix: str, n: int) -> None:
    with client(server) as c:
        for i in range(n):
            c.set(f"{prefix}:{i}", f"value-{i}")


def kill(server: RedisServer) -> None:
    """SIGKILL, as the user did: no shutdown, the replica learns it from the closed socket."""
    server.process.kill()
    server.process.wait()


async def info_until(
    read: Callable[[], Awaitable[ReplicationInfo]],
    holds: Callable[[ReplicationInfo], bool],
    timeout_s: float = 20.0,
) -> ReplicationInfo:
    """Poll ``read`` until ``holds``; a generous timeout fails the test instead of hanging it."""
    deadline = time.monotonic() + timeout_s
    while not holds(info := await read()):
        assert time.monotonic() < deadline, f"condition never held; last: {info}"
        await asyncio.sleep(0.05)
    return info


# --- pure parts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:7001", Endpoint("127.0.0.1", 7001)),
        ("redis://db-a:6380", Endpoint("db-a", 6380)),
        ("redis://db-a:6380/0", Endpoint("db-a", 6380)),
    ],
)
def test_endpoint_parse(text: str, expected: Endpoint) -> None:
    assert Endpoint.parse(text) == expected
    assert Endpoint.parse(str(expected)) == expected


@pytest.mark.parametrize("text", ["db-a", "db-a:", ":6380", "db-a:port", "db-a:70000"])
def test_endpoint_parse_rejects(text: str) -> None:
    with pytest.raises(StateError):
        Endpoint.parse(text)


def test_to_application_error_retryable_only_when_unreachable() -> None:
    unreachable = to_application_error(StateUnreachableError("x unreachable"))
    refused = to_application_error(StateError("x refused"))
    assert (unreachable.type, unreachable.non_retryable) == ("StateUnreachable", False)
    assert (refused.type, refused.non_retryable) == ("StateError", True)


# --- against real servers ---------------------------------------------------------------


async def test_info_reports_roles_offsets_and_link(pair: Pair, rep: RedisReplicator) -> None:
    write_keys(pair.primary, "k", 10)
    await rep.wait_in_sync(pair.p, pair.r, timeout_ms=10_000)

    p = await rep.info(pair.p)
    r = await rep.info(pair.r)

    assert (p.role, p.link_up, p.primary, p.connected_replicas) == ("master", None, None, 1)
    assert (r.role, r.link_up, r.primary) == ("slave", True, pair.p)
    assert p.offset > 0 and r.offset == p.offset
    assert p.min_replicas_to_write == 0 and not p.fenced
    assert r.replication_id == p.replication_id


async def test_lag_on_healthy_pair_is_small_and_offsets_meet(
    pair: Pair, rep: RedisReplicator
) -> None:
    write_keys(pair.primary, "k", 100)
    # Redis 7.0 starts streaming to a freshly synced replica only at its first ACK (up to a
    # second after the link came up): wait for that, so the samples time the stream itself.
    await rep.wait_in_sync(pair.p, pair.r, timeout_ms=10_000)

    samples = [await rep.measure_lag(pair.p, pair.r, timeout_ms=2000) for _ in range(5)]

    for sample in samples:
        assert sample.error is None, sample
        assert sample.lag_ms is not None and sample.lag_ms > 0, sample
        assert sample.link_up and sample.primary_reachable
        assert sample.link_down_since_s is None
        assert sample.replid == sample.primary_replid != ""
    synced = await rep.wait_in_sync(pair.p, pair.r, timeout_ms=10_000)
    assert synced.primary_offset == synced.replica_offset
    assert synced.link_up and synced.lag_ms == 0.0


async def test_paused_replica_has_unknown_lag_and_an_offset_gap(
    pair: Pair, rep: RedisReplicator
) -> None:
    await rep.wait_in_sync(pair.p, pair.r, timeout_ms=10_000)
    pair.replica.pause()
    try:
        write_keys(pair.primary, "while-paused", 50)
        # Returning at all shows the call is bounded by its timeouts, not by the pause: the
        # replica stays stopped until `finally`, so a wait on it would hang (per-test timeout).
        sample = await rep.measure_lag(pair.p, pair.r, timeout_ms=300)
    finally:
        pair.replica.resume()

    assert sample.lag_ms is None
    assert sample.error is not None and "did not answer" in sample.error
    assert not sample.link_up
    assert sample.primary_offset > sample.replica_offset >= 0
    # Once resumed, the replica catches up and the heartbeat arrives again.
    await rep.wait_in_sync(pair.p, pair.r, timeout_ms=10_000)
    assert (await rep.measure_lag(pair.p, pair.r, timeout_ms=2000)).lag_ms is not None


async def test_replica_refuses_writes_until_promoted(pair: Pair, rep: RedisReplicator) -> None:
    with pytest.raises(StateError, match="READONLY"):
        await rep.write_and_read(pair.r)

    info = await rep.promote(pair.r)
    again = await rep.promote(pair.r)  # idempotent

    assert info.role == "master" and again.role == "master"
    assert info.min_replicas_to_write == 0
    assert await rep.write_and_read(pair.r) > 0


async def test_fence_refuses_writes_and_unfence_restores(pair: Pair, rep: RedisReplicator) -> None:
    assert await rep.write_and_read(pair.p) > 0

    said = await rep.fence(pair.p)
    again = await rep.fence(pair.p)

    assert "NOREPLICAS" in said and "already fenced" in again
    assert (await rep.info(pair.p)).min_replicas_to_write == FENCED_MIN_REPLICAS
    with pytest.raises(StateError, match="NOREPLICAS"):
        await rep.write_and_read(pair.p)
    with pytest.raises(StateError, match="NOREPLICAS"):
        await rep.measure_lag(pair.p, pair.r)  # the heartbeat is a write too
    # Reads and replication go on while fenced.
    r = await rep.info(pair.r)
    assert r.link_up

    said = await rep.unfence(pair.p)
    assert "unfenced" in said and "already" not in said
    assert "already unfenced" in await rep.unfence(pair.p)
    assert await rep.write_and_read(pair.p) > 0


async def test_promote_unfences(pair: Pair, rep: RedisReplicator) -> None:
    await rep.fence(pair.r)  # no effect while a replica, but it would survive the promotion
    assert (await rep.info(pair.r)).fenced

    info = await rep.promote(pair.r)

    assert info.role == "master" and not info.fenced
    assert await rep.write_and_read(pair.r) > 0


async def test_failover_then_old_primary_follows_new_one(pair: Pair, rep: RedisReplicator) -> None:
    write_keys(pair.primary, "before", 20)
    await rep.fence(pair.p)
    await rep.wait_in_sync(pair.p, pair.r, timeout_ms=10_000)
    await rep.promote(pair.r)
    write_keys(pair.replica, "after", 20)

    info = await rep.replicate_from(pair.p, pair.r)
    again = await rep.replicate_from(pair.p, pair.r)  # idempotent: no second resync
    synced = await rep.wait_in_sync(pair.r, pair.p, timeout_ms=10_000)

    assert info.role == "slave" and info.primary == pair.r and again.primary == pair.r
    assert synced.primary_offset == synced.replica_offset
    with client(pair.primary) as c:
        assert c.get("before:19") == b"value-19"
        assert c.get("after:19") == b"value-19"
    assert (await rep.consistency(pair.r, pair.p)).ok
    with pytest.raises(StateError, match="READONLY"):
        await rep.write_and_read(pair.p)


async def test_consistency_ok_when_synced_and_finds_key_missing_on_replica(
    pair: Pair, rep: RedisReplicator
) -> None:
    write_keys(pair.primary, "k", 30)
    with client(pair.primary) as c:
        c.hset("h", mapping={"a": "1", "b": "2"})
        c.rpush("l", "x", "y")
        c.zadd("z", {"m": 1.5})
    await rep.wait_in_sync(pair.p, pair.r, timeout_ms=10_000)
    await rep.measure_lag(pair.p, pair.r)  # drc:heartbeat must not be sampled

    synced = await rep.consistency(pair.p, pair.r)
    assert synced.ok and synced.offsets_equal and synced.checked == 33, synced

    # A SIGSTOPped replica cannot be compared (it answers nothing: see the test below), so
    # hold back its replication stream instead: CLIENT PAUSE WRITE on a replica pauses the
    # commands its primary sends while reads (DUMP, INFO) keep being answered.
    with client(pair.replica) as c:
        c.execute_command("CLIENT", "PAUSE", "60000", "WRITE")
        try:
            write_keys(pair.primary, "only-on-primary", 1)
            with client(pair.primary) as pc:
                pc.set("k:0", "changed")
            result = await rep.consistency(pair.p, pair.r)
        finally:
            c.execute_command("CLIENT", "UNPAUSE")

    assert not result.ok
    assert result.missing_on_replica == ["only-on-primary:0"]
    assert result.mismatched == ["k:0"]
    assert result.primary_offset > result.replica_offset and not result.offsets_equal
    await rep.wait_in_sync(pair.p, pair.r, timeout_ms=10_000)
    assert (await rep.consistency(pair.p, pair.r)).ok


async def test_consistency_ignores_encoding_differences(
    tmp_path: Path, rep: RedisReplicator
) -> None:
    primary = start_redis(tmp_path)
    try:
        with client(primary) as c:
            c.sadd("s", *range(600))  # past set-max-intset-entries: a hashtable...
            c.srem("s", *range(1, 600))  # ...which shrinking does not turn back into an intset
        replica = start_redis(tmp_path, replica_of=primary.port)
        try:
            replica.wait_link_up()  # a full sync: the replica loads "s" as an intset
            p, r = Endpoint("127.0.0.1", primary.port), Endpoint("127.0.0.1", replica.port)
            with client(primary) as c, client(replica) as rc:
                assert c.dump("s") != rc.dump("s")

            result = await rep.consistency(p, r)

            assert result.ok and result.checked == 1, result
        finally:
            replica.stop()
    finally:
        primary.stop()


async def test_paused_replica_cannot_be_compared(pair: Pair, rep: RedisReplicator) -> None:
    await rep.wait_in_sync(pair.p, pair.r, timeout_ms=10_000)
    write_keys(pair.primary, "k", 3)
    pair.replica.pause()
    try:
        write_keys(pair.primary, "only-on-primary", 1)
        # Raising at all, while the replica is still stopped, shows the timeout ended the wait.
        with pytest.raises(StateUnreachableError, match="unreachable"):
            await rep.consistency(pair.p, pair.r)
    finally:
        pair.replica.resume()


async def test_unreachable_endpoint_fails_at_once() -> None:
    # Timeouts far beyond the per-test timeout: only the refusal itself, acted on without
    # waiting out a timeout, lets these calls end, so no stopwatch is needed to tell.
    rep = RedisReplicator(timeout_s=3600)
    nobody = Endpoint("127.0.0.1", free_port())
    try:
        for call in (rep.info, rep.fence, rep.unfence, rep.promote, rep.write_and_read):
            with pytest.raises(StateUnreachableError, match=str(nobody.port)):
                await call(nobody)
    finally:
        await rep.close()


async def test_dead_replica_gives_a_lag_sample_with_an_error(
    pair: Pair, rep: RedisReplicator
) -> None:
    pair.replica.stop()

    sample = await rep.measure_lag(pair.p, pair.r, timeout_ms=500)

    assert sample.lag_ms is None and not sample.link_up
    assert sample.error is not None and "unreachable" in sample.error
    with pytest.raises(StateError, match="not in sync"):
        await rep.wait_in_sync(pair.p, pair.r, timeout_ms=300)


# --- a primary that does not answer ---------------------------------------------------------


async def test_a_killed_primarys_replica_gives_its_own_view(
    pair: Pair, rep: RedisReplicator
) -> None:
    write_keys(pair.primary, "order", 20)
    before = await rep.wait_in_sync(pair.p, pair.r, timeout_ms=10_000)
    kill(pair.primary)
    down = await info_until(lambda: rep.info(pair.r), lambda i: not i.link_up)

    sample = await rep.measure_lag(pair.p, pair.r, timeout_ms=500)

    assert not sample.primary_reachable, sample
    assert sample.lag_ms is None and sample.primary_offset == -1
    assert sample.error is not None and f"{pair.p} unreachable" in sample.error
    assert sample.replica_offset >= before.primary_offset > 0
    assert not sample.link_up
    assert sample.link_down_since_s is not None and sample.link_down_since_s >= 0
    assert sample.replid == before.primary_replid and sample.primary_replid == ""
    assert down.link_down_since_s is not None and down.link_down_since_s >= 0
    assert down.replication_id == before.primary_replid
    assert str(sample).startswith(f"primary unreachable ({pair.p} unreachable")


async def test_a_stopped_primary_is_unreachable_while_its_replica_stays_linked(
    pair: Pair, rep: RedisReplicator
) -> None:
    """Dead vs unreachable: a primary that only drc cannot reach still feeds its replica."""
    write_keys(pair.primary, "order", 5)
    await rep.wait_in_sync(pair.p, pair.r, timeout_ms=10_000)
    pair.primary.pause()
    try:
        sample = await rep.measure_lag(pair.p, pair.r, timeout_ms=300)
    finally:
        pair.primary.resume()

    assert not sample.primary_reachable, sample
    assert sample.link_up and sample.link_down_since_s is None
    assert sample.replica_offset > 0 and sample.replid != ""


async def test_neither_answering_gives_a_sample_saying_so(pair: Pair, rep: RedisReplicator) -> None:
    kill(pair.primary)
    pair.replica.stop()

    sample = await rep.measure_lag(pair.p, pair.r, timeout_ms=300)

    assert not sample.primary_reachable and not sample.link_up
    assert (sample.primary_offset, sample.replica_offset) == (-1, -1)
    assert sample.link_down_since_s is None and sample.replid == ""
    assert sample.error is not None and f"{pair.p} unreachable" in sample.error
    assert f"replica {pair.r} did not answer" in sample.error


async def test_a_replica_says_how_long_its_link_has_been_down(
    tmp_path: Path, pair: Pair, rep: RedisReplicator
) -> None:
    with client(pair.replica) as c:
        c.execute_command("REPLICAOF", "127.0.0.1", str(free_port()))  # the link breaks now

    counted = await info_until(
        lambda: rep.info(pair.r),
        lambda i: i.link_down_since_s is not None and i.link_down_since_s >= 2,
    )
    assert not counted.link_up and "link=down for " in str(counted)

    # A replica whose link was never up since it started says so (Redis's -1).
    never = start_redis(tmp_path, replica_of=free_port())
    try:
        info = await rep.info(Endpoint("127.0.0.1", never.port))
    finally:
        never.stop()
    assert info.link_down_since_s == NEVER_UP and "link=down since start" in str(info)


async def test_a_cut_off_standby_does_not_make_its_sibling_look_behind(
    pair: Pair, rep: RedisReplicator, tmp_path: Path
) -> None:
    # Two standbys measured at once, one pointed where no primary listens: the healthy one's
    # heartbeat must not be overwritten by the other's measurement (one shared key did).
    sibling = start_redis(tmp_path, replica_of=pair.primary.port)
    try:
        sibling.wait_link_up()
        with client(sibling) as c:
            c.execute_command("REPLICAOF", "127.0.0.1", "1")
        cut = Endpoint("127.0.0.1", sibling.port)

        async def settled() -> None:  # the sibling's sync and detach may stall the primary
            alone = await rep.measure_lag(pair.p, pair.r, timeout_ms=1000)
            assert alone.lag_ms is not None and alone.lag_ms < 50, alone

        await assert_eventually(settled, timeout=10)
        for _ in range(12):
            healthy, broken = await asyncio.gather(
                rep.measure_lag(pair.p, pair.r, timeout_ms=1000),
                rep.measure_lag(pair.p, cut, timeout_ms=300),
            )
            assert healthy.lag_ms is not None and healthy.lag_ms < 500, healthy
            assert broken.lag_ms is None, broken
    finally:
        sibling.stop()
