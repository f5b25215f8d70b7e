"""Redis probe: PING, then the replication role."""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from activities.probes.outcome import describe, elapsed_ms, failed
from drc.catalog import RedisCheck
from drc.model import ProbeResult


async def probe_redis(check: RedisCheck) -> ProbeResult:
    """PING ``check``'s server and read ``INFO replication``.

    ``detail`` is ``role=<role>`` (plus ``master_link_status`` on a replica). Fails when the
    server does not answer in ``timeout_ms`` or its role is not ``expect_role``.
    """
    started = time.perf_counter()
    timeout_s = check.timeout_ms / 1000
    client = aioredis.Redis(
        host=check.host,
        port=check.port,
        socket_connect_timeout=timeout_s,
        socket_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),  # the probe schedule is the retry; one answer per probe
    )
    try:
        info = await asyncio.wait_for(_ping_and_info(client), timeout=timeout_s)
    except (RedisError, OSError, TimeoutError) as exc:
        return failed(started, describe(exc, check.timeout_ms))
    finally:
        await _close(client, timeout_s)
    latency = elapsed_ms(started)
    role = str(info.get("role", "unknown"))
    detail = f"role={role}"
    if "master_link_status" in info:
        detail += f" master_link_status={info['master_link_status']}"
    if check.expect_role is not None and role != check.expect_role:
        return ProbeResult(False, latency, f"role is {role}, expected {check.expect_role}", detail)
    return ProbeResult(True, latency, None, detail)


async def _ping_and_info(client: aioredis.Redis) -> dict[str, object]:
    await client.ping()
    info: dict[str, object] = await client.info("replication")
    return info


async def _close(client: aioredis.Redis, timeout_s: float) -> None:
    """Close the probe's client, bounded: a close that hangs must never stall a watch tick."""
    try:
        await asyncio.wait_for(client.aclose(), timeout=max(timeout_s, 0.5))
    except (RedisError, OSError, TimeoutError):
        pass  # the connection is gone either way; the probe's answer is already known
