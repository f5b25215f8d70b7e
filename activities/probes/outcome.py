"""Shared by every probe: elapsed time and a short human sentence for why a probe failed."""

from __future__ import annotations

import asyncio
import time

from drc.model import ProbeResult

MAX_ERROR_CHARS = 200


def elapsed_ms(started: float) -> float:
    """Milliseconds since ``started`` (a ``time.perf_counter()`` reading)."""
    return (time.perf_counter() - started) * 1000.0


def failed(started: float, error: str, detail: str | None = None) -> ProbeResult:
    """A failed ``ProbeResult`` timed from ``started``."""
    return ProbeResult(ok=False, latency_ms=elapsed_ms(started), error=error, detail=detail)


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def describe(exc: BaseException, timeout_ms: int) -> str:
    """A short sentence for ``exc``: "connection refused", "timed out after 200 ms", ...

    Client libraries wrap the OS error (aiohttp, redis-py), so the cause chain is searched
    for the well-known ones before falling back to the exception's own text.
    """
    chain = _causes(exc)
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return "connection refused"
    if any(isinstance(e, (TimeoutError, asyncio.TimeoutError)) for e in chain):
        return f"timed out after {timeout_ms} ms"
    if any(isinstance(e, ConnectionResetError) for e in chain):
        return "connection reset"
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:MAX_ERROR_CHARS]
