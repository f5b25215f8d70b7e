"""TCP connect probe."""

from __future__ import annotations

import asyncio
import time

from activities.probes.outcome import describe, elapsed_ms, failed
from drc.model import ProbeResult


async def probe_tcp(
    host: str, port: int, timeout_ms: int, source_address: str | None = None
) -> ProbeResult:
    """Open (and close) a TCP connection to ``host:port`` within ``timeout_ms``.

    With ``source_address``, the connection leaves from that local address (a vantage point).
    """
    started = time.perf_counter()
    local = (source_address, 0) if source_address else None
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, local_addr=local), timeout=timeout_ms / 1000
        )
    except (OSError, TimeoutError) as exc:
        return failed(started, describe(exc, timeout_ms))
    latency = elapsed_ms(started)
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass  # the peer may reset on close; the connect already answered the question
    return ProbeResult(ok=True, latency_ms=latency, detail=f"connected to {host}:{port}")


async def probe_redis_ping(
    host: str, port: int, timeout_ms: int, source_address: str | None = None
) -> ProbeResult:
    """PING a Redis server over a raw connection, optionally from ``source_address``.

    For vantage points: redis-py cannot bind a source address, and a bare TCP connect is not
    enough (a stopped Redis still completes connections in the kernel's backlog).
    """
    started = time.perf_counter()
    local = (source_address, 0) if source_address else None
    writer = None
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, local_addr=local), timeout=timeout_ms / 1000
        )
        writer.write(b"*1\r\n$4\r\nPING\r\n")
        remaining = timeout_ms / 1000 - (time.perf_counter() - started)
        line = await asyncio.wait_for(reader.readline(), timeout=max(remaining, 0.001))
    except (OSError, TimeoutError) as exc:
        return failed(started, describe(exc, timeout_ms))
    finally:
        if writer is not None:
            writer.close()
    if not line:
        return failed(started, "connection closed without an answer to PING")
    # Any answer shows a live server (an error too: protected mode DENIED, NOAUTH): a vantage
    # point asks whether the replica is down, not whether it would serve this client.
    text = line.decode("utf-8", "replace").strip()
    return ProbeResult(ok=True, latency_ms=elapsed_ms(started), detail=text[:200])
