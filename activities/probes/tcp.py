"""TCP connect probe."""

from __future__ import annotations

import asyncio
import time

from activities.probes.outcome import describe, elapsed_ms, failed
from drc.model import ProbeResult


async def probe_tcp(host: str, port: int, timeout_ms: int) -> ProbeResult:
    """Open (and close) a TCP connection to ``host:port`` within ``timeout_ms``."""
    started = time.perf_counter()
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port), timeout=timeout_ms / 1000
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
