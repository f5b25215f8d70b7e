"""PostgreSQL probe: connect and ``SELECT 1``."""

from __future__ import annotations

import asyncio
import math
import time

import psycopg

from activities.probes.outcome import describe, elapsed_ms, failed
from drc.catalog import PostgresCheck
from drc.model import ProbeResult


async def probe_postgres(check: PostgresCheck) -> ProbeResult:
    """Connect to ``check.dsn`` and run ``SELECT 1``, all within ``timeout_ms``."""
    started = time.perf_counter()
    try:
        value = await asyncio.wait_for(_select_one(check), timeout=check.timeout_ms / 1000)
    except psycopg.Error as exc:
        return failed(started, _describe_pg(exc))
    except (OSError, TimeoutError) as exc:
        return failed(started, describe(exc, check.timeout_ms))
    latency = elapsed_ms(started)
    if value != 1:
        return ProbeResult(False, latency, f"SELECT 1 returned {value!r}")
    return ProbeResult(True, latency, None, "SELECT 1 ok")


async def _select_one(check: PostgresCheck) -> object:
    # libpq's connect_timeout is whole seconds; wait_for in the caller holds the real bound.
    connect_timeout = max(1, math.ceil(check.timeout_ms / 1000))
    conn = await psycopg.AsyncConnection.connect(
        check.dsn, connect_timeout=connect_timeout, autocommit=True
    )
    async with conn:
        cursor = await conn.execute("SELECT 1")
        row = await cursor.fetchone()
    return None if row is None else row[0]


def _describe_pg(exc: psycopg.Error) -> str:
    """The useful part of libpq's message: 'connection refused', 'database "x" does not exist'."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    reason = text.rsplit("failed: ", 1)[-1].strip()
    reason = reason.removeprefix("FATAL:").strip()
    if reason.lower() == "connection refused":
        return "connection refused"
    return reason[:200]
