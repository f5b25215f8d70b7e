"""A sampled key-by-key comparison of a Redis replica with its primary; read-only."""

from __future__ import annotations

import time

from activities.state.base import ConsistencyResult, Endpoint
from activities.state.errors import redis_errors
from activities.state.redis_info import ClientFor, read_info


async def compare(
    client: ClientFor, primary: Endpoint, replica: Endpoint, sample: int
) -> ConsistencyResult:
    """SCAN up to ``sample`` keys on ``primary`` (not ``drc:*``) and DUMP each on both.

    DUMP covers every type byte for byte, TTLs excepted. Writes are not paused, so a key
    written between the primary's and the replica's read shows as missing or mismatched:
    re-check those once (after ``wait_in_sync``) before believing them. A value whose
    encoding differs while its content is equal (a replica loaded from a snapshot may pick
    a compact encoding the primary outgrew) is compared again by content and is not
    reported. Read-only, so safe to retry.
    """
    keys = await _sample_keys(client, primary, sample)
    p_info = await read_info(client(primary), primary)
    p_dumps = await _dumps(client, primary, keys)
    r_dumps = await _dumps(client, replica, keys)
    r_info = await read_info(client(replica), replica)
    missing, mismatched = [], []
    for key, p_val, r_val in zip(keys, p_dumps, r_dumps, strict=True):
        if p_val is None or p_val == r_val:
            continue  # gone from the primary since the SCAN, or equal
        if r_val is None:
            missing.append(key.decode(errors="replace"))
        elif not await _same_content(client, primary, replica, key):
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


async def _sample_keys(client: ClientFor, ep: Endpoint, sample: int) -> list[bytes]:
    keys: list[bytes] = []
    with redis_errors(ep, "scan keys"):
        async for key in client(ep).scan_iter(count=max(sample, 10)):
            if not key.startswith(b"drc:"):
                keys.append(key)
            if len(keys) >= sample:
                break
    return keys


async def _dumps(client: ClientFor, ep: Endpoint, keys: list[bytes]) -> list[bytes | None]:
    if not keys:
        return []
    with redis_errors(ep, "dump keys"):
        pipe = client(ep).pipeline(transaction=False)
        for key in keys:
            pipe.dump(key)
        return list(await pipe.execute())


async def _same_content(
    client: ClientFor, primary: Endpoint, replica: Endpoint, key: bytes
) -> bool:
    """Whether ``key`` holds equal content on both, for the types with a plain read."""
    p = await _content(client, primary, key)
    return p is not None and p == await _content(client, replica, key)


async def _content(client_for: ClientFor, ep: Endpoint, key: bytes) -> object | None:
    """``key``'s type and content, or None for a type without a plain read (stream...)."""
    client = client_for(ep)
    with redis_errors(ep, "read a key"):
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


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
