"""``StateReplicator`` over Redis replication: one primary, its replicas, on their own ports."""

from __future__ import annotations

import asyncio
import time
import uuid

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from activities.state.base import (
    FENCED_MIN_REPLICAS,
    ConsistencyResult,
    Endpoint,
    LagSample,
    ReplicationInfo,
    StateReplicator,
)
from activities.state.errors import StateError, StateUnreachableError, redis_errors
from activities.state.redis_consistency import compare
from activities.state.redis_info import in_sync, not_in_sync, read_info
from activities.state.redis_lag import LagMeter


class RedisReplicator(StateReplicator):
    """Redis replication through ``redis.asyncio``, one cached client per endpoint.

    Clients belong to the event loop that first used them (one per worker). Retries are off
    and timeouts short: a dead server must answer at once, and Temporal's retry policy is
    the retry.
    """

    def __init__(self, timeout_s: float = 1.0) -> None:
        """Bound each connect and each command by ``timeout_s``."""
        self._timeout_s = timeout_s
        self._clients: dict[Endpoint, aioredis.Redis] = {}
        self._lag = LagMeter(self._client)

    def _client(self, ep: Endpoint) -> aioredis.Redis:
        client = self._clients.get(ep)
        if client is None:
            client = aioredis.Redis(
                host=ep.host,
                port=ep.port,
                socket_connect_timeout=self._timeout_s,
                socket_timeout=self._timeout_s,
                retry=Retry(NoBackoff(), 0),
            )
            self._clients[ep] = client
        return client

    async def close(self) -> None:
        """Close every cached client; the replicator may be used again afterwards."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            # Bounded: a measurement still running on this client (a watch drops, rather than
            # cancels, one in flight) must not hold the close, and so a worker's shutdown.
            try:
                await asyncio.wait_for(client.aclose(), timeout=self._timeout_s * 2)
            except (RedisError, OSError, TimeoutError):
                pass

    async def info(self, ep: Endpoint) -> ReplicationInfo:
        """``INFO replication`` and ``CONFIG GET min-replicas-to-write``; read-only."""
        return await read_info(self._client(ep), ep)

    async def measure_lag(
        self, primary: Endpoint, replica: Endpoint, timeout_ms: int = 1000
    ) -> LagSample:
        """Time a heartbeat from ``primary`` to ``replica``, then read both offsets.

        The value written to the replica's own heartbeat key (``heartbeat_key``) is the
        wall-clock millisecond plus a unique suffix, so concurrent measurements can neither see
        nor overwrite each other's value. ``lag_ms`` runs from
        just before the SET to the return of the GET that saw it: it overstates the true lag
        by up to a round trip and a poll interval, the safe direction for a failover guard.
        Both connections are made (PING) before the clock starts. When the replica does not
        answer that PING or show the value within ``timeout_ms``, ``lag_ms`` is None and
        ``error`` says why; each of the PING, the wait and the offset read is bounded by
        ``timeout_ms``.

        When the primary does not answer (before or during the measurement), the sample has
        ``primary_reachable`` False, ``primary_offset`` -1 and what the replica itself says:
        its offset, its link and how long it has been down, its replication id (the read is
        bounded by ``timeout_ms``; a silent replica leaves offset -1 and the link down).
        Raises ``StateError`` only when the primary answers but refuses the heartbeat (fenced,
        or a replica). Only writes drc's own key, so a retry is harmless.
        """
        return await self._lag.measure(primary, replica, timeout_ms)

    async def promote(self, ep: Endpoint) -> ReplicationInfo:
        """``REPLICAOF NO ONE``, then ``min-replicas-to-write 0``: a writable, unfenced primary.

        Idempotent: Redis answers OK to ``REPLICAOF NO ONE`` on a primary, and setting the
        setting again changes nothing, so a retry after a lost answer succeeds. The data the
        replica had is kept; its replication history is kept too, so the old primary can
        later resynchronize partially (``replicate_from``).
        """
        with redis_errors(ep, "promote"):
            await _replicaof(self._client(ep), "NO", "ONE")
            await self._client(ep).config_set("min-replicas-to-write", 0)
        return await self.info(ep)

    async def replicate_from(self, ep: Endpoint, primary: Endpoint) -> ReplicationInfo:
        """``REPLICAOF <primary>``: ``ep`` discards what ``primary`` lacks and follows it.

        Idempotent: when ``ep`` already follows ``primary`` Redis answers "Already connected to
        specified master" and neither drops the link nor resynchronizes. The result is read
        right away, so its link is usually still down; ``wait_in_sync`` waits for the sync.
        Writes ``ep`` accepted that ``primary`` never received are lost here: call this only
        after a failover whose lag guard allowed no such writes.
        """
        with redis_errors(ep, f"replicate from {primary}"):
            await _replicaof(self._client(ep), primary.host, str(primary.port))
        return await self.info(ep)

    async def fence(self, ep: Endpoint) -> str:
        """``min-replicas-to-write 1000000``: every write on ``ep`` fails with NOREPLICAS.

        For an old primary that may still run: reads keep working, replicas keep their link,
        and ``unfence`` (or ``promote``) reverses it. Idempotent: setting it again is a no-op.
        It lives in memory only (not rewritten to the config file), so a restart unfences;
        restart the old primary as a replica. Raises ``StateUnreachableError`` when ``ep``
        does not answer: whether a dead primary counts as fenced is the caller's decision.
        """
        return await self._set_min_replicas(ep, FENCED_MIN_REPLICAS, "fenced")

    async def unfence(self, ep: Endpoint) -> str:
        """``min-replicas-to-write 0``: ``ep`` accepts writes again (if it is a primary).

        Idempotent: unfencing an unfenced server is a no-op.
        """
        return await self._set_min_replicas(ep, 0, "unfenced")

    async def _set_min_replicas(self, ep: Endpoint, value: int, verb: str) -> str:
        before = await self.info(ep)
        if before.min_replicas_to_write == value:
            return f"{ep} already {verb} (min-replicas-to-write {value}, {before})"
        with redis_errors(ep, f"set min-replicas-to-write {value}"):
            await self._client(ep).config_set("min-replicas-to-write", value)
        consequence = "writes now fail with NOREPLICAS" if value else "writes accepted again"
        return (
            f"{verb} {ep}: min-replicas-to-write {before.min_replicas_to_write} -> {value}, "
            f"{consequence} ({before})"
        )

    async def wait_in_sync(
        self, primary: Endpoint, replica: Endpoint, timeout_ms: int
    ) -> LagSample:
        """Poll until ``replica``'s link is up and its offset equals ``primary``'s.

        Meant for after writes stop (the primary fenced or gone quiet): under steady writes the
        two reads rarely meet. The primary's offset still moves by itself, by a PING to its
        replicas every ``repl-ping-replica-period`` (10 s), which the replica soon matches.
        Returns a sample with ``lag_ms`` 0 (nothing is missing); raises ``StateError`` naming
        both offsets at the timeout. Read-only, so safe to retry.
        """
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            p = await self.info(primary)
            try:
                r: ReplicationInfo | None = await self.info(replica)
            except StateUnreachableError:
                r = None  # not synced yet; it may be restarting
            if r is not None and in_sync(p, r):
                return LagSample(
                    0.0,
                    p.offset,
                    r.offset,
                    True,
                    time.time(),
                    replid=r.replication_id,
                    primary_replid=p.replication_id,
                )
            if time.monotonic() >= deadline:
                raise StateError(not_in_sync(primary, replica, p, r, timeout_ms))
            await asyncio.sleep(0.01)

    async def consistency(
        self, primary: Endpoint, replica: Endpoint, sample: int = 100
    ) -> ConsistencyResult:
        """Compare up to ``sample`` keys on both (see ``redis_consistency.compare``); read-only."""
        return await compare(self._client, primary, replica, sample)

    async def persist(self, ep: Endpoint) -> str:
        """``CONFIG REWRITE``: the role drc gave ``ep`` survives its restart.

        Idempotent: rewriting the same settings writes the same file. A server started
        without a config file has nothing to rewrite; that is said, not raised.
        """
        try:
            with redis_errors(ep, "rewrite its config"):
                await self._client(ep).execute_command(  # type: ignore[no-untyped-call]
                    "CONFIG", "REWRITE"
                )
        except StateUnreachableError:
            raise
        except StateError as exc:
            if "without a config file" in str(exc):
                return f"{ep} runs without a config file: its role lasts until it restarts"
            raise
        return f"{ep} config rewritten"

    async def write_and_read(self, ep: Endpoint, key_prefix: str = "drc:verify") -> float:
        """SET a unique key, GET it back, DEL it; returns the round trip in ms.

        Raises ``StateError`` with Redis's own words when the write is refused ("READONLY ..."
        on a replica, "NOREPLICAS ..." on a fenced primary) and ``StateUnreachableError`` when
        ``ep`` does not answer. Each call uses a fresh key, so a retry cannot collide with the
        first attempt; a key a lost answer left behind expires after a minute.
        """
        key = f"{key_prefix}:{uuid.uuid4().hex}"
        value = uuid.uuid4().hex
        client = self._client(ep)
        started = time.perf_counter()
        with redis_errors(ep, "write"):
            await client.set(key, value, ex=60)
            got = await client.get(key)
            await client.delete(key)
        elapsed = (time.perf_counter() - started) * 1000
        if got != value.encode():
            raise StateError(f"{ep} returned {got!r} for the key just written ({key})")
        return elapsed


async def _replicaof(client: aioredis.Redis, host: str, port: str) -> None:
    await client.execute_command("REPLICAOF", host, port)  # type: ignore[no-untyped-call]
