"""Reading Redis's ``INFO replication`` into ``ReplicationInfo`` and ``LagSample`` values.

The parsers are pure; ``read_info`` is the one read every Redis operation shares.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

from activities.state.base import NEVER_UP, Endpoint, LagSample, ReplicationInfo
from activities.state.errors import StateError, redis_errors

ClientFor = Callable[[Endpoint], aioredis.Redis]
"""The cached client of an endpoint (``RedisReplicator``'s), for the helpers that share it."""


async def read_info(client: aioredis.Redis, ep: Endpoint) -> ReplicationInfo:
    """``INFO replication`` and ``CONFIG GET min-replicas-to-write`` of ``ep``; read-only."""
    with redis_errors(ep, "read replication info"):
        pipe = client.pipeline(transaction=False)
        pipe.info("replication")
        pipe.config_get("min-replicas-to-write")
        raw, config = await pipe.execute()
    return replication_info(ep, raw, config)


def replication_info(ep: Endpoint, raw: dict[str, Any], config: dict[Any, Any]) -> ReplicationInfo:
    """``ep``'s parsed ``INFO replication`` (``raw``) and ``CONFIG GET`` answer (``config``)."""
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
        link_down_since_s=link_down_since(raw),
    )


def link_down_since(raw: dict[str, Any]) -> float | None:
    """A replica's ``master_link_down_since_seconds``; None while its link is up.

    Redis 7.0 prints it only while the link is not up: whole seconds since the link went down
    (kept through reconnect attempts and through a ``REPLICAOF`` to another primary), or -1
    when the link has not been up since the server started (``NEVER_UP``). A down link
    without the field (not seen) reads as ``NEVER_UP``: how long is unknown.
    """
    if raw.get("role") != "slave" or raw.get("master_link_status") == "up":
        return None
    value = raw.get("master_link_down_since_seconds")
    try:
        seconds = float(value) if value is not None else NEVER_UP
    except (TypeError, ValueError):
        return NEVER_UP
    return NEVER_UP if seconds < 0 else seconds


def acked_offset(primary_raw: dict[str, Any], replica: Endpoint) -> int | None:
    """The offset ``replica`` last acknowledged to the primary (REPLCONF ACK, once a second)."""
    by_port = [
        v
        for k, v in primary_raw.items()
        if k.startswith("slave") and isinstance(v, dict) and int(v.get("port", -1)) == replica.port
    ]
    exact = [v for v in by_port if str(v.get("ip")) == replica.host]
    found = exact or (by_port if len(by_port) == 1 else [])
    return int(found[0]["offset"]) if found else None


def lag_sample(
    lag_ms: float | None,
    primary_raw: dict[str, Any] | None,
    replica_raw: dict[str, Any] | None,
    replica: Endpoint,
    error: str | None,
) -> LagSample:
    """A sample from both servers' ``INFO replication``; None for a server that did not answer.

    Without the primary's (``primary_reachable`` False) the sample is the replica's own view.
    """
    primary_offset = -1 if primary_raw is None else int(primary_raw.get("master_repl_offset", 0))
    primary_replid = "" if primary_raw is None else str(primary_raw.get("master_replid", ""))
    if replica_raw is None:
        acked = None if primary_raw is None else acked_offset(primary_raw, replica)
        note = f"replica {replica} did not answer"
        if acked is not None:
            note += "; offset is the one it last acknowledged"
        return LagSample(
            lag_ms,
            primary_offset,
            -1 if acked is None else acked,
            False,
            time.time(),
            f"{error}; {note}" if error else note,
            primary_reachable=primary_raw is not None,
            primary_replid=primary_replid,
        )
    own_offset = "slave_repl_offset" if replica_raw.get("role") == "slave" else "master_repl_offset"
    return LagSample(
        lag_ms,
        primary_offset,
        int(replica_raw.get(own_offset, -1)),
        replica_raw.get("master_link_status") == "up",
        time.time(),
        error,
        primary_reachable=primary_raw is not None,
        link_down_since_s=link_down_since(replica_raw),
        replid=str(replica_raw.get("master_replid", "")),
        primary_replid=primary_replid,
    )


def in_sync(p: ReplicationInfo, r: ReplicationInfo) -> bool:
    """``r`` follows ``p`` with its link up, in the same replication id, at the same offset."""
    return (
        p.role == "master"
        and r.role == "slave"
        and bool(r.link_up)
        and r.replication_id == p.replication_id
        and r.offset == p.offset
    )


def not_in_sync(
    primary: Endpoint,
    replica: Endpoint,
    p: ReplicationInfo,
    r: ReplicationInfo | None,
    timeout_ms: int,
) -> str:
    """Why ``replica`` is still not in sync with ``primary`` after ``timeout_ms``."""
    said = "did not answer" if r is None else str(r)
    return (
        f"replica {replica} not in sync with {primary} after {timeout_ms} ms: "
        f"primary offset {p.offset} ({p}), replica offset "
        f"{'unknown' if r is None else r.offset} ({said})"
    )
