"""Replicated state: read, measure, promote, fence and check a Redis primary/replica pair.

``StateReplicator`` is the backend interface (design §5: guard on lag, fence the old primary,
promote the standby, re-protect); ``RedisReplicator`` implements it over Redis replication.
Every operation either only reads or converges on a target state (a role, a setting), so
Temporal may retry any of them after a lost answer. Workflows reach them through actions that
convert ``StateError`` with ``to_application_error``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    RedisError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from temporalio.exceptions import ApplicationError

from drc.errors import DrcError

HEARTBEAT_KEY = "drc:heartbeat"
"""Where ``measure_lag`` writes its timestamp; every ``drc:*`` key is drc's own bookkeeping."""

FENCED_MIN_REPLICAS = 1_000_000
"""``min-replicas-to-write`` while fenced: more replicas than any deployment will ever have."""

_POLL_S = 0.0005  # asyncio rounds timers to the selector's 1 ms, so polls are ~1 ms apart


class StateError(DrcError):
    """The state store refused an operation or answered something unusable."""


class StateUnreachableError(StateError):
    """The state store could not be reached or did not answer in time; a retry may work."""


@dataclass(frozen=True)
class Endpoint:
    """Where one state server listens."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, text: str) -> Endpoint:
        """``host:port`` or ``redis://host:port`` (a trailing ``/db`` is ignored)."""
        rest = text.strip().removeprefix("redis://").split("/", 1)[0]
        host, sep, port = rest.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise StateError(f"not a host:port endpoint: {text!r}")
        return cls(host, int(port))


@dataclass
class ReplicationInfo:
    """One server's view of replication (``INFO replication`` and its fencing setting)."""

    role: Literal["master", "slave"]
    offset: int
    """``master_repl_offset`` on a primary, ``slave_repl_offset`` on a replica."""
    link_up: bool | None
    """A replica's ``master_link_status == "up"``; None on a primary."""
    connected_replicas: int
    primary: Endpoint | None
    """The primary a replica follows (``master_host:master_port``); None on a primary."""
    min_replicas_to_write: int
    """Non-zero means writes need that many good replicas; ``FENCED_MIN_REPLICAS`` = fenced."""
    replication_id: str = ""
    """``master_replid``: a synced replica shares its primary's, so offsets are comparable."""

    @property
    def fenced(self) -> bool:
        """Whether this server refuses every write with NOREPLICAS."""
        return self.min_replicas_to_write >= FENCED_MIN_REPLICAS

    def __str__(self) -> str:
        if self.role == "master":
            return f"primary offset={self.offset} replicas={self.connected_replicas}" + (
                " fenced" if self.fenced else ""
            )
        link = "up" if self.link_up else "down"
        return f"replica of {self.primary} offset={self.offset} link={link}"


@dataclass
class LagSample:
    """One replication-lag measurement between a primary and a replica."""

    lag_ms: float | None
    """Time from writing the heartbeat to seeing it on the replica; None when not seen."""
    primary_offset: int
    replica_offset: int
    """The replica's own offset, or, when it did not answer, the last one it acknowledged to the
    primary (-1 when neither is known)."""
    link_up: bool
    """The replica answered and reported its link to the primary up."""
    at: float
    """Wall-clock time (``time.time()``) of the measurement."""
    error: str | None = None

    def __str__(self) -> str:
        gap = self.primary_offset - self.replica_offset
        lag = (
            f"lag {self.lag_ms:.2f} ms"
            if self.lag_ms is not None
            else f"lag unknown ({self.error})"
        )
        return f"{lag}, offset gap {gap} bytes, link {'up' if self.link_up else 'down'}"


@dataclass
class ConsistencyResult:
    """A sampled comparison of a replica's keys with its primary's."""

    checked: int
    missing_on_replica: list[str]
    mismatched: list[str]
    primary_offset: int
    replica_offset: int
    offsets_equal: bool
    at: float

    @property
    def ok(self) -> bool:
        """Every sampled key is on the replica with the primary's value."""
        return not self.missing_on_replica and not self.mismatched

    def __str__(self) -> str:
        return (
            f"checked {self.checked} keys: {len(self.missing_on_replica)} missing on replica, "
            f"{len(self.mismatched)} different; offsets {self.primary_offset}/"
            f"{self.replica_offset}"
        )


class StateReplicator(ABC):
    """A replicated-state backend; every method is a read or an idempotent convergence."""

    @abstractmethod
    async def info(self, ep: Endpoint) -> ReplicationInfo:
        """``ep``'s role, offset, link and fencing; read-only."""

    @abstractmethod
    async def measure_lag(
        self, primary: Endpoint, replica: Endpoint, timeout_ms: int = 1000
    ) -> LagSample:
        """Write a heartbeat on ``primary`` and time its arrival on ``replica``."""

    @abstractmethod
    async def promote(self, ep: Endpoint) -> ReplicationInfo:
        """Make ``ep`` a writable primary; idempotent."""

    @abstractmethod
    async def replicate_from(self, ep: Endpoint, primary: Endpoint) -> ReplicationInfo:
        """Make ``ep`` a replica of ``primary``; idempotent."""

    @abstractmethod
    async def fence(self, ep: Endpoint) -> str:
        """Make ``ep`` refuse every write, reversibly; idempotent; returns what was done."""

    @abstractmethod
    async def unfence(self, ep: Endpoint) -> str:
        """Undo ``fence``; idempotent; returns what was done."""

    @abstractmethod
    async def wait_in_sync(
        self, primary: Endpoint, replica: Endpoint, timeout_ms: int
    ) -> LagSample:
        """Wait until ``replica`` has everything ``primary`` has; read-only."""

    @abstractmethod
    async def consistency(
        self, primary: Endpoint, replica: Endpoint, sample: int = 100
    ) -> ConsistencyResult:
        """Compare a sample of keys on both servers; read-only."""

    @abstractmethod
    async def persist(self, ep: Endpoint) -> str:
        """Persist ``ep``'s current role to its config file, so a restart keeps it."""

    @abstractmethod
    async def write_and_read(self, ep: Endpoint, key_prefix: str = "drc:verify") -> float:
        """Prove ``ep`` accepts writes; returns the round trip in ms."""

    async def close(self) -> None:  # noqa: B027 - a backend without connections has nothing to do
        """Release connections."""


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
        with _errors(ep, "read replication info"):
            pipe = self._client(ep).pipeline(transaction=False)
            pipe.info("replication")
            pipe.config_get("min-replicas-to-write")
            raw, config = await pipe.execute()
        return _replication_info(ep, raw, config)

    async def measure_lag(
        self, primary: Endpoint, replica: Endpoint, timeout_ms: int = 1000
    ) -> LagSample:
        """Time a heartbeat from ``primary`` to ``replica``, then read both offsets.

        The value written to ``drc:heartbeat`` is the wall-clock millisecond plus a unique
        suffix, so concurrent measurements cannot see each other's value. ``lag_ms`` runs from
        just before the SET to the return of the GET that saw it: it overstates the true lag
        by up to a round trip and a poll interval, the safe direction for a failover guard.
        Both connections are made (PING) before the clock starts. When the replica does not
        answer that PING or show the value within ``timeout_ms``, ``lag_ms`` is None and
        ``error`` says why; each of the PING, the wait and the offset read is bounded by
        ``timeout_ms``. Raises ``StateError`` only when the
        heartbeat cannot be written (primary unreachable, fenced, or a replica). Only writes
        drc's own key, so a retry is harmless.
        """
        # Connect to both first, so that the first sample does not count TCP handshakes as lag.
        with _errors(primary, "ping"):
            await self._client(primary).ping()
        error = await self._ping(replica, timeout_ms)
        lag_ms: float | None = None
        if error is None:
            lag_ms, error = await self._heartbeat(primary, replica, timeout_ms)
        primary_info, replica_info = await self._offsets(primary, replica, timeout_ms)
        return _sample(lag_ms, primary_info, replica_info, replica, error)

    async def _ping(self, ep: Endpoint, timeout_ms: int) -> str | None:
        """None when ``ep`` answers PING within ``timeout_ms``, else why not."""
        try:
            async with asyncio.timeout(timeout_ms / 1000):
                with _errors(ep, "ping"):
                    await self._client(ep).ping()
        except TimeoutError:
            return f"replica {ep} did not answer PING within {timeout_ms} ms"
        except StateError as exc:
            return str(exc)
        return None

    async def _heartbeat(
        self, primary: Endpoint, replica: Endpoint, timeout_ms: int
    ) -> tuple[float | None, str | None]:
        """Write the heartbeat and wait for it: (lag in ms, None) or (None, why not seen)."""
        value = f"{time.time() * 1000:.0f}-{uuid.uuid4().hex[:12]}".encode()
        written = time.monotonic()
        with _errors(primary, "write the heartbeat"):
            await self._client(primary).set(HEARTBEAT_KEY, value)
        try:
            seen = await self._poll_heartbeat(replica, value, written + timeout_ms / 1000)
        except StateError as exc:
            return None, str(exc)
        if seen is None:
            return None, f"heartbeat not seen on replica {replica} within {timeout_ms} ms"
        return (seen - written) * 1000, None

    async def _poll_heartbeat(
        self, replica: Endpoint, value: bytes, deadline: float
    ) -> float | None:
        """When ``replica`` first showed ``value``; None if not by ``deadline`` (monotonic).

        A deadline loop rather than a cancelled wait: cancelling a Redis command half-way
        was seen to leave the shared client unusable for later measurements. Each GET is
        bounded by the client's socket timeout.
        """
        client = self._client(replica)
        while time.monotonic() < deadline:
            with _errors(replica, "read the heartbeat"):
                got = await client.get(HEARTBEAT_KEY)
            if got == value:
                return time.monotonic()
            await asyncio.sleep(_POLL_S)
        return None

    async def _offsets(
        self, primary: Endpoint, replica: Endpoint, timeout_ms: int
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Both servers' ``INFO replication``; the replica's is None when it does not answer.

        The replica's read is bounded by ``timeout_ms`` because a stopped (SIGSTOP, swapping,
        overloaded) replica accepts the connection and never answers.
        """
        with _errors(primary, "read replication info"):
            primary_raw: dict[str, Any] = await self._client(primary).info("replication")
        try:
            async with asyncio.timeout(timeout_ms / 1000):
                with _errors(replica, "read replication info"):
                    replica_raw: dict[str, Any] = await self._client(replica).info("replication")
        except (TimeoutError, StateError):
            return primary_raw, None
        return primary_raw, replica_raw

    async def promote(self, ep: Endpoint) -> ReplicationInfo:
        """``REPLICAOF NO ONE``, then ``min-replicas-to-write 0``: a writable, unfenced primary.

        Idempotent: Redis answers OK to ``REPLICAOF NO ONE`` on a primary, and setting the
        setting again changes nothing, so a retry after a lost answer succeeds. The data the
        replica had is kept; its replication history is kept too, so the old primary can
        later resynchronize partially (``replicate_from``).
        """
        with _errors(ep, "promote"):
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
        with _errors(ep, f"replicate from {primary}"):
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
        with _errors(ep, f"set min-replicas-to-write {value}"):
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
            if r is not None and _in_sync(p, r):
                return LagSample(0.0, p.offset, r.offset, True, time.time())
            if time.monotonic() >= deadline:
                raise StateError(_not_in_sync(primary, replica, p, r, timeout_ms))
            await asyncio.sleep(0.01)

    async def consistency(
        self, primary: Endpoint, replica: Endpoint, sample: int = 100
    ) -> ConsistencyResult:
        """SCAN up to ``sample`` keys on ``primary`` (not ``drc:*``) and DUMP each on both.

        DUMP covers every type byte for byte, TTLs excepted. Writes are not paused, so a key
        written between the primary's and the replica's read shows as missing or mismatched:
        re-check those once (after ``wait_in_sync``) before believing them. A value whose
        encoding differs while its content is equal (a replica loaded from a snapshot may pick
        a compact encoding the primary outgrew) is compared again by content and is not
        reported. Read-only, so safe to retry.
        """
        keys = await self._sample_keys(primary, sample)
        p_info = await self.info(primary)
        p_dumps = await self._dumps(primary, keys)
        r_dumps = await self._dumps(replica, keys)
        r_info = await self.info(replica)
        missing, mismatched = [], []
        for key, p_val, r_val in zip(keys, p_dumps, r_dumps, strict=True):
            if p_val is None or p_val == r_val:
                continue  # gone from the primary since the SCAN, or equal
            if r_val is None:
                missing.append(key.decode(errors="replace"))
            elif not await self._same_content(primary, replica, key):
                mismatched.append(key.decode(errors="replace"))
        return ConsistencyResult(
            checked=sum(v is not None for v in p_dumps),
            missing_on_replica=missing,
            mismatched=mismatched,
            primary_offset=p_info.offset,
            replica_offset=r_info.offset,
            offsets_equal=p_info.offset == r_info.offset,
            at=time.time(),
        )

    async def _sample_keys(self, ep: Endpoint, sample: int) -> list[bytes]:
        keys: list[bytes] = []
        with _errors(ep, "scan keys"):
            async for key in self._client(ep).scan_iter(count=max(sample, 10)):
                if not key.startswith(b"drc:"):
                    keys.append(key)
                if len(keys) >= sample:
                    break
        return keys

    async def _dumps(self, ep: Endpoint, keys: list[bytes]) -> list[bytes | None]:
        if not keys:
            return []
        with _errors(ep, "dump keys"):
            pipe = self._client(ep).pipeline(transaction=False)
            for key in keys:
                pipe.dump(key)
            return list(await pipe.execute())

    async def _same_content(self, primary: Endpoint, replica: Endpoint, key: bytes) -> bool:
        """Whether ``key`` holds equal content on both, for the types with a plain read."""
        p = await self._content(primary, key)
        return p is not None and p == await self._content(replica, key)

    async def _content(self, ep: Endpoint, key: bytes) -> object | None:
        """``key``'s type and content, or None for a type without a plain read (stream...)."""
        client = self._client(ep)
        with _errors(ep, "read a key"):
            kind = _text(await client.type(key))
            content: object
            if kind == "string":
                content = await client.get(key)
            elif kind == "hash":
                content = await client.hgetall(key)
            elif kind == "list":
                content = await client.lrange(key, 0, -1)
            elif kind == "set":
                content = await client.smembers(key)
            elif kind == "zset":
                content = await client.zrange(key, 0, -1, withscores=True)
            else:
                return None
        return kind, content

    async def persist(self, ep: Endpoint) -> str:
        """``CONFIG REWRITE``: the role drc gave ``ep`` survives its restart.

        Idempotent: rewriting the same settings writes the same file. A server started
        without a config file has nothing to rewrite; that is said, not raised.
        """
        try:
            with _errors(ep, "rewrite its config"):
                await self._client(ep).execute_command("CONFIG", "REWRITE")
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
        with _errors(ep, "write"):
            await client.set(key, value, ex=60)
            got = await client.get(key)
            await client.delete(key)
        elapsed = (time.perf_counter() - started) * 1000
        if got != value.encode():
            raise StateError(f"{ep} returned {got!r} for the key just written ({key})")
        return elapsed


async def _replicaof(client: aioredis.Redis, host: str, port: str) -> None:
    await client.execute_command("REPLICAOF", host, port)  # type: ignore[no-untyped-call]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@contextmanager
def _errors(ep: Endpoint, what: str) -> Iterator[None]:
    """Turn redis-py's and the OS's exceptions into ``StateError``s naming ``ep`` and ``what``."""
    try:
        yield
    except (AuthenticationError, AuthorizationError) as exc:
        raise StateError(f"{ep} refused to {what}: {_said(exc)}") from exc
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise StateUnreachableError(f"{ep} unreachable to {what}: {_said(exc)}") from exc
    except ResponseError as exc:
        raise StateError(f"{ep} refused to {what}: {_said(exc)}") from exc
    except RedisError as exc:
        raise StateError(f"{ep} failed to {what}: {_said(exc)}") from exc


def _said(exc: BaseException) -> str:
    """Redis's words, with the error code redis-py strips for the codes it maps to classes."""
    text = str(exc).strip() or type(exc).__name__
    code = getattr(exc, "status_code", None)
    if code and not text.startswith(code):
        text = f"{code} {text}"
    return text


def _replication_info(ep: Endpoint, raw: dict[str, Any], config: dict[Any, Any]) -> ReplicationInfo:
    role = raw.get("role")
    if role not in ("master", "slave"):
        raise StateError(f"{ep} reports an unknown replication role {role!r}")
    min_replicas = config.get(b"min-replicas-to-write", config.get("min-replicas-to-write", 0))
    if role == "master":
        return ReplicationInfo(
            role="master",
            offset=int(raw.get("master_repl_offset", 0)),
            link_up=None,
            connected_replicas=int(raw.get("connected_slaves", 0)),
            primary=None,
            min_replicas_to_write=int(min_replicas),
            replication_id=str(raw.get("master_replid", "")),
        )
    return ReplicationInfo(
        role="slave",
        offset=int(raw.get("slave_repl_offset", 0)),
        link_up=raw.get("master_link_status") == "up",
        connected_replicas=int(raw.get("connected_slaves", 0)),
        primary=Endpoint(str(raw["master_host"]), int(raw["master_port"])),
        min_replicas_to_write=int(min_replicas),
        replication_id=str(raw.get("master_replid", "")),
    )


def _acked_offset(primary_raw: dict[str, Any], replica: Endpoint) -> int | None:
    """The offset ``replica`` last acknowledged to the primary (REPLCONF ACK, once a second)."""
    by_port = [
        v
        for k, v in primary_raw.items()
        if k.startswith("slave") and isinstance(v, dict) and int(v.get("port", -1)) == replica.port
    ]
    exact = [v for v in by_port if str(v.get("ip")) == replica.host]
    found = exact or (by_port if len(by_port) == 1 else [])
    return int(found[0]["offset"]) if found else None


def _sample(
    lag_ms: float | None,
    primary_raw: dict[str, Any],
    replica_raw: dict[str, Any] | None,
    replica: Endpoint,
    error: str | None,
) -> LagSample:
    primary_offset = int(primary_raw.get("master_repl_offset", 0))
    if replica_raw is None:
        acked = _acked_offset(primary_raw, replica)
        note = f"replica {replica} did not answer; offset is the one it last acknowledged"
        return LagSample(
            lag_ms,
            primary_offset,
            -1 if acked is None else acked,
            False,
            time.time(),
            f"{error}; {note}" if error else note,
        )
    return LagSample(
        lag_ms,
        primary_offset,
        int(replica_raw.get("slave_repl_offset", -1)),
        replica_raw.get("master_link_status") == "up",
        time.time(),
        error,
    )


def _in_sync(p: ReplicationInfo, r: ReplicationInfo) -> bool:
    return (
        p.role == "master"
        and r.role == "slave"
        and bool(r.link_up)
        and r.replication_id == p.replication_id
        and r.offset == p.offset
    )


def _not_in_sync(
    primary: Endpoint,
    replica: Endpoint,
    p: ReplicationInfo,
    r: ReplicationInfo | None,
    timeout_ms: int,
) -> str:
    said = "did not answer" if r is None else str(r)
    return (
        f"replica {replica} not in sync with {primary} after {timeout_ms} ms: "
        f"primary offset {p.offset} ({p}), replica offset "
        f"{'unknown' if r is None else r.offset} ({said})"
    )


def to_application_error(exc: StateError) -> ApplicationError:
    """The ``ApplicationError`` a state failure becomes at the activity boundary."""
    if isinstance(exc, StateUnreachableError):
        return ApplicationError(str(exc), type="StateUnreachable", non_retryable=False)
    return ApplicationError(str(exc), type="StateError", non_retryable=True)
